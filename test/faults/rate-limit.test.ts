// Rate limits when Redis misbehaves (issue 9): each Redis-down mode answers within 300 ms while Redis
// is frozen (the slow case: RATE_LIMIT_TIMEOUT decides), and across a reconnect under load the Redis
// counter ends in [requests Redis decided, + requests whose Redis call failed mid-flight].
import t from 'tap'
import { request } from 'undici'
import { useRedis, useFaultProxy, sleep } from '../helpers/index.js'
import { startFaultApp, waitUntil } from '../helpers/fault-app.js'
import { describeSummary, latencyBound, runLoad, summarize, warmUp, type LoadRun } from '../helpers/load.js'
import type { RateLimitDecision } from '../../lib/rate-limit/index.js'
import type { FastifyInstance } from 'fastify'

const limited = (app: FastifyInstance): void => {
  app.get('/limited', { config: { rateLimit: { max: 1_000_000, timeWindow: '10m' } } }, async () => ({ ok: true }))
}

t.test('each Redis-down mode answers within 300 ms while Redis is frozen', async (t) => {
  const redis = await useRedis(t)
  const modes = ['fallback', 'open', 'closed'] as const
  const apps = await Promise.all(modes.map((mode) => startFaultApp(t, { REDIS_URL: redis.url, RATE_LIMIT_WHEN_REDIS_DOWN: mode }, { routes: limited })))
  for (const { baseUrl } of apps) await warmUp(baseUrl, ['/limited', '/plain'], 10)
  const fault = (async () => {
    await sleep(1_000)
    redis.freeze()
    await sleep(4_000)
    redis.thaw()
  })()
  const runs: LoadRun[] = await Promise.all(apps.map(({ baseUrl }) => runLoad({
    baseUrl,
    rate: 40,
    durationMs: 6_000,
    next: (i) => i % 4 === 3 ? { path: '/plain', tag: 'plain' } : { path: '/limited', tag: 'limited' }
  })))
  await fault
  const expected = { fallback: [200], open: [200], closed: [200, 503] }
  modes.forEach((mode, index) => {
    const run = runs[index] as LoadRun
    const limitedResults = run.results.filter((r) => r.tag === 'limited')
    const s = summarize(limitedResults)
    t.comment(describeSummary(`mode ${mode}`, s))
    const bound = latencyBound(300, run, run.results.filter((r) => r.tag === 'plain'))
    t.ok(s.max <= bound, `${mode}: slowest answer ${s.max} ms ≤ ${bound} ms (300 + machine noise)`)
    t.equal(s.unfinished, 0, `${mode}: nothing unfinished`)
    t.ok(limitedResults.every((r) => expected[mode].includes(r.status ?? 0)), `${mode}: answers are ${expected[mode].join(' or ')}`)
    if (mode === 'closed') t.ok(limitedResults.some((r) => r.status === 503 && r.headers['retry-after'] !== undefined), 'closed: 503 with Retry-After during the freeze')
  })
})

// REDIS_FAILOVER_WAIT=0: the requests of the gap take the Redis-down mode; the default (2 s): the gap
// is shorter than the budget, so they wait for the reconnect and Redis decides them all.
for (const failoverWait of ['0', '2s']) {
  t.test(`the Redis counter across a reconnect under load, REDIS_FAILOVER_WAIT=${failoverWait}`, async (t) => {
    const redis = await useRedis(t)
    const proxy = await useFaultProxy(t, { target: redis })
    const decisions: RateLimitDecision[] = []
    const { app, baseUrl } = await startFaultApp(t, { REDIS_URL: `redis://127.0.0.1:${proxy.port}`, REDIS_FAILOVER_WAIT: failoverWait }, {
      routes: limited,
      rateLimit: { onDecision: (decision) => { if (decision.key.startsWith('ip:')) decisions.push(decision) } }
    })
    const failuresBefore = app.rateLimits.stats().redisFailures
    const fault = (async () => {
      await sleep(2_000)
      proxy.setMode('reset') // every connection RST: in-flight commands fail, Redis keeps its data
      await sleep(200)
      proxy.setMode('pass')
    })()
    const run = await runLoad({ baseUrl, rate: 100, durationMs: 5_000, next: () => ({ path: '/limited' }) })
    await fault
    await waitUntil(() => app.redisState.status === 'connected', 10_000, 'reconnected')
    // One more request, decided by Redis, reads the counter.
    const res = await request(`${baseUrl}/limited`)
    await res.body.dump()
    const last = decisions.at(-1)
    const failedInFlight = app.rateLimits.stats().redisFailures - failuresBefore
    const byRedis = decisions.filter((d) => d.source === 'redis').length
    const counter = last?.current ?? -1
    t.comment(describeSummary('load', summarize(run.results)))
    t.comment(`N = ${run.results.length + 1} requests: ${byRedis} decided by Redis, ${decisions.length - byRedis} by the Redis-down mode, ${failedInFlight} of them after a failed Redis call; Redis counter ${counter}`)
    t.equal(last?.source, 'redis', 'the last request was decided by Redis')
    t.ok(counter >= byRedis, `counter ${counter} ≥ requests Redis decided (${byRedis})`)
    t.ok(counter <= byRedis + failedInFlight, `counter ${counter} ≤ ${byRedis} + in flight at the disconnect (${failedInFlight})`)
    t.equal(run.results.filter((r) => r.status !== 200).length, 0, 'every request answered 200 (fallback mode, far below the limit)')
    if (failoverWait !== '0') {
      t.equal(decisions.length - byRedis, failedInFlight, 'within the failover budget only calls in flight at a reset took the Redis-down mode; none skipped Redis')
    }
  })
}
