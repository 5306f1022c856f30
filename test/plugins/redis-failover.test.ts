// REDIS_FAILOVER_WAIT (issue 19, DESIGN.md §3): a command issued while the connection is being
// re-established waits for it, up to the budget counted from the loss; past the budget, and for the
// rest of a longer outage, commands fail at once and nothing queues. Real redis-server, SIGKILLed.
import t from 'tap'
import { Redis } from 'ioredis'
import { FailoverWait } from '../../lib/redis/failover.js'
import { useRedis, waitFor } from '../helpers/index.js'
import { buildTestApp } from '../helper.js'

const FAIL_FAST = /enableOfflineQueue options is false/

/** A client with the suite's fail-fast options (no offline queue, no retry per request, no resend), reconnecting every 20 ms. */
function boundedClient (port: number): Redis {
  return new Redis({ port, enableOfflineQueue: false, maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false, retryStrategy: () => 20, lazyConnect: true })
}

async function outcome (command: Promise<unknown>): Promise<{ ok: boolean, message: string, code: string | undefined, ms: number }> {
  const started = Date.now()
  try {
    await command
    return { ok: true, message: '', code: undefined, ms: Date.now() - started }
  } catch (err) {
    return { ok: false, message: (err as Error).message, code: (err as { code?: string }).code, ms: Date.now() - started }
  }
}

t.test('a restart shorter than the budget costs no command: writes issued in the gap run once it is back', async (t) => {
  const redis = await useRedis(t)
  const { app } = await buildTestApp(t, { REDIS_URL: `redis://127.0.0.1:${redis.port}`, REDIS_FAILOVER_WAIT: '10s', REDIS_RETRY_MAX_DELAY: '100ms' })
  await app.redis.set('counter', '0')
  await redis.kill()
  await waitFor(() => app.redis.status !== 'ready', { timeoutMs: 5_000, what: 'the client notices the SIGKILL' })
  const pending = Array.from({ length: 20 }, () => outcome(app.redis.incr('counter')))
  await redis.restart()
  const results = await Promise.all(pending)
  t.same(results.filter((r) => !r.ok).map((r) => r.message), [], 'no command issued during the gap failed')
  t.equal(await app.redis.get('counter'), '20', 'each queued INCR ran exactly once')
  t.comment(`longest wait in the gap: ${Math.max(...results.map((r) => r.ms))} ms`)
})

t.test('an outage longer than the budget: waiting commands fail when it runs out, later ones at once, nothing queues', async (t) => {
  const redis = await useRedis(t)
  const { app, logs } = await buildTestApp(t, { REDIS_URL: `redis://127.0.0.1:${redis.port}`, REDIS_FAILOVER_WAIT: '1s', REDIS_RETRY_MAX_DELAY: '100ms' })
  t.equal(await app.redis.ping(), 'PONG')
  await redis.kill()
  await waitFor(() => app.redis.status !== 'ready', { timeoutMs: 5_000, what: 'the client notices the SIGKILL' })
  t.ok(app.redisConnections.failoverWaitLeft() > 0, 'a request deadline can see the wait left (sessions add it)')

  const inBudget = await Promise.all([outcome(app.redis.get('a')), outcome(app.redis.set('b', '1'))])
  for (const r of inBudget) t.match(r, { ok: false, code: 'FRS_REDIS_FAILOVER_WAIT_EXPIRED' }, 'a command in the budget waits for it, then fails with the budget error')
  t.comment(`in the budget: waited ${inBudget.map((r) => r.ms).join(', ')} ms (budget 1000 ms from the loss)`)

  const late = await Promise.all(Array.from({ length: 50 }, () => outcome(app.redis.get('a'))))
  t.ok(late.every((r) => !r.ok && FAIL_FAST.test(r.message)), 'past the budget every command takes the fail-fast path (no offline queue)')
  t.equal((app.redis as unknown as { offlineQueue: { length: number } }).offlineQueue.length, 0, 'nothing is queued once the budget is spent')
  t.comment(`past the budget: slowest failure ${Math.max(...late.map((r) => r.ms))} ms`)
  t.equal(app.redisConnections.failoverWaitLeft(), 0, 'no wait left once the budget is spent')
  t.equal(logs().filter((l) => /REDIS_FAILOVER_WAIT/.test(l.msg ?? '')).length, 1, 'one warning for the outage, not one per command')

  await redis.restart()
  await waitFor(() => app.redis.status === 'ready', { timeoutMs: 10_000, what: 'the client reconnects' })
  t.equal(await app.redis.ping(), 'PONG')
  // A new loss gets a new budget: the wait is per outage, not spent once for the process.
  await redis.kill()
  await waitFor(() => app.redis.status !== 'ready', { timeoutMs: 5_000, what: 'the client notices the second SIGKILL' })
  t.match(await outcome(app.redis.get('a')), { ok: false, code: 'FRS_REDIS_FAILOVER_WAIT_EXPIRED' }, 'the second outage waits again')
})

t.test('REDIS_FAILOVER_WAIT=0 keeps the old rule: every command fails at once while disconnected', async (t) => {
  const redis = await useRedis(t)
  const { app } = await buildTestApp(t, { REDIS_URL: `redis://127.0.0.1:${redis.port}`, REDIS_FAILOVER_WAIT: '0' })
  t.equal(await app.redis.ping(), 'PONG')
  await redis.kill()
  await waitFor(() => app.redis.status !== 'ready', { timeoutMs: 5_000, what: 'the client notices the SIGKILL' })
  t.match(await outcome(app.redis.get('a')), { ok: false, message: FAIL_FAST })
})

t.test('the ioredis internals the wait relies on are there (an upgrade must not silently undo it)', async (t) => {
  const redis = await useRedis(t)
  const { app } = await buildTestApp(t, { REDIS_URL: `redis://127.0.0.1:${redis.port}` })
  const client = app.redis as unknown as Record<string, unknown>
  t.type((client.offlineQueue as { length?: unknown } | undefined)?.length, 'number', 'offlineQueue')
  t.type((client.commandQueue as { length?: unknown } | undefined)?.length, 'number', 'commandQueue')
  t.type(client.flushQueue, 'function', 'flushQueue')
  t.ok('reconnectTimeout' in client, 'reconnectTimeout')
  t.equal(app.redisConnections.failoverWaitLeft(), 0, 'no wait left while connected')
})

t.test('a held failover: no command issued after hold() reaches the old master; the ones in flight get their replies', async (t) => {
  const redis = await useRedis(t)
  const client = boundedClient(redis.port)
  const observer = new Redis({ port: redis.port })
  t.teardown(() => { client.disconnect(); observer.disconnect() })
  await client.connect()
  const wait = new FailoverWait(client, { budgetMs: 5_000 })
  const subscriber = client.duplicate() // as the pub/sub connection is made: before any failover
  // Sent before the hold: in flight when it starts, answered by the old master.
  const inFlight = Array.from({ length: 50 }, (_, i) => outcome(client.set(`before:${i}`, '1')))
  t.equal(wait.hold(), true, 'the hold starts')
  t.equal(wait.hold(), false, 'a second announcement of the same failover changes nothing')
  t.not(subscriber.options.retryStrategy, client.options.retryStrategy, 'the hold is this client\'s: a duplicate keeps reconnecting on its own terms')
  // Issued after the hold, while the old connection is still open for the replies: must be held back.
  const held = Array.from({ length: 50 }, (_, i) => outcome(client.set(`after:${i}`, '1')))
  t.same((await Promise.all(inFlight)).filter((r) => !r.ok), [], 'the commands in flight were answered')
  await waitFor(() => client.status === 'reconnecting', { timeoutMs: 5_000, what: 'the client leaves the old master' })
  await new Promise((resolve) => setTimeout(resolve, 300)) // longer than its retry delay: held, not retried
  t.equal(client.status, 'reconnecting', 'no reconnect to the old master while held')
  t.equal(await observer.exists(...Array.from({ length: 50 }, (_, i) => `after:${i}`)), 0, 'nothing issued after the hold reached the old master')
  wait.release()
  t.same((await Promise.all(held)).filter((r) => !r.ok), [], 'the held commands run once released (the new master)')
  t.equal(await observer.exists(...Array.from({ length: 50 }, (_, i) => `after:${i}`)), 50)
  wait.detach()
})

t.test('a hold that starts while a reconnect waits for its ready check keeps the client off the old master', async (t) => {
  const redis = await useRedis(t)
  const client = boundedClient(redis.port)
  const observer = new Redis({ port: redis.port })
  t.teardown(() => { client.disconnect(); observer.disconnect() })
  await client.connect()
  const wait = new FailoverWait(client, { budgetMs: 5_000 })
  // The announcement lands between the ready check's INFO being sent and its reply (ioredis' own
  // _readyCheck, wrapped to time it): ended rather than destroyed, that socket still went 'ready'.
  const internals = client as unknown as { _readyCheck: (callback: unknown) => void }
  const readyCheck = internals._readyCheck.bind(client)
  let armed = true
  internals._readyCheck = (callback) => {
    readyCheck(callback)
    if (armed) {
      armed = false
      t.equal(wait.hold(), true, 'the hold starts while the ready check is in flight')
    }
  }
  await observer.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes')
  await waitFor(() => !armed, { timeoutMs: 5_000, what: 'the reconnect reaches its ready check' })
  const during = outcome(client.set('during-hold', '1'))
  await new Promise((resolve) => setTimeout(resolve, 300)) // many retry delays
  t.not(client.status, 'ready', 'not ready on the old master while held')
  t.equal(await observer.exists('during-hold'), 0, 'nothing issued during the hold reached the old master')
  wait.release()
  t.equal((await during).ok, true, 'the held command runs once released')
  wait.detach()
})

t.test('a promotion followed early: kept once the leader confirms it; unconfirmed after 2 s, the client leaves it and holds again', async (t) => {
  const redis = await useRedis(t)
  const observer = new Redis({ port: redis.port })
  t.teardown(() => { observer.disconnect() })
  for (const confirm of [true, false]) {
    const client = boundedClient(redis.port)
    await client.connect()
    const wait = new FailoverWait(client, { budgetMs: 10_000 })
    t.equal(wait.hold(), true)
    await waitFor(() => client.status === 'reconnecting', { what: 'the hold leaves the old master' })
    // The poll saw the replica answer as a master (here the same server stands for it).
    wait.promoted({ host: '127.0.0.1', port: 1 }, { host: '127.0.0.1', port: redis.port })
    await waitFor(() => client.status === 'ready', { what: 'the client follows the promotion at once' })
    t.equal(wait.hold(), false, 'a late announcement of the same failover does not hold it again')
    if (confirm) wait.confirmed()
    await new Promise((resolve) => setTimeout(resolve, 2_300))
    if (confirm) {
      t.equal(client.status, 'ready', 'confirmed by +promoted-slave: the client stays on the new master')
    } else {
      t.equal(client.status, 'reconnecting', 'unconfirmed: the client left the replica and is held')
      const held = outcome(client.set('held-after-unconfirmed', '1'))
      await new Promise((resolve) => setTimeout(resolve, 200))
      t.equal(await observer.exists('held-after-unconfirmed'), 0, 'commands wait instead of going anywhere')
      wait.switched('127.0.0.1', redis.port) // the Sentinels name the master
      t.equal((await held).ok, true, 'and run once the master is named')
    }
    wait.detach()
    client.disconnect()
  }
})

t.test('+switch-master: a repeat naming the master the client is on changes nothing; another address moves it without a failed command', async (t) => {
  const redis = await useRedis(t)
  const client = boundedClient(redis.port)
  t.teardown(() => { client.disconnect() })
  await client.connect()
  const wait = new FailoverWait(client, { budgetMs: 5_000 })
  let closes = 0
  client.on('close', () => { closes++ })
  wait.switched('127.0.0.1', redis.port)
  t.equal(await client.ping(), 'PONG')
  t.equal(closes, 0, 'already on the named master: no reconnect (ioredis\' failoverDetector would drop it)')
  // Standalone, the reconnect finds the same server: what matters is that no command is lost on the way.
  const during = Array.from({ length: 50 }, (_, i) => outcome(client.set(`k:${i}`, '1')))
  wait.switched('127.0.0.1', redis.port + 1)
  const after = Array.from({ length: 50 }, (_, i) => outcome(client.set(`k:${50 + i}`, '1')))
  t.same([...await Promise.all(during), ...await Promise.all(after)].filter((r) => !r.ok), [], 'no command failed while moving')
  t.equal(closes, 1, 'one careful reconnect')
  wait.detach()
})
