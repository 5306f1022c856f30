// Compile-time tests of the rate-limit declarations (route config, app.rateLimits); checked by tsc, never executed.
import Fastify from 'fastify'
import redisSuite, { authRateLimit, type RateLimitStats, type RedisDownMode } from '../../index.js'
import { expectType } from './expect-type.js'

export async function rateLimitTypes (): Promise<void> {
  const app = Fastify()
  await app.register(redisSuite, { rateLimit: { keyGenerator: (request) => request.ip, exemptRoutes: ['/internal'] } })

  expectType<RateLimitStats>()(app.rateLimits.stats())
  expectType<RedisDownMode>()(app.rateLimits.mode)
  expectType<'redis' | 'memory'>()(app.rateLimits.backend)

  app.get('/a', { config: { rateLimit: { max: 5, timeWindow: '1 minute' } } }, async () => 'ok')
  app.get('/b', { config: { rateLimit: { max: 5, timeWindow: 10_000, limiter: { algorithm: 'sliding', policy: 'b', scope: 'b', ban: { after: 3, duration: '15m' } } } } }, async () => 'ok')
  app.post('/login', { config: { rateLimit: authRateLimit } }, async () => 'ok')
  app.post('/signup', { config: { rateLimit: { ...authRateLimit, max: 3 } } }, async () => 'ok')
  app.get('/c', { config: { rateLimit: false } }, async () => 'ok')

  // @ts-expect-error the algorithm is fixed or sliding
  app.get('/d', { config: { rateLimit: { limiter: { algorithm: 'token-bucket' } } } }, async () => 'ok')
  // @ts-expect-error a ban needs `after` and `duration`
  app.get('/e', { config: { rateLimit: { limiter: { ban: { after: 3 } } } } }, async () => 'ok')
}
