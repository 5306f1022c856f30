// Rate limits honour REDIS_FAILOVER_WAIT (issue 19, DESIGN.md §3: a failover is not an outage). A
// decision issued while the connection is being re-established, within the budget counted from the
// loss, waits for it and is counted in Redis; past the budget the Redis-down mode applies at once,
// exactly as without the wait. Real redis-server, SIGKILLed and restarted. Closed mode makes the
// Redis-down answer visible (503); the decision's `source` says who decided.
import t, { type Test } from 'tap'
import { useRedis, waitFor } from '../helpers/index.js'
import type { RateLimitDecision } from '../../lib/rate-limit/index.js'
import { buildLimitedApp } from './rate-limit-app.js'

const CLIENT = '203.0.113.40'

async function setUp (t: Test, budget: string) {
  const redis = await useRedis(t)
  const decisions: RateLimitDecision[] = []
  const { app, rawLogs } = await buildLimitedApp(t, {
    REDIS_URL: `redis://127.0.0.1:${redis.port}`,
    REDIS_FAILOVER_WAIT: budget,
    REDIS_RETRY_MAX_DELAY: '100ms',
    RATE_LIMIT_WHEN_REDIS_DOWN: 'closed',
    RATE_LIMIT_MAX: '100'
  }, { onDecision: (decision) => { decisions.push(decision) } })
  const get = () => app.inject({ url: '/limited', remoteAddress: CLIENT })
  const lose = async (): Promise<void> => {
    await redis.kill()
    await waitFor(() => app.redis.status !== 'ready', { timeoutMs: 5_000, what: 'the client notices the SIGKILL' })
  }
  return { redis, app, rawLogs, decisions, get, lose }
}

t.test('a restart within the budget: decisions issued in the gap wait for Redis and are counted there', async (t) => {
  const { redis, app, decisions, get, lose } = await setUp(t, '10s')
  const first = await get()
  t.equal(first.statusCode, 200)
  t.match(first.headers.ratelimit, /^"default";r=99;/)

  await lose()
  t.ok(app.redisConnections.failoverWaitLeft() > 0, 'the failover wait is open')
  let settled = 0
  const pending = Array.from({ length: 5 }, async () => {
    const res = await get()
    settled++
    return res
  })
  // Give the decisions every chance to answer from the Redis-down mode, as they did before the wait.
  await waitFor(() => app.rateLimits.stats().redisFailures > 0 || decisions.length > 1 || app.redisConnections.failoverWaitLeft() < 9_000,
    { timeoutMs: 5_000, what: 'a second of the budget to pass' })
  t.equal(settled, 0, 'no decision answered while the connection was being re-established')
  await redis.restart()
  const answers = await Promise.all(pending)

  t.same(answers.map((res) => res.statusCode), [200, 200, 200, 200, 200], 'every request in the gap passed, none got the 503 of closed mode')
  t.same(decisions.map((d) => d.source), ['redis', 'redis', 'redis', 'redis', 'redis', 'redis'], 'each was decided by Redis')
  // SIGKILL without persistence: the restarted Redis counts from zero, once per request.
  t.same(decisions.slice(1).map((d) => d.current).sort((a, b) => a - b), [1, 2, 3, 4, 5], 'counted exactly once each')
  t.match(app.rateLimits.stats(), { allowed: 6, closed: 0, fallback: 0, open: 0, redisFailures: 0 })
})

t.test('an outage longer than the budget: waiting decisions take the Redis-down mode when it runs out, later ones at once', async (t) => {
  const { redis, app, rawLogs, decisions, get, lose } = await setUp(t, '1s')
  t.equal((await get()).statusCode, 200)

  await lose()
  t.ok(app.redisConnections.failoverWaitLeft() > 0, 'the failover wait is open')
  const waiting = await Promise.all([get(), get()])
  t.same(waiting.map((res) => res.statusCode), [503, 503], 'closed mode once the budget ran out: 503, never a 500')
  t.equal(waiting[0]?.headers['retry-after'], '1')
  t.match(waiting[0]?.json(), { code: 'FRS_RATE_LIMIT_UNAVAILABLE' })
  t.equal(app.redisConnections.failoverWaitLeft(), 0, 'the budget is spent')

  // Past the budget: exactly as without the wait (see rate-limit-redis-down.test.ts): no Redis call.
  const failuresBefore = app.rateLimits.stats().redisFailures
  const late = await Promise.all([get(), get(), get()])
  t.same(late.map((res) => res.statusCode), [503, 503, 503])
  t.equal(app.rateLimits.stats().redisFailures, failuresBefore, 'skipped without sending a command')
  t.same(decisions.map((d) => d.source), ['redis', 'closed', 'closed', 'closed', 'closed', 'closed'])
  t.equal(rawLogs().split('\n').filter((line) => line.includes('rate limit: Redis unavailable')).length, 1, 'one warning for the outage')

  await redis.restart()
  await waitFor(() => app.redisMonitor.isReady(), { timeoutMs: 10_000, what: 'the monitor sees Redis again' })
  const back = await get()
  t.equal(back.statusCode, 200, 'counted in Redis again once it is back')
  t.equal(decisions.at(-1)?.source, 'redis')
})

t.test('the fallback mode after the budget is the in-process limiter, as before', async (t) => {
  const redis = await useRedis(t)
  const { app } = await buildLimitedApp(t, {
    REDIS_URL: `redis://127.0.0.1:${redis.port}`,
    REDIS_FAILOVER_WAIT: '500ms',
    RATE_LIMIT_MAX: '2'
  })
  const get = () => app.inject({ url: '/limited', remoteAddress: CLIENT })
  t.equal((await get()).statusCode, 200)
  await redis.kill()
  await waitFor(() => app.redis.status !== 'ready', { timeoutMs: 5_000, what: 'the client notices the SIGKILL' })
  const codes = [(await get()).statusCode, (await get()).statusCode, (await get()).statusCode]
  t.same(codes, [200, 200, 429], 'the in-process limiter decides (counting from zero in this process)')
  t.match(app.rateLimits.stats(), { allowed: 1, fallback: 3 })
})
