// Issue 15 item 9: during an outage latencyMs is null (not the last measurement); after recovery an
// error is only reported with the time it happened; app.close() is a planned disconnect, logged at info.
import t from 'tap'
import { Value } from 'typebox/value'
import { useRedis } from '../helpers/index.js'
import { buildTestApp, timeUntil } from '../helper.js'
import { HealthSchema, RedisHealthSchema } from '../../routes/health.js'

t.test('latencyMs is null while Redis is down; lastError comes with lastErrorAt after recovery', async (t) => {
  const redis = await useRedis(t)
  const { app } = await buildTestApp(t, { REDIS_URL: redis.url, REDIS_DEGRADED_LATENCY: '10s' })
  await timeUntil(() => typeof app.redisState.latencyMs === 'number', 5_000, 'a first PING measured')
  t.type((await app.inject('/health')).json().checks.redis.latencyMs, 'number')

  await redis.kill()
  await timeUntil(() => app.redisState.status === 'disconnected' && app.redisState.lastError !== undefined, 5_000, 'the loss and its error seen')
  const health = await app.inject('/health')
  t.equal(health.statusCode, 503)
  const down = health.json()
  t.ok(Value.Check(HealthSchema, down), 'the /health body matches its schema')
  t.equal(down.checks.redis.latencyMs, null, '/health: no latency while down')
  t.match(down.checks.redis, { status: 'disconnected', lastError: String, lastErrorAt: String })
  const detail = await app.inject('/health/redis')
  t.equal(detail.statusCode, 503)
  t.ok(Value.Check(RedisHealthSchema, detail.json()), 'the /health/redis body matches its schema')
  t.equal(detail.json().latencyMs, null, '/health/redis: no latency while down')
  t.equal(app.redisState.latencyMs, null)

  await redis.restart()
  await timeUntil(() => app.redisState.status === 'connected' && app.redisState.latencyMs !== null, 10_000, 'recovery measured')
  const after = (await app.inject('/health')).json().checks.redis
  t.equal(after.status, 'connected')
  t.type(after.latencyMs, 'number')
  if (after.lastError !== undefined) {
    t.match(after.lastErrorAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'an old error says when it happened')
    t.ok(Date.parse(after.lastErrorAt) <= Date.now())
  }
  const redisAfter = (await app.inject('/health/redis')).json()
  t.equal(redisAfter.lastError === undefined, redisAfter.lastErrorAt === undefined, 'lastError and lastErrorAt go together')
})

t.test('app.close() logs the planned disconnect at info, never WARN "Redis disconnected"', async (t) => {
  const redis = await useRedis(t)
  const { app, logs } = await buildTestApp(t, { REDIS_URL: redis.url, REDIS_DEGRADED_LATENCY: '10s' })
  await timeUntil(() => app.redisState.status === 'connected', 5_000, 'connected')
  const before = logs().length
  await app.close()
  // The socket closes just after QUIT is answered, so the line may follow close() by a tick.
  await timeUntil(() => logs().slice(before).some((line) => /Redis (connection closed|disconnected)/.test(String(line.msg))), 2_000, 'the disconnect logged')
  const closing = logs().slice(before)
  t.same(closing.filter((line) => line.level >= 40 && /disconnected/i.test(String(line.msg))).map((line) => line.msg), [], 'no warning about Redis on close')
  t.ok(closing.some((line) => line.level === 30 && line.msg === 'Redis connection closed (app closing)'), 'one info line says the connection was closed')
})
