// The background PING judges Redis, not the event loop: a loop blocked (or starved by microtasks)
// longer than the PING timeout while Redis is fine must not mark Redis down. A frozen Redis is still
// caught. No timing assertions beyond that.
import t from 'tap'
import { Redis } from 'ioredis'
import { RedisMonitor, type RedisStatus } from '../../lib/redis/monitor.js'
import { sleep, useRedis, waitFor, type TeardownScope } from '../helpers/index.js'

const PING_TIMEOUT = 100

const quiet = { info: () => {}, warn: () => {} }

interface Monitored {
  monitor: RedisMonitor
  statuses: RedisStatus[]
  /** Runs `block` right after each of the next `times` PINGs is sent (see monitored). */
  afterPings: (times: number, block: () => void | Promise<void>) => Promise<void>
  freeze: () => void
  thaw: () => void
}

async function monitored (t: TeardownScope): Promise<Monitored> {
  const redis = await useRedis(t)
  const client = new Redis(redis.port, redis.host, { maxRetriesPerRequest: 1, commandTimeout: 5_000 })
  t.teardown(() => { client.disconnect() })
  // Each block starts right after a PING is written, in the check phase: the poll phase of this turn
  // is over, so the reply arrives in the socket during the block, and the next turn runs the expired
  // timers before it reads the socket, as after a block that began in a request handler.
  let pending: { times: number, block: () => void | Promise<void>, done: () => void } | undefined
  const ping = client.ping.bind(client) as () => Promise<string>
  client.ping = (() => {
    const run = pending
    if (run === undefined || run.times === 0) return ping()
    run.times--
    return new Promise<string>((resolve, reject) => {
      setImmediate(() => {
        ping().then(resolve, reject)
        Promise.resolve(run.block()).then(() => { if (run.times === 0) run.done() }, () => {})
      })
    })
  }) as never
  const monitor = new RedisMonitor(client, {
    mode: 'standalone',
    address: `${redis.host}:${redis.port}`,
    pingInterval: 20,
    pingTimeout: PING_TIMEOUT,
    degradedLatency: 50,
    logger: quiet
  })
  t.teardown(() => { monitor.stop() })
  const statuses: RedisStatus[] = []
  monitor.start()
  await waitFor(() => monitor.state.status === 'connected', { what: 'the monitor to see Redis connected' })
  monitor.on('change', (state) => { statuses.push(state.status) })
  return {
    monitor,
    statuses,
    afterPings: (times, block) => new Promise((resolve) => { pending = { times, block, done: resolve } }),
    freeze: () => { redis.freeze() },
    thaw: () => { redis.thaw() }
  }
}

/** Keeps the thread busy for `ms`: nothing else runs meanwhile, timers and socket reads included. */
function blockSync (ms: number): void {
  const end = performance.now() + ms
  while (performance.now() < end) { /* busy */ }
}

/** Runs already-resolved promises for `ms`: the loop never reaches timers or I/O (a round of memory hits). */
async function starveWithMicrotasks (ms: number): Promise<void> {
  const end = performance.now() + ms
  const hit = Promise.resolve(1)
  while (performance.now() < end) await hit
}

t.test('a synchronously blocked event loop does not mark a healthy Redis down', async (t) => {
  const { statuses, afterPings } = await monitored(t)
  await afterPings(4, () => { blockSync(PING_TIMEOUT * 4) })
  await sleep(PING_TIMEOUT * 2)
  t.notOk(statuses.includes('disconnected'), `no disconnected state (changes: ${statuses.join(', ') || 'none'})`)
})

t.test('an event loop starved by microtasks does not mark a healthy Redis down', async (t) => {
  const { statuses, afterPings } = await monitored(t)
  await afterPings(4, () => starveWithMicrotasks(PING_TIMEOUT * 4))
  await sleep(PING_TIMEOUT * 2)
  t.notOk(statuses.includes('disconnected'), `no disconnected state (changes: ${statuses.join(', ') || 'none'})`)
})

t.test('a frozen Redis is still reported disconnected, and connected again once it answers', async (t) => {
  const { monitor, freeze, thaw } = await monitored(t)
  freeze()
  t.teardown(thaw)
  await waitFor(() => monitor.state.status === 'disconnected', { what: 'the monitor to see the frozen Redis as disconnected' })
  thaw()
  await waitFor(() => monitor.state.status === 'connected', { what: 'the monitor to see Redis connected again' })
  t.pass('frozen: disconnected; thawed: connected')
})
