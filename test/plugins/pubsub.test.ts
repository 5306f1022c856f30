// app.pubsub, app.presence and the demo SSE routes, through the demo app as server.ts builds it:
// two app instances on one Redis exchange typed messages, an invalid one is dropped and logged,
// subscriptions survive a Redis restart, the SSE route relays a message published by the other
// instance over a real HTTP connection, and memory mode offers the same API.
import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import Type from 'typebox'
import { useRedis, waitFor } from '../helpers/index.js'
import { buildTestApp } from '../helper.js'

const Chat = Type.Object({ text: Type.String(), from: Type.String() })

t.test('two app instances exchange typed messages; an invalid one is dropped and logged; a restart is survived', async (t) => {
  const redis = await useRedis(t)
  const env = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'app:' }
  const a = await buildTestApp(t, env)
  const b = await buildTestApp(t, env)
  const chat = b.app.pubsub.channel('chat', Chat)
  const received: Array<{ text: string, from: string }> = []
  await chat.subscribe((message) => { received.push(message) })

  await a.app.pubsub.channel('chat', Chat).publish({ text: 'hi', from: 'a' })
  await a.app.pubsub.publish('chat', { text: 7 })
  await waitFor(() => received.length === 1 && b.app.pubsub.stats().messagesDropped === 1, { timeoutMs: 2_000, what: 'one message, one drop' })
  t.same(received, [{ text: 'hi', from: 'a' }])
  const drop = b.logs().find((l) => /dropped a message/.test(l.msg ?? ''))
  t.match(drop, { level: 40, plugin: 'pubsub', channel: 'chat' }, 'logged as a warning by the app logger')
  t.equal(await redis.cli('PUBSUB', 'NUMSUB', 'app:ps:chat'), 'app:ps:chat\n1', 'the channel carries the key prefix and the pub/sub segment')

  // ioredis' own re-subscribe leaves its rejection unhandled when the link drops again at once: the
  // suite's subscriber runs without it and the transport and the cache's bus subscribe on 'ready'.
  t.equal((b.app.redisConnections.subscriber() as { options: { autoResubscribe?: boolean } }).options.autoResubscribe, false, 'the subscriber connection has autoResubscribe off')

  // Presence is shared too.
  await a.app.presence.join('lobby', 'ada')
  t.equal(await b.app.presence.count('lobby'), 1)
  t.match(b.app.presence.stats().sizes, { lobby: 1 })

  await redis.kill()
  await redis.restart()
  await waitFor(async () => (await a.app.pubsub.publish('chat', { text: 'back', from: 'a' }).catch(() => 0)) > 0,
    { timeoutMs: 5_000, what: 'the subscriber re-subscribed after the restart' })
  await waitFor(() => received.some((m) => m.text === 'back'), { timeoutMs: 2_000, what: 'delivery after the restart' })
  t.pass('received after the restart')
})

async function readUntil (res: http.IncomingMessage, pattern: RegExp, timeoutMs: number): Promise<string> {
  let text = ''
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`SSE: no ${String(pattern)} within ${timeoutMs} ms; got ${JSON.stringify(text)}`)), timeoutMs)
    const onData = (chunk: Buffer): void => {
      text += chunk.toString()
      if (pattern.test(text)) {
        clearTimeout(timer)
        res.off('data', onData)
        resolve(text)
      }
    }
    res.on('data', onData)
  })
}

t.test('an app channel named like the cache\'s invalidation channel cannot reach the cache', async (t) => {
  const redis = await useRedis(t)
  const env = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'app:' }
  const a = await buildTestApp(t, env)
  const b = await buildTestApp(t, env)
  await b.app.cache.set('k', 'kept', { ttl: '1m', tags: ['t'] })
  t.equal(await b.app.cache.get('k'), 'kept', 'cached in the memory tier of b')
  // A user-chosen channel name (chat room, topic) equal to the suite's own, carrying its wire format.
  await a.app.pubsub.publish('cache:invalidate', { from: 'attacker', invalidation: { kind: 'tags', tags: ['t'] } })
  await a.app.pubsub.publish('cache:invalidate', { from: 'attacker', invalidation: { kind: 'namespace', namespace: 'default' } })
  t.equal(await redis.cli('PUBSUB', 'NUMSUB', 'app:ps:cache:invalidate'), 'app:ps:cache:invalidate\n0', 'published under the pub/sub segment, where nothing of the suite listens')
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(b.app.cache.stats().invalidationsReceived ?? 0, 0, 'the cache received no invalidation')
  t.equal(await b.app.cache.get('k'), 'kept', 'the entry is untouched')
})

t.test('SSE demo route relays a message published by another instance, and unsubscribes on disconnect', async (t) => {
  const redis = await useRedis(t)
  const env = { REDIS_URL: redis.url }
  const listener = await buildTestApp(t, env)
  const publisher = await buildTestApp(t, env)
  await listener.app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = listener.app.server.address() as AddressInfo

  const req = http.get({ host: '127.0.0.1', port, path: '/demo/events' })
  const res = await new Promise<http.IncomingMessage>((resolve) => req.once('response', resolve))
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/event-stream/)
  await readUntil(res, /: subscribed/, 2_000)
  t.equal(listener.app.pubsub.stats().subscriptions, 1)

  const posted = await publisher.app.inject({ method: 'POST', url: '/demo/events', payload: { text: 'hello sse', from: 'test' } })
  t.equal(posted.statusCode, 202)
  t.same(posted.json(), { delivered: 1 })
  const text = await readUntil(res, /hello sse/, 2_000)
  t.match(text, /event: message\ndata: {"text":"hello sse","from":"test"}\n\n/)

  const bad = await publisher.app.inject({ method: 'POST', url: '/demo/events', payload: { text: '' } })
  t.equal(bad.statusCode, 400)
  t.match(bad.json(), { message: /text/ })

  req.destroy()
  await waitFor(() => listener.app.pubsub.stats().subscriptions === 0, { timeoutMs: 2_000, what: 'unsubscribed after the client left' })
  await waitFor(async () => (await redis.cli('PUBSUB', 'NUMSUB', 'demo-events')) === 'demo-events\n0', { timeoutMs: 2_000, what: 'UNSUBSCRIBE reached Redis' })
  t.pass('subscription cleaned up')

  // An open stream must not hold shutdown.
  const req2 = http.get({ host: '127.0.0.1', port, path: '/demo/events' })
  req2.on('error', () => {})
  await readUntil(await new Promise<http.IncomingMessage>((resolve) => req2.once('response', resolve)), /: subscribed/, 2_000)
  const closing = Date.now()
  await listener.app.close()
  t.ok(Date.now() - closing < 2_000, `close() with an open stream took ${Date.now() - closing} ms`)
})

t.test('Redis down: the SSE route and publish answer 503 quickly', async (t) => {
  const redis = await useRedis(t)
  // No failover wait: this is the outage answer (a lost connection waits REDIS_FAILOVER_WAIT first,
  // test/plugins/redis-failover-features.test.ts).
  const { app } = await buildTestApp(t, { REDIS_URL: redis.url, REDIS_FAILOVER_WAIT: '0' })
  await redis.kill()
  const started = Date.now()
  const post = await app.inject({ method: 'POST', url: '/demo/events', payload: { text: 'x' } })
  t.equal(post.statusCode, 503)
  t.equal(post.headers['retry-after'], '1')
  t.equal((await app.inject('/demo/events')).statusCode, 503)
  t.ok(Date.now() - started < 2_500, `503s within ${Date.now() - started} ms`)
})

t.test('memory mode: the same API in one process', async (t) => {
  const { app } = await buildTestApp(t, {})
  const got: string[] = []
  await app.pubsub.channel('chat', Chat).subscribe((m) => { got.push(m.text) })
  t.equal(await app.pubsub.channel('chat', Chat).publish({ text: 'local', from: 'me' }), 1)
  await waitFor(() => got.length === 1, { timeoutMs: 1_000, what: 'local delivery' })
  await app.presence.join('room', 'u1')
  t.equal(await app.presence.count('room'), 1)
  const lock = await app.locks.acquire('job')
  t.equal(lock.fencingToken, 1)
  await t.rejects(app.locks.acquire('job'), { code: 'FRS_LOCK_BUSY' })
  t.ok(await lock.release())
  const posted = await app.inject({ method: 'POST', url: '/demo/events', payload: { text: 'hello' } })
  t.same(posted.json(), { delivered: 0 })
})
