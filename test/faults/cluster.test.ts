// Cluster (issue 9): SIGKILL a master under load (gap ≤ 3 s), and reshard 1,000 slots with
// redis-cli --cluster reshard under load (0 errors: ioredis follows MOVED and ASK).
import t from 'tap'
import { Cluster } from 'ioredis'
import { useCluster, runRedisCli, sleep } from '../helpers/index.js'
import { stopSlotsRefreshOnClose } from '../../lib/redis/index.js'
import { startFaultApp } from '../helpers/fault-app.js'
import { describeSummary, runLoad, summarize } from '../helpers/load.js'
import { analyzeWrites, lostWrites, writeValue } from '../helpers/writes.js'

const RATE = 100

function writeLoad (i: number) {
  // Alternate writes and reads so both paths meet the redirections.
  return i % 2 === 0
    ? { path: `/write/w${i}`, method: 'POST' as const, body: writeValue(i), headers: { 'content-type': 'text/plain' }, tag: 'write' }
    : { path: `/redis/w${i - 1}`, tag: 'read' }
}

t.test('Cluster', async (t) => {
  const cluster = await useCluster(t)
  const { app, baseUrl } = await startFaultApp(t, {
    REDIS_CLUSTER_NODES: cluster.startupNodes.map((a) => `${a.host}:${a.port}`).join(',')
  })
  t.equal(app.redisState.mode, 'cluster')
  // Closed during a slots refresh, an ioredis Cluster would keep refreshing (and the process alive): see lib/redis/cluster-close.ts.
  const reader = stopSlotsRefreshOnClose(new Cluster(cluster.startupNodes, { lazyConnect: true }))
  t.teardown(() => reader.disconnect())
  await reader.connect()

  await t.test('reshard 1,000 slots under load', async (t) => {
    const masters = await cluster.masters()
    const [from, to] = masters
    if (from === undefined || to === undefined) throw new Error('need two masters')
    const fromId = await from.cli('CLUSTER', 'MYID')
    const toId = await to.cli('CLUSTER', 'MYID')
    let reshardMs = 0
    const reshard = (async () => {
      await sleep(1_000)
      const started = Date.now()
      await runRedisCli(from.endpoint, ['--cluster', 'reshard', `${from.host}:${from.port}`, '--cluster-from', fromId,
        '--cluster-to', toId, '--cluster-slots', '1000', '--cluster-yes', '--cluster-pipeline', '100'], { timeoutMs: 120_000 })
      reshardMs = Date.now() - started
    })()
    const run = await runLoad({ baseUrl, rate: RATE, durationMs: 8_000, next: writeLoad })
    await reshard
    const report = analyzeWrites(run, run.t0)
    const lost = await lostWrites(report.acknowledged, (keys) => Promise.all(keys.map((k) => reader.get(k))))
    const reads = run.results.filter((r) => r.tag === 'read')
    t.comment(describeSummary('reshard: all', summarize(run.results)))
    t.comment(`reshard of 1000 slots took ${reshardMs} ms; failed writes ${report.failed.length}, failed reads ${reads.filter((r) => r.status !== 200).length}, lost ${lost.length}`)
    t.ok(reshardMs > 0, 'the reshard ran during the load')
    t.equal(run.results.filter((r) => r.status !== 200).length, 0, '0 errors during the reshard')
    t.equal(lost.length, 0, 'no acknowledged write lost')
  })

  await t.test('SIGKILL a master under load', async (t) => {
    const masters = await cluster.masters()
    const victim = masters[0]
    if (victim === undefined) throw new Error('no master')
    let killAt = 0
    const fault = (async () => {
      await sleep(2_000)
      killAt = Date.now()
      await victim.kill()
    })()
    const run = await runLoad({ baseUrl, rate: RATE, durationMs: 12_000, next: writeLoad })
    await fault
    const report = analyzeWrites(run, killAt)
    const failedReads = run.results.filter((r) => r.tag === 'read' && r.status !== 200)
    const all = summarize(run.results)
    const lost = await lostWrites(report.acknowledged.filter((r) => run.t0 + (r.endedAt ?? 0) < killAt - 1_000), (keys) => Promise.all(keys.map((k) => reader.get(k).catch(() => null))))
    t.comment(describeSummary('master kill: all', all))
    t.comment(`master kill: ${report.failed.length} failed writes, ${failedReads.length} failed reads, failing window ${report.gapMs} ms, ${lost.length} writes acknowledged > 1 s before the kill lost`)
    t.equal(all.unfinished, 0, 'no request left unfinished')
    // REDIS_FAILOVER_WAIT (2 s) + REDIS_COMMAND_TIMEOUT (1 s), + the wait's 100 ms timeout tick and timer lateness.
    t.ok(report.gapMs <= 3_200, `gap ${report.gapMs} ms ≤ 3200 ms`)
    t.ok(run.results.every((r) => r.status === 200 || r.status === 503), 'failures are the route\'s 503, never a 500')
    t.equal(lost.length, 0, 'writes acknowledged > 1 s before the kill survive the failover')
  })
})
