// RATE_LIMIT_SYNC=batched: two app instances share one limit through leases of quota; over-admission
// stays within the stated bound (instances × lease beyond max), most requests make no Redis call,
// sliding/banned limits (sign-in) stay exact, and the Redis-down modes still apply.
import t from 'tap'
import { useRedis } from '../helpers/index.js'
import { defaultLeaseSize } from '../../lib/rate-limit/batched-limiter.js'
import { buildLimitedApp } from './rate-limit-app.js'

const redis = await useRedis(t)
const REDIS_URL = `redis://127.0.0.1:${redis.port}`
t.beforeEach(async () => { await redis.cli('FLUSHALL') })

async function evalshaCalls (): Promise<number> {
  const stats = String(await redis.cli('INFO', 'commandstats'))
  return Number(/cmdstat_evalsha:calls=(\d+)/.exec(stats)?.[1] ?? 0)
}

t.test('two instances past the limit: 2xx within max + instances × lease, few Redis calls', async (t) => {
  const max = 200
  const lease = defaultLeaseSize(max)
  const env = { REDIS_URL, RATE_LIMIT_SYNC: 'batched', RATE_LIMIT_MAX: String(max), RATE_LIMIT_WINDOW: '1m' }
  const [a, b] = [(await buildLimitedApp(t, env)).app, (await buildLimitedApp(t, env)).app]
  t.equal(a.rateLimits.store.leaseSize(max), lease)
  await redis.cli('CONFIG', 'RESETSTAT')
  const total = 3 * max
  const codes: number[] = []
  for (let sent = 0; sent < total; sent += 30) {
    const batch = await Promise.all(Array.from({ length: 30 }, (_, i) =>
      ((sent + i) % 2 === 0 ? a : b).inject({ url: '/limited', remoteAddress: '198.51.100.20' })))
    codes.push(...batch.map((r) => r.statusCode))
  }
  const allowed = codes.filter((code) => code === 200).length
  const bound = max + 2 * lease
  t.comment(`${allowed} of ${total} allowed; max ${max}, lease ${lease}, bound ${bound}`)
  t.ok(allowed <= bound, `at most max + instances × lease allowed (${allowed} ≤ ${bound})`)
  t.ok(allowed >= max - 2 * lease, `at least max − instances × lease allowed (${allowed}): unspent leases are the only loss`)
  t.equal(codes.filter((code) => code === 429).length, total - allowed, 'every other answer a 429')
  const calls = await evalshaCalls()
  t.ok(calls <= total / 5, `${calls} Redis scripts for ${total} requests`)
  t.equal(a.rateLimits.stats().allowed + b.rateLimits.stats().allowed, allowed)
  t.equal(Number(await redis.cli('GET', 'rl:{global|ip:198.51.100.20}:f')), max, 'the Redis counter never passes max')
})

t.test('headers come from the lease; sign-in (sliding, banned) stays exact', async (t) => {
  const { app } = await buildLimitedApp(t, { REDIS_URL, RATE_LIMIT_SYNC: 'batched', RATE_LIMIT_MAX: '100' })
  const first = await app.inject({ url: '/limited', remoteAddress: '198.51.100.21' })
  t.equal(first.headers['ratelimit-policy'], '"default";q=100;w=60')
  t.match(first.headers.ratelimit, /^"default";r=\d+;t=60$/)
  const login = await app.inject({ method: 'POST', url: '/login', remoteAddress: '198.51.100.21' })
  t.equal(login.headers.ratelimit, '"auth";r=4;t=12', 'one exact GCRA step')
  t.ok(await redis.cli('EXISTS', 'rl:{POST/login|ip:198.51.100.21}:g'), 'counted per request in Redis')
})

t.test('the Redis-down mode applies when a lease cannot be taken', async (t) => {
  const { app } = await buildLimitedApp(t, { REDIS_URL, RATE_LIMIT_SYNC: 'batched', RATE_LIMIT_MAX: '4', RATE_LIMIT_WHEN_REDIS_DOWN: 'closed' })
  const get = (): Promise<number> => app.inject({ url: '/limited', remoteAddress: '198.51.100.22' }).then((r) => r.statusCode)
  t.equal(await get(), 200)
  await redis.kill()
  t.same([await get(), await get()], [503, 503], 'lease of 1: each request needs Redis, and gets the closed mode')
  t.ok(app.rateLimits.stats().closed >= 2)
  await redis.restart()
})
