// Issue 19: a planned Sentinel failover (SENTINEL FAILOVER) under a small, steady load of commands
// through the suite's own client (app.redis). The Sentinels' +switch-master moves the client at once
// (failoverDetector), and REDIS_FAILOVER_WAIT lets the commands issued while it reconnects wait for
// the new master instead of failing: 0 failed commands, 0 acknowledged writes lost.
import t from 'tap'
import { useSentinelGroup, sleep, waitFor } from '../helpers/index.js'
import { buildTestApp } from '../helper.js'

const INTERVAL_MS = 10 // 100 writes/s and 100 reads/s

interface Outcome { i: number, kind: 'write' | 'read', ok: boolean, error?: string, startedAt: number, ms: number }

t.test('planned Sentinel failover under load: no failed command, no lost write', async (t) => {
  const group = await useSentinelGroup(t)
  const { app } = await buildTestApp(t, {
    REDIS_SENTINELS: group.sentinelAddresses.map((a) => `${a.host}:${a.port}`).join(','),
    REDIS_SENTINEL_NAME: group.name,
    REDIS_FAILOVER_WAIT: '2s',
    REDIS_DEGRADED_LATENCY: '10s'
  })
  t.equal(app.redisState.mode, 'sentinel')
  const before = await group.getMasterAddress()

  const outcomes: Array<Promise<Outcome>> = []
  const track = (i: number, kind: Outcome['kind'], command: () => Promise<unknown>): void => {
    const startedAt = Date.now()
    outcomes.push(command().then(
      () => ({ i, kind, ok: true, startedAt, ms: Date.now() - startedAt }),
      (err: Error) => ({ i, kind, ok: false, error: err.message, startedAt, ms: Date.now() - startedAt })))
  }
  const state = { stop: false }
  const load = (async () => {
    for (let i = 0; !state.stop; i++) {
      track(i, 'write', () => app.redis.set(`w:${i}`, String(i)))
      track(i, 'read', () => app.redis.get(`w:${Math.max(0, i - 1)}`))
      await sleep(INTERVAL_MS)
    }
  })()

  await sleep(1_000)
  const failoverAt = Date.now()
  t.equal(await group.sentinels[0]!.cli('SENTINEL', 'FAILOVER', group.name), 'OK')
  await waitFor(async () => (await group.getMasterAddress()).port !== before.port, { timeoutMs: 20_000, what: 'the sentinels name the new master' })
  const switchedAt = Date.now()
  // Keep the load on until the client has moved and served a while from the new master.
  await waitFor(async () => app.redis.status === 'ready' && (await app.redis.info('server')).includes(`tcp_port:${group.replica.port}`),
    { timeoutMs: 20_000, what: 'the client reaches the new master' })
  await sleep(1_000)
  state.stop = true
  await load
  const results = await Promise.all(outcomes)

  const failed = results.filter((r) => !r.ok)
  const acknowledged = results.filter((r) => r.ok && r.kind === 'write')
  const values = await app.redis.mget(acknowledged.map((r) => `w:${r.i}`))
  const lost = acknowledged.filter((r, n) => values[n] !== String(r.i))
  const waited = results.filter((r) => r.startedAt >= failoverAt).map((r) => r.ms)
  t.comment(`${results.length} commands (${acknowledged.length} acknowledged writes); failed ${failed.length}; lost ${lost.length}; ` +
    `longest wait ${Math.max(...waited)} ms; sentinels named the new master ${switchedAt - failoverAt} ms after SENTINEL FAILOVER`)
  if (failed.length > 0) t.comment(`first failures: ${[...new Set(failed.map((r) => r.error))].slice(0, 3).join(' | ')}`)

  t.equal(failed.length, 0, 'no command failed during the planned failover')
  t.equal(lost.length, 0, '0 acknowledged writes lost')
  t.equal(app.redisState.status === 'disconnected', false, 'connected after the failover')
})
