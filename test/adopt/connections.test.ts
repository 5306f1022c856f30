// Issue 26 item 4: app.redisConnections.create() opens a connection for another library with the
// suite's connection settings (TLS, ACL, Sentinel/Cluster, reconnects) but none of its per-command
// bounds or key prefix; it is closed with the app. End to end with a real BullMQ Queue and Worker.
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { Queue, Worker, type Job } from 'bullmq'
import type { Redis } from 'ioredis'
import redisSuite from '../../index.js'
import { useRedis, useSentinelGroup, waitFor, type RedisServer } from '../helpers/index.js'

interface Doubling { n: number }

type Parts = ReturnType<typeof doublingQueue>

async function suiteApp (t: { teardown: (fn: () => unknown) => void }, env: Record<string, string>): Promise<{ app: FastifyInstance, parts: Parts }> {
  const app = Fastify()
  t.teardown(() => app.close())
  // A tight command bound and a prefix: what BullMQ must not inherit.
  await app.register(redisSuite, { env: { NODE_ENV: 'test', REDIS_KEY_PREFIX: 'app:', REDIS_COMMAND_TIMEOUT: '200ms', ...env }, processEnv: false })
  const parts = doublingQueue(app)
  // The suite closes its connections after the app's own onClose hooks, since it was registered first.
  app.addHook('onClose', async () => {
    await parts.worker.close()
    await parts.queue.close()
  })
  await app.ready()
  return { app, parts }
}

/** A queue and a worker on connections the suite made; closed in the app's onClose, before the suite's. */
function doublingQueue (app: FastifyInstance): { queue: Queue<Doubling, number>, worker: Worker<Doubling, number>, connections: Redis[] } {
  const connections = ['bullmq-queue', 'bullmq-worker'].map((name) => app.redisConnections.create(name) as Redis)
  const [queueConnection, workerConnection] = connections as [Redis, Redis]
  const queue = new Queue<Doubling, number>('doubling', { connection: queueConnection })
  queue.on('error', () => {})
  // Blocking reads of several seconds: with the suite's 200 ms commandTimeout they would time out.
  const worker = new Worker<Doubling, number>('doubling', async (job: Job<Doubling>) => job.data.n * 2, { connection: workerConnection, drainDelay: 2 })
  worker.on('error', () => {})
  return { queue, worker, connections }
}

/** Adds one job per number and resolves with the worker's results, in the order added. */
async function runJobs ({ queue, worker }: Parts, numbers: number[]): Promise<number[]> {
  const results = new Map<string, number>()
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${results.size} of ${numbers.length} jobs completed in 20 s`)), 20_000)
    worker.on('completed', (job, result) => {
      if (job.id !== undefined) results.set(job.id, result)
      if (results.size === numbers.length) { clearTimeout(timer); resolve() }
    })
  })
  const jobs = await Promise.all(numbers.map((n) => queue.add('double', { n })))
  await done
  worker.removeAllListeners('completed')
  return jobs.map((job) => results.get(job.id ?? '') ?? Number.NaN)
}

t.test('standalone: BullMQ processes jobs on connections from redisConnections.create; the app closes them', async (t) => {
  const redis: RedisServer = await useRedis(t)
  const { app, parts } = await suiteApp(t, { REDIS_URL: `redis://127.0.0.1:${redis.port}` })
  const [first] = parts.connections as [Redis]
  t.equal(first.options.keyPrefix ?? '', '', 'no key prefix (BullMQ refuses ioredis prefixes)')
  t.equal(first.options.commandTimeout, undefined, 'no command timeout')
  t.equal(first.options.maxRetriesPerRequest, null, 'maxRetriesPerRequest: null, as BullMQ workers require')
  t.same(await runJobs(parts, [1, 2, 3]), [2, 4, 6], 'every job processed by the worker')
  t.match(await redis.cli('CLIENT', 'LIST'), /name=bullmq-worker /, 'named connections')
  t.ok(Number(await redis.cli('EXISTS', 'bull:doubling:meta')) === 1, 'BullMQ\'s own keys, without the suite\'s prefix')
  await app.close()
  await waitFor(async () => !/name=bullmq-/.test(await redis.cli('CLIENT', 'LIST')), { what: 'the bullmq-* connections closed', timeoutMs: 3_000 })
  t.pass('closed with the app: no bullmq-* connection left on the server')
})

t.test('Sentinel: BullMQ processes jobs before and after the master is killed', async (t) => {
  const group = await useSentinelGroup(t, { password: 'sentinel-group-pw' })
  const { parts } = await suiteApp(t, {
    REDIS_SENTINELS: group.sentinelAddresses.map((a) => `${a.host}:${a.port}`).join(','),
    REDIS_SENTINEL_NAME: group.name,
    REDIS_PASSWORD: 'sentinel-group-pw'
  })
  t.ok((parts.connections[0]?.options.sentinels ?? []).length === 3, 'reaches the master through the Sentinels')
  t.same(await runJobs(parts, [1, 2]), [2, 4], 'processed on the first master')
  await group.master.kill()
  // Added while the Sentinels elect a new master: queued by the connection, run once it moved there.
  t.same(await runJobs(parts, [5, 6]), [10, 12], 'processed on the promoted replica')
  const promoted = await group.getMasterAddress()
  t.equal(promoted.port, group.replica.port, 'the replica was promoted')
})
