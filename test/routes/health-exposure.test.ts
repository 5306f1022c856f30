// Issue 14 item 13: in staging and production nothing internal is public without a token. Start-up
// is refused without METRICS_TOKEN or METRICS_PORT; /health/redis shows its details (version, memory,
// lastError with addresses) only with the token; status alone stays public for load balancers.
import t from 'tap'
import { getFreePort, useRedis } from '../helpers/index.js'
import { buildTestApp, timeUntil } from '../helper.js'
import { loadConfig } from '../../lib/config/load.js'
import { ConfigError } from '../../lib/errors/index.js'

const SECRET = 'staging-session-secret-0123456789abcdef'
const TOKEN = 'metrics-token-0123456789abcdef'

function problemsOf (env: Record<string, string>): string[] {
  try {
    loadConfig({ env })
    return []
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems]
    throw err
  }
}

t.test('staging and production refuse to start without METRICS_TOKEN or METRICS_PORT', async (t) => {
  for (const NODE_ENV of ['staging', 'production']) {
    const base = { NODE_ENV, SESSION_SECRET: SECRET, REDIS_URL: 'rediss://h:1' }
    const problems = problemsOf(base)
    t.equal(problems.length, 1, `${NODE_ENV}: one line`)
    t.match(problems[0], new RegExp(`^METRICS_TOKEN \\(16\\+ characters\\) or METRICS_PORT .* must be set in ${NODE_ENV}`))
    t.same(problemsOf({ ...base, METRICS_TOKEN: TOKEN }), [], 'a token is enough')
    t.same(problemsOf({ ...base, METRICS_PORT: '9464' }), [], 'a separate port is enough')
    t.same(problemsOf({ ...base, METRICS_ENABLED: 'false' }), [], 'no metrics at all is enough')
  }
  t.same(problemsOf({ NODE_ENV: 'development' }), [], 'development needs neither')
})

t.test('staging: /health/redis details and errors need the token; status stays public', async (t) => {
  const redis = await useRedis(t)
  const { app } = await buildTestApp(t, { NODE_ENV: 'staging', REDIS_URL: redis.url, SESSION_SECRET: SECRET, METRICS_TOKEN: TOKEN, REDIS_DEGRADED_LATENCY: '10s' })
  await timeUntil(() => app.redisMonitor.serverInfo !== undefined, 5_000, 'INFO read')

  const anonymous = await app.inject('/health/redis')
  t.equal(anonymous.statusCode, 200)
  t.same(anonymous.json(), { status: 'connected' }, 'status alone without the token')
  const wrong = await app.inject({ url: '/health/redis', headers: { authorization: 'Bearer not-the-token-at-all' } })
  t.same(wrong.json(), { status: 'connected' }, 'status alone with a wrong token')
  const authorised = await app.inject({ url: '/health/redis', headers: { authorization: `Bearer ${TOKEN}` } })
  t.match(authorised.json(), { status: 'connected', mode: 'standalone', version: /^\d+\.\d+/, memoryUsedBytes: Number, role: 'master' })
  t.equal((await app.inject({ url: '/metrics' })).statusCode, 401, '/metrics needs the same token')

  await redis.kill()
  await timeUntil(() => app.redisState.status === 'disconnected' && app.redisState.lastError !== undefined, 5_000, 'the loss and its error seen')
  const down = await app.inject('/health/redis')
  t.equal(down.statusCode, 503, 'a load balancer still sees the outage')
  t.same(down.json(), { status: 'disconnected' })
  const health = (await app.inject('/health')).json()
  t.equal(health.checks.redis.status, 'disconnected')
  t.notOk('lastError' in health.checks.redis, '/health hides the error text (it names internal addresses) without the token')
  t.notMatch(JSON.stringify(health), new RegExp(String(redis.port)), 'no address anywhere')
  const withToken = (await app.inject({ url: '/health', headers: { authorization: `Bearer ${TOKEN}` } })).json()
  t.match(withToken.checks.redis, { lastError: String, lastErrorAt: String }, 'with the token the error is there')
})

t.test('production with METRICS_PORT alone: no health detail or error is public, to anyone', async (t) => {
  const redis = await useRedis(t)
  const METRICS_PORT = String(await getFreePort())
  const { app } = await buildTestApp(t, { NODE_ENV: 'production', REDIS_URL: redis.url, SESSION_SECRET: SECRET, METRICS_PORT, REDIS_DEGRADED_LATENCY: '10s' })
  await timeUntil(() => app.redisMonitor.serverInfo !== undefined, 5_000, 'INFO read')
  t.same((await app.inject('/health/redis')).json(), { status: 'connected' }, 'no token configured: still status alone')
  t.same((await app.inject({ url: '/health/redis', headers: { authorization: 'Bearer anything-at-all-0123456789' } })).json(), { status: 'connected' },
    'no bearer value opens the details')
  t.equal((await app.inject('/metrics')).statusCode, 404, '/metrics is not on the app port')

  await redis.kill()
  await timeUntil(() => app.redisState.status === 'disconnected' && app.redisState.lastError !== undefined, 5_000, 'the loss and its error seen')
  const down = await app.inject('/health/redis')
  t.equal(down.statusCode, 503)
  t.same(down.json(), { status: 'disconnected' })
  for (const url of ['/health', '/health/ready']) {
    const body = (await app.inject(url)).json()
    t.equal(body.checks.redis.status, 'disconnected', `${url} shows the outage`)
    t.notOk('lastError' in body.checks.redis, `${url} hides the error text`)
    t.notMatch(JSON.stringify(body), new RegExp(String(redis.port)), `${url} names no address`)
  }
})

t.test('development without a token: details stay public; with a token they need it', async (t) => {
  const open = await buildTestApp(t, {})
  t.match((await open.app.inject('/health/redis')).json(), { status: 'connected', mode: 'memory', version: 'in-process' })
  const guarded = await buildTestApp(t, { METRICS_TOKEN: TOKEN })
  t.same((await guarded.app.inject('/health/redis')).json(), { status: 'connected' })
  t.match((await guarded.app.inject({ url: '/health/redis', headers: { authorization: `Bearer ${TOKEN}` } })).json(), { mode: 'memory' })
})
