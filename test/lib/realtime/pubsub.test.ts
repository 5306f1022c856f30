// Typed pub/sub against a real Redis: two instances (own publisher and subscriber connections, as
// separate processes would have) exchange typed messages; invalid ones are dropped and logged once
// per burst; patterns; unsubscribe; channel prefixes; subscriptions survive a Redis restart; bounded
// errors while Redis is down; and the in-process transport behaves the same.
import t, { type Test } from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import Type from 'typebox'
import { useRedis, waitFor, type RedisServer } from '../../helpers/index.js'
import { PubSub } from '../../../lib/realtime/pubsub.js'
import { MemoryPubSubTransport, RedisPubSubTransport, globToRegExp } from '../../../lib/realtime/transport.js'

const TIMEOUT_MS = 1_000
const Chat = Type.Object({ room: Type.String(), text: Type.String(), at: Type.Number() })

interface Logged { level: 'warn' | 'error', obj: Record<string, unknown>, msg: string | undefined }

function client (t: Test, server: RedisServer): Redis {
  const c = new Redis({ port: server.port, enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: TIMEOUT_MS, retryStrategy: () => 50 })
  c.on('error', () => {})
  t.teardown(() => c.disconnect())
  return c
}

async function instance (t: Test, server: RedisServer, prefix = 'app:'): Promise<{ pubsub: PubSub, logs: Logged[] }> {
  const logs: Logged[] = []
  const logger = {
    warn: (obj: object, msg?: string) => { logs.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }) },
    error: (obj: object, msg?: string) => { logs.push({ level: 'error', obj: obj as Record<string, unknown>, msg }) }
  }
  const publisher = client(t, server)
  let subscriber: Redis | undefined
  const transport = new RedisPubSubTransport({ publisher, subscriber: () => (subscriber ??= client(t, server)), timeoutMs: TIMEOUT_MS })
  const pubsub = new PubSub({ transport, prefix, logger })
  t.teardown(() => pubsub.close())
  // As the suite's main connection is at start-up: publish does not wait for a connection that is
  // still being made (no offline queue), so the test must not race the first connect.
  await waitFor(() => publisher.status === 'ready', { timeoutMs: 5_000, what: 'the publisher connected' })
  return { pubsub, logs }
}

t.test('two instances exchange typed messages; invalid ones are dropped and logged once per burst', async (t) => {
  const server = await useRedis(t)
  const a = await instance(t, server)
  const b = await instance(t, server)
  const received: Array<{ text: string, channel: string }> = []
  const unsubscribe = await b.pubsub.subscribe('chat', (message, meta) => {
    received.push({ text: message.text, channel: meta.channel }) // typed: message.text is a string
  }, { schema: Chat })

  t.equal(await a.pubsub.publish('chat', { room: 'r1', text: 'hello', at: 1 }, { schema: Chat }), 1, 'one subscriber connection')
  const chat = a.pubsub.channel('chat', Chat)
  await chat.publish({ room: 'r1', text: 'typed helper', at: 2 })
  await t.rejects(chat.publish({ room: 'r1', at: 3 } as never), { code: 'FRS_PUBSUB_MESSAGE_INVALID' }, 'publish validates too')

  // A publisher that does not use the schema (another app version, a redis-cli user): dropped, never thrown.
  for (let i = 0; i < 5; i++) await a.pubsub.publish('chat', { room: 'r1', text: 42 })
  await server.cli('PUBLISH', 'app:chat', 'not json')
  await a.pubsub.publish('chat', { room: 'r1', text: 'after the bad ones', at: 4 })
  await waitFor(() => received.length === 3, { timeoutMs: 2_000, what: 'three valid messages' })
  t.same(received, [
    { text: 'hello', channel: 'chat' }, { text: 'typed helper', channel: 'chat' }, { text: 'after the bad ones', channel: 'chat' }
  ])
  const drops = b.logs.filter((l) => /dropped a message/.test(l.msg ?? ''))
  t.equal(drops.length, 1, 'six invalid messages, one log line for the burst')
  t.match(drops[0]?.obj, { channel: 'chat', droppedSinceLastLog: 0 })
  t.ok((drops[0]?.obj['errors'] as string[]).includes('/text must be string'), 'the log says what was wrong')
  t.match(b.pubsub.stats(), { messagesReceived: 9, messagesDropped: 6, subscriptions: 1 })
  t.match(a.pubsub.stats(), { messagesPublished: 8 })

  await unsubscribe()
  t.equal(await a.pubsub.publish('chat', { room: 'r1', text: 'nobody', at: 5 }), 0, 'unsubscribed in Redis')
  t.equal(b.pubsub.stats().subscriptions, 0)
})

t.test('several handlers, patterns, prefixes, handler errors', async (t) => {
  const server = await useRedis(t)
  const a = await instance(t, server)
  const b = await instance(t, server)
  const other = await instance(t, server, 'other-app:')
  const seen: string[] = []
  const first = await b.pubsub.subscribe('news', (m) => { seen.push(`first:${String(m)}`) })
  await b.pubsub.subscribe('news', (m) => { seen.push(`second:${String(m)}`) })
  await b.pubsub.psubscribe('room:*', (m, meta) => { seen.push(`pattern ${meta.pattern ?? ''} ${meta.channel}:${String(m)}`) })
  await b.pubsub.subscribe('boom', () => { throw new Error('handler bug') })
  await other.pubsub.subscribe('news', (m) => { seen.push(`other-app:${String(m)}`) })

  await a.pubsub.publish('news', 'n1')
  await a.pubsub.publish('room:42', 'r42')
  await a.pubsub.publish('boom', 'x')
  await waitFor(() => seen.length === 3 && b.pubsub.stats().handlerErrors === 1, { timeoutMs: 2_000, what: 'deliveries' })
  t.same(seen.sort(), ['first:n1', 'pattern room:* room:42:r42', 'second:n1'], 'the other app\'s prefix keeps it out')
  t.match(b.logs.find((l) => l.level === 'error'), { obj: { channel: 'boom' }, msg: /handler failed/ })

  await first()
  seen.length = 0
  await a.pubsub.publish('news', 'n2')
  await waitFor(() => seen.length === 1, { timeoutMs: 2_000, what: 'one delivery' })
  t.same(seen, ['second:n2'], 'the other handler stays subscribed')
  t.equal(await server.cli('PUBSUB', 'NUMPAT'), '1')

  t.ok(globToRegExp('a*b?[cd]\\*').test('aXXbYc*'))
  t.notOk(globToRegExp('a*b?[^cd]').test('axbyc'))
})

t.test('subscriptions survive a Redis restart', async (t) => {
  const server = await useRedis(t)
  const a = await instance(t, server)
  const b = await instance(t, server)
  const received: string[] = []
  await b.pubsub.subscribe('events', (m) => { received.push(String(m)) })
  await b.pubsub.psubscribe('ev*', (m, meta) => { received.push(`p:${meta.channel}:${String(m)}`) })
  await a.pubsub.publish('events', 'before')
  await waitFor(() => received.length === 2, { timeoutMs: 2_000, what: 'before restart' })

  await server.kill()
  await t.rejects(a.pubsub.publish('events', 'while down'), { code: 'FRS_PUBSUB_UNAVAILABLE' })
  await server.restart()
  // Publish until the subscriber is back (re-subscribed by ioredis, and again by the transport on 'ready').
  let receivers = 0
  const started = Date.now()
  while (receivers === 0 && Date.now() - started < 5_000) {
    receivers = await a.pubsub.publish('events', 'after').catch(() => 0)
    if (receivers === 0) await sleep(50)
  }
  t.ok(receivers > 0, `re-subscribed ${Date.now() - started} ms after the restart`)
  await waitFor(() => received.includes('after') && received.includes('p:events:after'), { timeoutMs: 2_000, what: 'after restart' })
  t.notOk(received.includes('while down'), 'fire-and-forget: what was published while down is gone')
})

t.test('Redis down: subscribe and publish fail with FRS_PUBSUB_UNAVAILABLE within the command timeout', async (t) => {
  const server = await useRedis(t)
  const a = await instance(t, server)
  await a.pubsub.subscribe('x', () => {})
  server.freeze()
  let started = Date.now()
  await t.rejects(a.pubsub.publish('x', 1), { code: 'FRS_PUBSUB_UNAVAILABLE' })
  await t.rejects(a.pubsub.subscribe('y', () => {}), { code: 'FRS_PUBSUB_UNAVAILABLE' })
  t.ok(Date.now() - started < 2 * TIMEOUT_MS + 500, `frozen: ${Date.now() - started} ms for two calls`)
  t.equal(a.pubsub.stats().subscriptions, 1, 'a failed subscribe leaves nothing behind')
  server.thaw()
  await server.kill()
  started = Date.now()
  await t.rejects(a.pubsub.publish('x', 1), { code: 'FRS_PUBSUB_UNAVAILABLE', message: /Redis is unavailable/ })
  t.ok(Date.now() - started < TIMEOUT_MS)
})

t.test('memory transport: same API in one process', async (t) => {
  const pubsub = new PubSub({ transport: new MemoryPubSubTransport() })
  const got: unknown[] = []
  const stop = await pubsub.subscribe('chat', (m) => { got.push(m) }, { schema: Chat })
  await pubsub.psubscribe('chat*', (_m, meta) => { got.push(meta.pattern) })
  let sync = true
  t.equal(await pubsub.publish('chat', { room: 'r', text: 't', at: 1 }), 2)
  await pubsub.publish('chat', { bad: true })
  sync = false
  await waitFor(() => got.length === 3, { timeoutMs: 1_000, what: 'memory deliveries' })
  t.notOk(sync && got.length > 0, 'never delivered synchronously')
  t.same(got.filter((m) => typeof m === 'object'), [{ room: 'r', text: 't', at: 1 }])
  t.equal(pubsub.stats().messagesDropped, 1)
  await stop()
  await pubsub.close()
})
