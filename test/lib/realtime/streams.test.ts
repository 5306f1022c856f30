// Streams against a real Redis: consumer groups, XACK only after the handler resolved, re-claim of
// entries a failed handler or a dead consumer left pending, invalid entries dropped, MAXLEN ~, and
// the in-process implementation.
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import Type from 'typebox'
import { useRedis, waitFor, type RedisServer } from '../../helpers/index.js'
import { RedisStreams, type StreamFactory } from '../../../lib/realtime/streams.js'
import { MemoryStreams } from '../../../lib/realtime/memory-streams.js'

const TIMEOUT_MS = 1_000
const Order = Type.Object({ n: Type.Integer() })

function client (t: Test, server: RedisServer): Redis {
  const c = new Redis({ port: server.port, keyPrefix: 'app:', enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: TIMEOUT_MS, retryStrategy: () => 50 })
  c.on('error', () => {})
  t.teardown(() => c.disconnect())
  return c
}

async function redisStreams (t: Test, server: RedisServer): Promise<{ streams: RedisStreams, warnings: string[] }> {
  const warnings: string[] = []
  const logger = { warn: (_o: object, msg?: string) => { warnings.push(msg ?? '') }, error: (_o: object, msg?: string) => { warnings.push(msg ?? '') } }
  const main = client(t, server)
  await new Promise((resolve) => main.once('ready', resolve))
  const streams = new RedisStreams({ client: main, blockingConnection: () => client(t, server), timeoutMs: TIMEOUT_MS, logger })
  t.teardown(() => streams.close())
  return { streams, warnings }
}

async function ackAndReclaim (t: Test, streams: StreamFactory, pending?: () => Promise<number>): Promise<void> {
  const orders = streams.stream('orders', Order, {})
  const handled: number[] = []
  let failures = 0
  const handler = async (message: { n: number }, meta: { reclaimed: boolean }): Promise<void> => {
    if (message.n === 3 && !meta.reclaimed) {
      failures++
      throw new Error('payment provider down') // left pending, re-claimed after minIdle
    }
    handled.push(message.n)
  }
  const c1 = await orders.consume('billing', 'c1', handler, { minIdle: 1_000 })
  const c2 = await orders.consume('billing', 'c2', handler, { minIdle: 1_000 })
  for (let n = 1; n <= 6; n++) await orders.add({ n })
  // XACK follows the handler: wait for it too.
  await waitFor(() => handled.length === 6 && streams.stats().acked === 6, { timeoutMs: 5_000, what: 'six orders handled and acked' })
  t.same([...handled].sort(), [1, 2, 3, 4, 5, 6], 'each order handled once, 3 after a re-claim')
  t.equal(failures, 1)
  const stats = streams.stats()
  t.match(stats, { added: 6, acked: 6, handlerErrors: 1 }, JSON.stringify(stats))
  t.ok(stats.reclaimed >= 1)
  if (pending !== undefined) t.equal(await pending(), 0, 'nothing left pending')
  await orders.add({ n: 'bad' } as never).catch((err: Error) => t.match(err.message, /does not match its schema/))
  const stopping = Date.now()
  await Promise.all([c1.stop(), c2.stop()])
  t.ok(Date.now() - stopping < 1_500, 'stop ends a blocked read at once')
}

t.test('redis: consumer group, ack after the handler, re-claim of a failed entry', async (t) => {
  const server = await useRedis(t)
  const { streams } = await redisStreams(t, server)
  await ackAndReclaim(t, streams, async () => Number((await server.cli('XPENDING', 'app:stream:orders', 'billing')).split('\n')[0]))
  t.equal(await server.cli('XLEN', 'app:stream:orders'), '6')
})

t.test('redis: a dead consumer\'s entries are re-claimed; invalid entries are dropped and acked', async (t) => {
  const server = await useRedis(t)
  const { streams, warnings } = await redisStreams(t, server)
  const jobs = streams.stream('jobs', Order, { maxLen: 50 })
  const handled: Array<{ n: number, reclaimed: boolean }> = []
  // A consumer that read two entries and died before acking them.
  await server.cli('XGROUP', 'CREATE', 'app:stream:jobs', 'workers', '$', 'MKSTREAM')
  await jobs.add({ n: 1 })
  await server.cli('XADD', 'app:stream:jobs', '*', 'data', '{"n":"not a number"}')
  await server.cli('XREADGROUP', 'GROUP', 'workers', 'dead', 'COUNT', '10', 'STREAMS', 'app:stream:jobs', '>')

  const consumer = await jobs.consume('workers', 'live', (m, meta) => { handled.push({ n: m.n, reclaimed: meta.reclaimed }) }, { minIdle: 200 })
  await jobs.add({ n: 2 })
  await waitFor(() => handled.length === 2, { timeoutMs: 5_000, what: 'both jobs' })
  t.same(handled, [{ n: 2, reclaimed: false }, { n: 1, reclaimed: true }])
  await waitFor(async () => (await server.cli('XPENDING', 'app:stream:jobs', 'workers')).startsWith('0'), { timeoutMs: 3_000, what: 'no pending entries' })
  t.equal(streams.stats().dropped, 1, 'the invalid entry was dropped')
  t.ok(warnings.some((w) => /dropped a message/.test(w)), 'and logged')

  for (let n = 0; n < 300; n++) await jobs.add({ n })
  const length = Number(await server.cli('XLEN', 'app:stream:jobs'))
  t.ok(length < 250, `MAXLEN ~ trims (length ${length})`)
  await consumer.stop()
})

t.test('redis: reading recovers after a restart; add fails clearly while down', async (t) => {
  const server = await useRedis(t, { appendonly: 'always' })
  const { streams, warnings } = await redisStreams(t, server)
  const events = streams.stream('events', Order, {})
  const handled: number[] = []
  const consumer = await events.consume('g', 'c', (m) => { handled.push(m.n) }, { minIdle: 500 })
  await events.add({ n: 1 })
  await waitFor(() => handled.length === 1, { timeoutMs: 2_000, what: 'first' })
  await server.kill()
  const started = Date.now()
  await t.rejects(events.add({ n: 2 }), { code: 'FRS_STREAM_UNAVAILABLE' })
  t.ok(Date.now() - started < TIMEOUT_MS)
  await server.restart()
  await waitFor(async () => (await events.add({ n: 3 }).then(() => true, () => false)), { timeoutMs: 5_000, what: 'add after restart' })
  await waitFor(() => handled.includes(3), { timeoutMs: 5_000, what: 'read after restart' })
  t.equal(warnings.filter((w) => /reading failed/.test(w)).length, 1, 'one warning for the outage')
  await consumer.stop()
})

t.test('memory streams: same rules in one process', async (t) => {
  const streams = new MemoryStreams()
  t.teardown(() => streams.close())
  await ackAndReclaim(t, streams)
})
