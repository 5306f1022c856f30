// Redis frozen (SIGSTOP) for 10 s under 100 req/s (issue 9): the port stays open and nothing answers,
// the case ioredis' defaults would wait on for ever. Every request that touches Redis must settle
// within REDIS_COMMAND_TIMEOUT + 100 ms; health must notice within 1 s.
import t from 'tap'
import { useRedis } from '../helpers/index.js'
import { startFaultApp } from '../helpers/fault-app.js'
import { describeSummary, latencyBound, summarize, warmUp } from '../helpers/load.js'
import { runOutage } from '../helpers/outage.js'

const COMMAND_TIMEOUT = 1_000

t.test('SIGSTOP for 10 s under 100 req/s', async (t) => {
  const redis = await useRedis(t)
  const { app, baseUrl } = await startFaultApp(t, {
    REDIS_URL: redis.url,
    REDIS_COMMAND_TIMEOUT: `${COMMAND_TIMEOUT}ms`,
    CACHE_MEMORY_MAX_ENTRIES: '0'
  })
  await warmUp(baseUrl, ['/cached/warm', '/redis/warm', '/health', '/plain'])

  const run = await runOutage({
    app,
    redis,
    kind: 'freeze',
    beforeMs: 2_000,
    outageMs: 10_000,
    afterMs: 3_000,
    baseUrl,
    rate: 100,
    // 40% cache, 40% a raw app.redis GET (503 on error), 10% health, 10% control.
    next: (i) => {
      const slot = i % 10
      if (slot < 4) return { path: `/cached/${i % 200}`, tag: 'cached' }
      if (slot < 8) return { path: `/redis/${i % 200}`, tag: 'redis' }
      if (slot < 9) return { path: '/health', tag: 'health' }
      return { path: '/plain', tag: 'plain' }
    }
  })

  const touching = run.results.filter((r) => r.tag === 'cached' || r.tag === 'redis')
  const frozen = summarize(run.during().filter((r) => r.tag === 'cached' || r.tag === 'redis'))
  const all = summarize(run.results)
  t.comment(describeSummary('all', all))
  t.comment(describeSummary('touching Redis, during the freeze', frozen))
  t.comment(describeSummary('cached during the freeze', summarize(run.during('cached'))))
  t.comment(describeSummary('raw app.redis during the freeze', summarize(run.during('redis'))))
  t.comment(describeSummary('health (whole run)', summarize(run.tagged('health'))))
  t.comment(describeSummary('control /plain during the freeze', summarize(run.during('plain'))))
  t.comment(`detection ${run.detectionMs} ms after SIGSTOP; recovery ${run.recoveryMs} ms after SIGCONT; event-loop delay p99 ${run.loopDelay.p99} ms, max ${run.loopDelay.max} ms`)

  t.equal(all.unfinished, 0, 'no request left unfinished')
  t.equal(all.errors, 0, 'no transport errors')
  const slowest = Math.max(...touching.map((r) => r.latencyMs ?? Infinity))
  for (const r of touching.filter((r) => (r.latencyMs ?? Infinity) > COMMAND_TIMEOUT + 100).sort((a, b) => (b.latencyMs ?? 0) - (a.latencyMs ?? 0)).slice(0, 5)) {
    t.comment(`slow: ${r.tag} #${r.i} started ${run.t0 + r.startedAt - run.faultAt} ms after the freeze, ${r.latencyMs} ms, status ${r.status}`)
  }
  const bound = latencyBound(COMMAND_TIMEOUT + 100, run, run.during('plain'))
  t.ok(slowest <= bound, `slowest request touching Redis ${slowest} ms ≤ ${bound} ms (command timeout + 100 + machine noise)`)
  t.equal(run.tagged('cached').filter((r) => r.status !== 200).length, 0, 'cache-only requests all 200')
  t.equal(run.tagged('redis').filter((r) => r.status !== 200 && r.status !== 503).length, 0, 'raw Redis requests answer 200 or the route\'s 503')
  t.ok(run.detectionMs <= 1_000, `detected in ${run.detectionMs} ms ≤ 1000 ms`)
  t.ok(run.recoveryMs <= 1_500, `recovered in ${run.recoveryMs} ms ≤ 1500 ms`)
  const healthBound = latencyBound(50, run, run.tagged('plain'))
  const health = summarize(run.tagged('health'))
  t.ok(health.p99 <= healthBound, `health p99 ${health.p99} ms ≤ ${healthBound} ms`)
})
