// Redis SIGKILLed for 10 s at 100 req/s (issue 9): cache-only routes stay 2xx and fast, nothing hangs,
// health sees it within 1 s and the recovery within 1.5 s, and health itself answers fast throughout.
import t from 'tap'
import { useRedis } from '../helpers/index.js'
import { startFaultApp } from '../helpers/fault-app.js'
import { describeSummary, latencyBound, summarize, warmUp } from '../helpers/load.js'
import { runOutage } from '../helpers/outage.js'

const OUTAGE_MS = 10_000
const RATE = 100

t.test('SIGKILL for 10 s under 100 req/s', async (t) => {
  const redis = await useRedis(t)
  // No in-process tier: every cache request goes to Redis, the hardest case for the fallback.
  const { app, baseUrl } = await startFaultApp(t, { REDIS_URL: redis.url, CACHE_MEMORY_MAX_ENTRIES: '0' })
  await warmUp(baseUrl, ['/cached/warm', '/health', '/plain'])

  const run = await runOutage({
    app,
    redis,
    kind: 'kill',
    beforeMs: 2_000,
    outageMs: OUTAGE_MS,
    afterMs: 3_000,
    baseUrl,
    rate: RATE,
    // 70% cache-only, 20% /health, 10% /plain (the control: never touches Redis).
    next: (i) => {
      const slot = i % 10
      if (slot < 7) return { path: `/cached/${i % 200}`, tag: 'cached' }
      if (slot < 9) return { path: '/health', tag: 'health' }
      return { path: '/plain', tag: 'plain' }
    }
  })

  const cached = run.tagged('cached')
  const health = run.tagged('health')
  const all = summarize(run.results)
  const outage = summarize(run.during('cached'))
  const healthSummary = summarize(health)
  t.comment(describeSummary('all', all))
  t.comment(describeSummary('cached during outage', outage))
  t.comment(describeSummary('health (whole run)', healthSummary))
  t.comment(describeSummary('control /plain during outage', summarize(run.during('plain'))))
  t.comment(`detection ${run.detectionMs} ms after SIGKILL; recovery ${run.recoveryMs} ms after the restart began; event-loop delay p99 ${run.loopDelay.p99} ms, max ${run.loopDelay.max} ms`)

  t.equal(all.unfinished, 0, 'no request left unfinished')
  t.equal(all.errors, 0, 'no transport errors')
  t.equal(cached.filter((r) => (r.status ?? 0) >= 500).length, 0, '0 5xx on the cache-only route')
  t.equal(cached.filter((r) => r.status !== 200).length, 0, 'every cache-only request answered 200')
  t.ok(run.during('cached').length >= RATE * 0.7 * (OUTAGE_MS / 1000) * 0.8, 'the outage saw load')
  const cacheBound = latencyBound(300, run, run.during('plain'))
  t.ok(outage.p99 <= cacheBound, `cache p99 during the outage ${outage.p99} ms ≤ ${cacheBound} ms (300 + machine noise)`)
  const healthBound = latencyBound(50, run, run.tagged('plain'))
  t.ok(healthSummary.p99 <= healthBound, `health p99 ${healthSummary.p99} ms ≤ ${healthBound} ms (50 + machine noise)`)
  t.ok(run.detectionMs <= 1_000, `detected in ${run.detectionMs} ms ≤ 1000 ms`)
  t.ok(run.recoveryMs <= 1_500, `recovered in ${run.recoveryMs} ms ≤ 1500 ms`)
  t.ok(health.some((r) => r.status === 503), 'health answered 503 during the outage')
  t.equal(health.at(-1)?.status, 200, 'health is 200 after recovery')
})
