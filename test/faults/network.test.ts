// Network faults through the fault proxy (issue 9): 200 ms added latency, a black-holed link and
// connection resets, each for a few seconds under 50 req/s. Every answer is bounded, nothing crashes,
// and health reports degraded while latency exceeds REDIS_DEGRADED_LATENCY.
import t from 'tap'
import { useRedis, useFaultProxy, sleep, type FaultMode } from '../helpers/index.js'
import { startFaultApp, waitUntil } from '../helpers/fault-app.js'
import { describeSummary, latencyBound, runLoad, summarize, warmUp } from '../helpers/load.js'

const COMMAND_TIMEOUT = 1_000
const FAILOVER_WAIT = 1_000
// `wait`: the connection is lost (closed, not silent), so a command may wait REDIS_FAILOVER_WAIT for
// it to come back before failing fast (DESIGN §3); a silent link (latency, black hole) gets no wait.
const phases: Array<{ name: string, mode: FaultMode, expect: 'degraded' | 'disconnected', wait?: boolean }> = [
  // The proxy delays each direction: 100 ms each way is 200 ms added to every round trip.
  { name: '200 ms latency', mode: { latencyMs: 100 }, expect: 'degraded' },
  { name: 'black-hole', mode: 'blackhole', expect: 'disconnected' },
  { name: 'reset', mode: 'reset', expect: 'disconnected', wait: true }
]

t.test('network faults under load', async (t) => {
  const redis = await useRedis(t)
  const proxy = await useFaultProxy(t, { target: redis })
  const { app, baseUrl } = await startFaultApp(t, {
    REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
    REDIS_COMMAND_TIMEOUT: `${COMMAND_TIMEOUT}ms`,
    REDIS_FAILOVER_WAIT: `${FAILOVER_WAIT}ms`,
    REDIS_DEGRADED_LATENCY: '100ms',
    SESSION_SECRET: 'fault-suite-session-secret-0123456789abcdef',
    CACHE_MEMORY_MAX_ENTRIES: '0'
  })
  await warmUp(baseUrl, ['/cached/w', '/redis/w', '/plain', '/health'])

  for (const phase of phases) {
    await t.test(phase.name, async (t) => {
      const statuses = new Set<string>()
      let seenAt = 0
      let faultAt = 0
      const fault = (async () => {
        await sleep(1_000)
        faultAt = Date.now()
        proxy.setMode(phase.mode)
        seenAt = await waitUntil(() => app.redisState.status === phase.expect, 5_000, `health ${phase.expect} under ${phase.name}`)
        statuses.add(app.redisState.status)
        await sleep(Math.max(0, 3_000 - (Date.now() - faultAt)))
        proxy.setMode('pass')
        await waitUntil(() => app.redisState.status === 'connected', 10_000, `connected after ${phase.name}`)
      })()
      const run = await runLoad({
        baseUrl,
        rate: 50,
        durationMs: 5_000,
        next: (i) => {
          const slot = i % 5
          if (slot < 2) return { path: `/cached/${i % 100}`, tag: 'cached' }
          if (slot === 2) return { path: `/redis/${i % 100}`, tag: 'redis' }
          if (slot === 3) return { path: '/demo/login', method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"userId":"n"}', tag: 'session' }
          return { path: '/plain', tag: 'plain' }
        }
      })
      await fault
      const noise = run.results.filter((r) => r.tag === 'plain')
      const touching = run.results.filter((r) => r.tag === 'cached' || r.tag === 'redis')
      const slowest = Math.max(...touching.map((r) => r.latencyMs ?? Infinity))
      const wait = phase.wait === true ? FAILOVER_WAIT : 0
      const bound = latencyBound(wait + COMMAND_TIMEOUT + 100, run, noise)
      // Sign-in regenerates (a store destroy) then saves: two store calls, each bounded by the command
      // timeout, so up to twice it while a dead link is not yet detected (RELIABILITY.md, finding 1).
      const slowestSession = Math.max(...run.results.filter((r) => r.tag === 'session').map((r) => r.latencyMs ?? Infinity))
      const sessionBound = latencyBound(wait + 2 * COMMAND_TIMEOUT + 100, run, noise)
      t.comment(describeSummary(phase.name, summarize(run.results)))
      for (const tag of ['cached', 'redis', 'session', 'plain']) t.comment(describeSummary(`  ${tag}`, summarize(run.results.filter((r) => r.tag === tag))))
      t.comment(`health showed ${phase.expect} ${seenAt - faultAt} ms after the fault; slowest cache/app.redis request ${slowest} ms, slowest sign-in ${slowestSession} ms`)
      t.equal(summarize(run.results).unfinished, 0, 'no request left unfinished')
      t.ok(slowest <= bound, `slowest cache or app.redis request ${slowest} ms ≤ ${bound} ms`)
      t.ok(slowestSession <= sessionBound, `slowest sign-in ${slowestSession} ms ≤ ${sessionBound} ms`)
      t.ok(run.results.every((r) => (r.status ?? 500) < 500 || r.status === 503), 'no 500: answers are 2xx/4xx or a 503')
      t.equal(run.results.filter((r) => r.tag === 'cached' && r.status !== 200).length, 0, 'cache-only route stays 200')
    })
  }
  t.equal(app.redisState.status, 'connected', 'connected again at the end')
})
