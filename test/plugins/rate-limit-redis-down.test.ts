// Each RATE_LIMIT_WHEN_REDIS_DOWN mode through HTTP with Redis SIGKILLed and SIGSTOPped: every answer
// within RATE_LIMIT_TIMEOUT plus a loose margin (a bound, not a performance claim); closed is a 503
// with Retry-After, never a 500; fallback still limits; health routes do not depend on Redis.
// REDIS_FAILOVER_WAIT=0 here: these are the modes of an outage older than the failover budget (the
// wait itself, and that the modes are unchanged after it, are tested in rate-limit-failover.test.ts).
import t from 'tap'
import { useRedis } from '../helpers/index.js'
import { timeUntil } from '../helper.js'
import { buildLimitedApp } from './rate-limit-app.js'

const TIMEOUT_MS = 250
const BOUND_MS = TIMEOUT_MS + 400

for (const fault of ['killed', 'frozen'] as const) {
  for (const mode of ['fallback', 'open', 'closed'] as const) {
    t.test(`${mode} while Redis is ${fault}`, async (t) => {
      const redis = await useRedis(t)
      const { app, rawLogs } = await buildLimitedApp(t, {
        REDIS_URL: `redis://127.0.0.1:${redis.port}`,
        REDIS_FAILOVER_WAIT: '0',
        RATE_LIMIT_WHEN_REDIS_DOWN: mode,
        RATE_LIMIT_TIMEOUT: `${TIMEOUT_MS}ms`,
        RATE_LIMIT_MAX: '2'
      })
      const get = (url = '/limited') => app.inject({ url, remoteAddress: '203.0.113.30' })
      t.equal((await get()).statusCode, 200, 'counted in Redis while it is up')

      if (fault === 'killed') await redis.kill()
      else redis.freeze()

      const timed = []
      for (let i = 0; i < 4; i++) {
        const started = performance.now()
        const res = await get()
        timed.push({ res, ms: Math.round(performance.now() - started) })
      }
      const durations = timed.map(({ ms }) => ms)
      t.ok(durations.every((ms) => ms < BOUND_MS), `every answer within ${BOUND_MS} ms: ${durations.join(', ')} ms`)
      const codes = timed.map(({ res }) => res.statusCode)
      if (mode === 'fallback') {
        t.same(codes, [200, 200, 429, 429], 'the in-process limiter still limits (counting from zero in this process)')
        t.match(timed[2]?.res.json(), { code: 'FRS_RATE_LIMITED' })
      } else if (mode === 'open') {
        t.same(codes, [200, 200, 200, 200], 'allowed without a check')
      } else {
        t.same(codes, [503, 503, 503, 503], 'refused with 503, never 500 or 429')
        const res = timed[0]!.res
        t.equal(res.headers['retry-after'], '1')
        t.same(res.json(), {
          statusCode: 503, code: 'FRS_RATE_LIMIT_UNAVAILABLE', error: 'Service Unavailable', message: 'Rate limiting is unavailable; try again shortly'
        })
      }
      const stats = app.rateLimits.stats()
      t.equal(stats[mode], 4, `counted as ${mode}`)
      t.equal(stats.allowed, 1)
      const live = await get('/health/live')
      t.equal(live.statusCode, 200, '/health/live does not depend on Redis, whatever the mode')
      t.equal(rawLogs().split('\n').filter((line) => line.includes('rate limit: Redis unavailable')).length, 1, 'one warning for the burst')

      if (fault === 'frozen') {
        // Once the monitor has seen the frozen server, decisions skip Redis at once.
        await timeUntil(() => !app.redisMonitor.isReady(), 5_000, 'monitor sees Redis down')
        const started = performance.now()
        await get()
        t.ok(performance.now() - started < 100, 'answered without waiting on Redis')
      }
    })
  }
}

t.test('back to counting in Redis once it returns', async (t) => {
  const redis = await useRedis(t)
  const { app, rawLogs } = await buildLimitedApp(t, { REDIS_URL: `redis://127.0.0.1:${redis.port}`, REDIS_FAILOVER_WAIT: '0', RATE_LIMIT_WHEN_REDIS_DOWN: 'closed', RATE_LIMIT_MAX: '3' })
  const get = () => app.inject({ url: '/limited', remoteAddress: '203.0.113.31' })
  t.equal((await get()).statusCode, 200)
  await redis.kill()
  t.equal((await get()).statusCode, 503)
  await redis.restart()
  await timeUntil(() => app.redisMonitor.isReady(), 10_000, 'reconnected')
  const res = await get()
  t.equal(res.statusCode, 200)
  t.match(res.headers.ratelimit, /^"default";r=2;/, 'a fresh Redis (no persistence): the first request of three')
  t.match(rawLogs(), /rate limit: Redis answers again/)
})
