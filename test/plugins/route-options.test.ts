// Third security review, item 8: `privat: true` made a private route public, silently. Unknown keys
// in a route's config.cache and config.rateLimit (and its limiter) are refused when the route is
// added, naming the route and the option meant.
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import { useRedis } from '../helpers/index.js'
import redisSuite from '../../index.js'

async function register (t: Test, routeConfig: Record<string, unknown>): Promise<unknown> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(redisSuite, { env: { NODE_ENV: 'test', RATE_LIMIT_GLOBAL: 'false' }, processEnv: false })
  try {
    app.get('/account', { config: routeConfig }, async () => ({ ok: true }))
    await app.ready()
    return undefined
  } catch (err) {
    return err
  }
}

t.test('8. a typo in config.cache is refused at registration, with the option meant', async (t) => {
  const privat = await register(t, { cache: { ttl: '1m', privat: true } }) as Error & { code?: string }
  t.match(privat?.message, /config\.cache of GET \/account: unknown option privat: did you mean private\?/)
  t.equal(privat?.code, 'FRS_HTTP_CACHE_CONFIG_INVALID')
  const tag = await register(t, { cache: { ttl: '1m', tag: ['users'] } }) as Error
  t.match(tag?.message, /unknown option tag: did you mean tags\?/)
  const odd = await register(t, { cache: { ttl: '1m', colour: 'red' } }) as Error
  t.match(odd?.message, /unknown option colour \(options: ttl, tags,/, 'no close name: the list of options')
  t.equal(await register(t, { cache: { ttl: '1m', private: true, tags: ['users'] } }), undefined, 'the right names pass')
})

t.test('8. a typo in config.rateLimit or its limiter is refused at registration', async (t) => {
  const window = await register(t, { rateLimit: { max: 5, timeWindo: '1m' } }) as Error & { code?: string }
  t.match(window?.message, /config\.rateLimit of GET \/account: unknown option timeWindo: did you mean timeWindow\?/)
  t.equal(window?.code, 'FRS_RATE_LIMIT_OPTION')
  const algorithm = await register(t, { rateLimit: { max: 5, limiter: { algorithim: 'sliding' } } }) as Error
  t.match(algorithm?.message, /unknown option limiter\.algorithim: did you mean algorithm\?/)
  t.equal(await register(t, { rateLimit: { max: 5, timeWindow: '1m', limiter: { algorithm: 'sliding', policy: 'p' } } }), undefined)
})

t.test('8. with Redis: a refused private typo never caches anything', async (t) => {
  const redis = await useRedis(t)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(redisSuite, { env: { NODE_ENV: 'test', REDIS_URL: redis.url }, processEnv: false })
  t.throws(() => app.get('/me', { config: { cache: { ttl: '1m', privat: true } as never } }, async () => ({ ok: true })),
    /did you mean private/)
})
