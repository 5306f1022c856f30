// Stream dead letters and takeover from a dead consumer, against a real Redis: a consumer in another
// process is SIGKILLed while its handler runs and another consumer takes the message over; a handler
// that always throws ends in `<name>:dead` after maxDeliveries with its error and delivery count; an
// entry its consumers kept dying on (a killed consumer's with maxDeliveries 1, or a count Redis kept) is
// dead-lettered without running again; the in-process twin agrees.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import Type from 'typebox'
import { TS_NODE_ARGS, useRedis, waitFor, type RedisServer } from '../../helpers/index.js'
import { RedisStreams, type DeadLetter, type StreamFactory } from '../../../lib/realtime/streams.js'
import { MemoryStreams } from '../../../lib/realtime/memory-streams.js'
import { suiteAclRule } from '../../../lib/redis/acl.js'

const TIMEOUT_MS = 1_000
const Job = Type.Object({ n: Type.Integer() })
const CHILD = fileURLToPath(new URL('./stream-consumer-child.ts', import.meta.url))

function client (t: Test, server: RedisServer): Redis {
  const c = new Redis({ port: server.port, keyPrefix: 'app:', enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: TIMEOUT_MS, retryStrategy: () => 50 })
  c.on('error', () => {})
  t.teardown(() => c.disconnect())
  return c
}

async function redisStreams (t: Test, server: RedisServer): Promise<{ streams: RedisStreams, logged: string[] }> {
  const logged: string[] = []
  const logger = { warn: (_o: object, msg?: string) => { logged.push(msg ?? '') }, error: (_o: object, msg?: string) => { logged.push(msg ?? '') } }
  const main = client(t, server)
  await new Promise((resolve) => main.once('ready', resolve))
  // Short blocking reads: a re-claim is checked between reads.
  const streams = new RedisStreams({ client: main, blockingConnection: () => client(t, server), timeoutMs: TIMEOUT_MS, blockMs: 50, logger })
  t.teardown(() => streams.close())
  return { streams, logged }
}

const pending = async (server: RedisServer, key: string, group: string): Promise<number> =>
  Number((await server.cli('XPENDING', key, group)).split('\n')[0])

/** Reads every dead letter through the public API: the dead-letter stream is a stream like any other. */
async function readDeadLetters<T> (streams: StreamFactory, name: string, schema: typeof Job, expected: number): Promise<Array<DeadLetter<T>>> {
  const letters: Array<DeadLetter<T>> = []
  const reader = await streams.stream(name, schema).deadLetters.consume('ops', 'ops-1', (letter) => { letters.push(letter as DeadLetter<T>) }, { from: 'beginning' })
  await waitFor(() => letters.length >= expected, { timeoutMs: 5_000, what: `${expected} dead letter(s)` })
  await reader.stop()
  return letters
}

/** A handler that always throws ends in the dead-letter stream after maxDeliveries; a good one is acked. */
async function alwaysThrows (t: Test, streams: StreamFactory): Promise<void> {
  const orders = streams.stream('orders', Job)
  const attempts: Array<{ n: number, deliveries: number, reclaimed: boolean }> = []
  const consumer = await orders.consume('billing', 'b1', (order, meta) => {
    attempts.push({ n: order.n, deliveries: meta.deliveries, reclaimed: meta.reclaimed })
    if (order.n === 7) throw new Error('card declined for order 7')
  }, { minIdle: 100, maxDeliveries: 3 })
  const id = await orders.add({ n: 7 })
  await orders.add({ n: 8 })
  await waitFor(() => streams.stats().deadLettered === 1, { timeoutMs: 5_000, what: 'order 7 dead-lettered' })
  t.same(attempts.filter((a) => a.n === 7), [
    { n: 7, deliveries: 1, reclaimed: false }, { n: 7, deliveries: 2, reclaimed: true }, { n: 7, deliveries: 3, reclaimed: true }
  ], 'three deliveries, then no more')
  t.same(attempts.filter((a) => a.n === 8), [{ n: 8, deliveries: 1, reclaimed: false }], 'the good order ran once')
  t.match(streams.stats(), { handlerErrors: 3, deadLettered: 1, acked: 1 }, 'a dead letter is not counted as acked')
  t.same(streams.deadLetterCounts(), [{ stream: 'orders', group: 'billing', count: 1 }])
  const [letter, ...more] = await readDeadLetters<{ n: number }>(streams, 'orders', Job, 1)
  t.same(more, [])
  t.same(letter, { id, group: 'billing', consumer: 'b1', deliveries: 3, error: 'card declined for order 7', message: { n: 7 } })
  await consumer.stop()
  t.equal(attempts.length, 4, 'nothing ran after the dead letter')
  await t.rejects(orders.consume('billing', 'b2', () => {}, { maxDeliveries: 0 }), { name: 'StreamOptionError', code: 'FRS_STREAM_OPTION_INVALID', message: /maxDeliveries must be a whole number of at least 1/ })
}

t.test('redis: a handler that always throws ends in the dead-letter stream after maxDeliveries', async (t) => {
  const server = await useRedis(t)
  const { streams, logged } = await redisStreams(t, server)
  await alwaysThrows(t, streams)
  t.equal(await pending(server, 'app:stream:orders', 'billing'), 0, 'nothing left pending on the stream')
  const raw = await server.cli('XRANGE', 'app:stream:orders:dead', '-', '+')
  t.match(raw, /"deliveries":3/, `the dead letter is one entry of stream:orders:dead: ${raw}`)
  t.equal(logged.filter((m) => /moved to the dead-letter stream "orders:dead"/.test(m)).length, 1, 'logged once')
})

t.test('memory streams: the same dead letter in one process', async (t) => {
  const streams = new MemoryStreams()
  t.teardown(() => streams.close())
  await alwaysThrows(t, streams)
})

/** A consumer in a process of its own takes job 1 and is SIGKILLed while its handler runs: job 1 stays pending on it. */
async function killedMidMessage (t: Test, server: RedisServer, streams: StreamFactory): Promise<string> {
  const jobs = streams.stream('jobs', Job)
  // The child creates the group from '$': start it before adding.
  const child = spawn(process.execPath, [...TS_NODE_ARGS, CHILD, String(server.port)], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const lines = createInterface({ input: child.stdout })
  const said: Array<{ ready?: boolean, handling?: number }> = []
  lines.on('line', (line) => said.push(JSON.parse(line) as { ready?: boolean, handling?: number }))
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)))
  await waitFor(() => said.some((s) => s.ready === true), { timeoutMs: 15_000, what: 'the child consumer reading' })
  const id = await jobs.add({ n: 1 })
  await waitFor(() => said.some((s) => s.handling === 1), { timeoutMs: 5_000, what: 'the child handling job 1' })
  child.kill('SIGKILL')
  t.equal(await exited, 'SIGKILL', 'killed while its handler ran')
  t.equal(await pending(server, 'app:stream:jobs', 'workers'), 1, 'job 1 is pending on the dead consumer')
  return id
}

t.test('redis: a consumer SIGKILLed mid-message; another takes the message over and handles it', async (t) => {
  const server = await useRedis(t)
  const { streams } = await redisStreams(t, server)
  const jobs = streams.stream('jobs', Job)
  const id = await killedMidMessage(t, server, streams)

  const handled: Array<{ n: number, id: string, reclaimed: boolean, deliveries: number }> = []
  const survivor = await jobs.consume('workers', 'survivor', (job, meta) => {
    handled.push({ n: job.n, id: meta.id, reclaimed: meta.reclaimed, deliveries: meta.deliveries })
  }, { minIdle: 200, maxDeliveries: 3 })
  await waitFor(() => handled.length === 1, { timeoutMs: 5_000, what: 'job 1 taken over' })
  t.same(handled, [{ n: 1, id, reclaimed: true, deliveries: 2 }], 'taken over after minIdle, on its second delivery')
  await waitFor(async () => await pending(server, 'app:stream:jobs', 'workers') === 0, { timeoutMs: 3_000, what: 'job 1 acked' })
  t.equal(await server.cli('XLEN', 'app:stream:jobs:dead'), '0', 'no dead letter')
  await survivor.stop()
})

t.test('redis: a consumer SIGKILLed mid-message, maxDeliveries 1: a consumer in another process dead-letters it without running it', async (t) => {
  const server = await useRedis(t)
  const { streams } = await redisStreams(t, server)
  const id = await killedMidMessage(t, server, streams)
  const ran: number[] = []
  const survivor = await streams.stream('jobs', Job).consume('workers', 'survivor', (job) => { ran.push(job.n) }, { minIdle: 200, maxDeliveries: 1 })
  const [letter] = await readDeadLetters<{ n: number }>(streams, 'jobs', Job, 1)
  t.same(letter, { id, group: 'workers', consumer: 'survivor', deliveries: 1, error: 'not acknowledged after 1 delivery: its consumer stopped or died while handling it', message: { n: 1 } },
    'the original id, the delivery count and why, from the process that took it over')
  t.same(ran, [], 'its one allowed delivery was the killed consumer\'s')
  t.equal(streams.stats().deadLettered, 1)
  t.equal(await pending(server, 'app:stream:jobs', 'workers'), 0, 'acked on the stream once dead-lettered')
  await survivor.stop()
})

t.test('redis: an entry its consumers kept dying on is dead-lettered without running again', async (t) => {
  const server = await useRedis(t)
  const { streams } = await redisStreams(t, server)
  const jobs = streams.stream('jobs', Job)
  await server.cli('XGROUP', 'CREATE', 'app:stream:jobs', 'workers', '$', 'MKSTREAM')
  const id = await jobs.add({ n: 9 })
  // Delivered three times to consumers that never acked it (each died on it): the count Redis keeps.
  await server.cli('XREADGROUP', 'GROUP', 'workers', 'dead', 'COUNT', '1', 'STREAMS', 'app:stream:jobs', '>')
  await server.cli('XCLAIM', 'app:stream:jobs', 'workers', 'dead', '0', id, 'IDLE', '60000', 'RETRYCOUNT', '3')
  const ran: number[] = []
  const consumer = await jobs.consume('workers', 'live', (job) => { ran.push(job.n) }, { minIdle: 200, maxDeliveries: 3 })
  const [letter] = await readDeadLetters<{ n: number }>(streams, 'jobs', Job, 1)
  t.same(letter, { id, group: 'workers', consumer: 'live', deliveries: 3, error: 'not acknowledged after 3 deliveries: its consumer stopped or died while handling it', message: { n: 9 } })
  t.same(ran, [], 'the handler never ran a fourth time')
  t.equal(await pending(server, 'app:stream:jobs', 'workers'), 0)
  await consumer.stop()
})

t.test('redis: an ACL user without XPENDING (the rule of an earlier version) still takes entries over', async (t) => {
  const server = await useRedis(t)
  // The suite's rule for this server (Redis 7.0 refuses one naming CLIENT SETINFO), less XPENDING.
  const info = await server.cli('INFO', 'server')
  const valkey = /valkey_version:(\S+)/.exec(info)?.[1]
  const serverVersion = valkey === undefined ? /redis_version:(\S+)/.exec(info)?.[1] : `valkey ${valkey}`
  const rule = suiteAclRule('app:', { serverVersion }).replace(' +xpending', '')
  t.equal(await server.cli('ACL', 'SETUSER', 'old', 'on', '>old-secret', ...rule.split(' ')), 'OK')
  const connect = (): Redis => {
    const c = new Redis({ port: server.port, username: 'old', password: 'old-secret', keyPrefix: 'app:', enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: TIMEOUT_MS })
    c.on('error', () => {})
    t.teardown(() => c.disconnect())
    return c
  }
  const warnings: string[] = []
  const logger = { warn: (_o: object, msg?: string) => { warnings.push(msg ?? '') }, error: () => {} }
  const main = connect()
  await new Promise((resolve) => main.once('ready', resolve))
  const streams = new RedisStreams({ client: main, blockingConnection: connect, timeoutMs: TIMEOUT_MS, blockMs: 50, logger })
  t.teardown(() => streams.close())
  const jobs = streams.stream('jobs', Job)
  await server.cli('XGROUP', 'CREATE', 'app:stream:jobs', 'workers', '$', 'MKSTREAM')
  await jobs.add({ n: 1 })
  await server.cli('XREADGROUP', 'GROUP', 'workers', 'dead', 'COUNT', '1', 'STREAMS', 'app:stream:jobs', '>')
  const handled: Array<{ n: number, deliveries: number }> = []
  const consumer = await jobs.consume('workers', 'live', (job, meta) => { handled.push({ n: job.n, deliveries: meta.deliveries }) }, { minIdle: 100, maxDeliveries: 3 })
  await waitFor(() => handled.length === 1, { timeoutMs: 5_000, what: 'the entry taken over' })
  t.same(handled, [{ n: 1, deliveries: 2 }])
  t.equal(warnings.filter((w) => /refused XPENDING/.test(w)).length, 1, 'one warning naming what to grant')
  await consumer.stop()
})
