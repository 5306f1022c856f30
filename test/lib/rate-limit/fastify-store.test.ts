// The contract test: @fastify/rate-limit on a bare Fastify instance, with our store behind `store`.
import Fastify, { type FastifyInstance } from 'fastify'
import rateLimit from '@fastify/rate-limit'
import t from 'tap'
import { useRedis } from '../../helpers/fixtures.js'
import { fastifyRateLimitStore } from '../../../lib/rate-limit/fastify-store.js'
import type { RateLimitStoreOptions } from '../../../lib/rate-limit/store.js'
import { connectClient, openStore } from './clients.js'

const server = await useRedis(t)

async function buildApp (tt: Parameters<typeof connectClient>[0], options: RateLimitStoreOptions): Promise<FastifyInstance> {
  const app = Fastify()
  tt.teardown(() => app.close())
  await app.register(rateLimit, { max: 3, timeWindow: '1 minute', store: fastifyRateLimitStore(await openStore(tt, options)) })
  app.get('/fixed', async () => ({ ok: true }))
  // `limiter` is ours; the suite's plugin declares its type on the plugin's route config.
  app.get('/sliding', { config: { rateLimit: { max: 2, timeWindow: 10_000, limiter: { algorithm: 'sliding' } } as object } }, async () => ({ ok: true }))
  await app.ready()
  return app
}

t.test('429 with Retry-After at max + 1, per route', async (t) => {
  const app = await buildApp(t, { redis: await connectClient(t, server) })
  const fixed = []
  for (let i = 0; i < 4; i++) fixed.push(await app.inject('/fixed'))
  t.same(fixed.map((r) => r.statusCode), [200, 200, 200, 429])
  t.same(fixed.map((r) => r.headers['x-ratelimit-remaining']), ['2', '1', '0', '0'])
  t.equal(fixed[3]?.headers['retry-after'], '60')

  const sliding = []
  for (let i = 0; i < 3; i++) sliding.push(await app.inject('/sliding'))
  t.same(sliding.map((r) => r.statusCode), [200, 200, 429], 'the route has its own counter and algorithm')
  t.equal(sliding[2]?.headers['retry-after'], '5', 'GCRA: one request comes back every window / max')
  t.equal(sliding[2]?.headers['x-ratelimit-limit'], '2')
})

t.test('closed mode while Redis is down answers 503 with Retry-After, never 500 or 429', async (t) => {
  const app = await buildApp(t, { redis: await connectClient(t, server), isRedisReady: () => false, whenRedisDown: 'closed' })
  const res = await app.inject('/fixed')
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '1')
  t.match(res.json(), { code: 'FRS_RATE_LIMIT_UNAVAILABLE' })
})
