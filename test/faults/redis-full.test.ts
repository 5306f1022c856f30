// Issue 28 item 1: a full Redis is visible. A real redis-server with maxmemory 4mb and noeviction,
// filled past its limit: Redis answers OOM to writes while PING stays fast. The refusals are counted by
// kind, logged once per episode with the setting to look at, and /health says degraded with that reason
// while readiness stays up (reads still work). At start-up, HTTP cache caps that cannot engage before
// such a Redis is full are warned about.
import t from 'tap'
import { useRedis } from '../helpers/index.js'
import { buildTestApp, timeUntil } from '../helper.js'
import { sample } from '../monitoring/prom.js'

const SECRET = 'redis-full-session-secret-0123456789abcdef'

t.test('maxmemory 4mb + noeviction, filled: OOM counted, logged once, /health degraded with the reason, ready 200', async (t) => {
  const redis = await useRedis(t, { maxmemory: '4mb', maxmemoryPolicy: 'noeviction' })
  const { app, logs } = await buildTestApp(t, { REDIS_URL: redis.url, SESSION_SECRET: SECRET, REDIS_DEGRADED_LATENCY: '10s' }, 'debug')
  t.equal(app.redisState.status, 'connected')
  const startWarnings = logs().filter((l) => l.level === 40 && /http cache: its caps let it write .* more than the .* that maxmemory 4\.0 MiB leaves under noeviction/.test(l.msg ?? ''))
  t.equal(startWarnings.length, 1, 'start-up: the HTTP cache caps (64 MiB per route) cannot engage before a 4 MiB Redis is full (the demo\'s cached routes)')

  // Fill it (as the HTTP cache under random query strings would) until Redis refuses.
  const value = 'x'.repeat(64 * 1024)
  let refused = false
  for (let i = 0; i < 200 && !refused; i++) {
    try {
      await redis.cli('SET', `filler:${i}`, value)
    } catch {}
    refused = /OOM/.test(await redis.cli('SET', 'probe', value))
  }
  t.ok(refused, 'Redis answers OOM')

  for (let i = 0; i < 5; i++) {
    const login = await app.inject({ method: 'POST', url: '/demo/login', payload: { userId: `u${i}` } })
    t.equal(login.statusCode, 503, 'sign-in cannot store its session')
  }
  await timeUntil(() => app.redisState.status === 'degraded', 2_000, 'degraded after the refusals')
  const health = await app.inject('/health')
  t.equal(health.statusCode, 200, 'degraded is 200')
  t.match(health.json(), { status: 'degraded', checks: { redis: { status: 'degraded', lastError: /OOM.*maxmemory.*noeviction/ } } })
  t.equal((await app.inject('/health/ready')).statusCode, 200, 'readiness stays up: reads still work')
  t.equal((await app.inject('/demo/products')).statusCode, 200, 'a cache-only route still answers')

  const refusalLines = logs().filter((l) => l.level === 40 && /^Redis refuses writes \(OOM\)/.test(l.msg ?? ''))
  t.equal(refusalLines.length, 1, 'one line for the episode, not one per refusal')
  t.match(refusalLines[0]?.msg, /maxmemory/, 'names the setting to look at')

  const metrics = (await app.inject('/metrics')).body
  t.ok((sample(metrics, 'redis_client_refusals_total', { kind: 'oom' }) ?? 0) >= 5, 'counted by kind')
  t.equal(sample(metrics, 'redis_client_refusals_total', { kind: 'readonly' }), 0)

  // Room again: the episode ends after a quiet spell and health is connected again.
  await redis.cli('FLUSHALL')
  const login = await app.inject({ method: 'POST', url: '/demo/login', payload: { userId: 'after' } })
  t.equal(login.statusCode, 200, 'sign-in works again')
})

t.test('NOPERM: a command the ACL refuses is an episode; refused probes (INFO, CONFIG GET) are not', async (t) => {
  const redis = await useRedis(t, { acl: [{ username: 'app', password: 'full-acl-password-1', rules: '~app:* &* -@all +@read +@write +@connection +@keyspace +@scripting +@pubsub -@dangerous -info -config -set' }] })
  const { app, logs } = await buildTestApp(t, { REDIS_URL: `redis://app:full-acl-password-1@127.0.0.1:${redis.port}`, REDIS_KEY_PREFIX: 'app:', SESSION_SECRET: SECRET, REDIS_DEGRADED_LATENCY: '10s' })
  // Several PING rounds with INFO refused (health details) and the CONFIG GET of the settings check refused.
  await new Promise((resolve) => setTimeout(resolve, 1_200))
  t.equal(app.redisState.status, 'connected', 'refused probes leave the state alone')
  await t.rejects(app.redis.set('k', 'v'), /NOPERM/)
  await timeUntil(() => app.redisState.status === 'degraded', 2_000, 'degraded after a refused command')
  t.match(app.redisState.lastError, /NOPERM.*ACL rule/)
  t.equal(app.redisState.refusals?.noperm, 1)
  t.equal(logs().filter((l) => /^Redis refuses commands \(NOPERM\)/.test(l.msg ?? '')).length, 1)
})
