// Issue 26 item 1: an app that already registered @fastify/redis, @fastify/cookie, @fastify/session
// or @fastify/rate-limit (the real packages from npm) can register the suite after them.
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyRedis from '@fastify/redis'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import fastifyRateLimit from '@fastify/rate-limit'
import type { Redis } from 'ioredis'
import redisSuite from '../../index.js'
import { useRedis } from '../helpers/index.js'

const SECRET = 'a-session-secret-of-at-least-32-characters'

function newApp (t: { teardown: (fn: () => unknown) => void }): FastifyInstance {
  const app = Fastify()
  t.teardown(() => app.close())
  return app
}

const env = (port: number): Record<string, string> => ({ NODE_ENV: 'test', REDIS_URL: `redis://127.0.0.1:${port}`, SESSION_SECRET: SECRET, REDIS_KEY_PREFIX: 'suite:' })

t.test('after @fastify/redis: app.redis stays the app\'s, the suite runs on its own connection', async (t) => {
  const redis = await useRedis(t)
  const app = newApp(t)
  await app.register(fastifyRedis, { url: `redis://127.0.0.1:${redis.port}` })
  const theirs = app.redis
  await app.register(redisSuite, { env: env(redis.port), processEnv: false })
  await app.ready()
  t.equal(app.redis, theirs, 'app.redis is still the client @fastify/redis made')
  t.not(app.redisConnections.main, theirs, 'the suite\'s connection is its own')
  await app.cache.set('k', 1)
  t.equal(await app.cache.get('k'), 1)
  t.match(await redis.cli('KEYS', 'suite:*'), /suite:cache:/, 'the suite\'s keys carry its prefix')
  t.equal((await app.inject('/health/ready')).statusCode, 200)
})

t.test('after @fastify/redis with a namespace: both coexist', async (t) => {
  const redis = await useRedis(t)
  const app = newApp(t)
  await app.register(fastifyRedis, { url: `redis://127.0.0.1:${redis.port}`, namespace: 'jobs' })
  await app.register(redisSuite, { env: env(redis.port), processEnv: false })
  await app.ready()
  const namespaced = (app.redis as unknown as Record<string, Redis>)['jobs']
  t.equal(await namespaced?.set('own', 'v'), 'OK', 'the namespaced client works')
  await app.cache.set('k', 2)
  t.equal(await app.cache.get('k'), 2)
})

t.test('after @fastify/redis, asked to share its client: one client for both', async (t) => {
  const redis = await useRedis(t)
  const app = newApp(t)
  await app.register(fastifyRedis, { url: `redis://127.0.0.1:${redis.port}` })
  // The shared client's keyPrefix (none) is the suite's: REDIS_KEY_PREFIX must agree (test/adopt/client.test.ts).
  const { REDIS_KEY_PREFIX: _prefix, ...unprefixed } = env(redis.port)
  await app.register(redisSuite, { env: unprefixed, processEnv: false, redis: { client: app.redis } })
  await app.ready()
  await app.cache.set('shared', 3)
  t.equal(await app.cache.get('shared'), 3)
  t.match(await redis.cli('KEYS', '*'), /cache:/, 'the suite wrote through the app\'s client (its keyPrefix: none)')
})

t.test('after @fastify/cookie: the app\'s cookie parser is reused', async (t) => {
  const redis = await useRedis(t)
  const app = newApp(t)
  await app.register(fastifyCookie, { secret: 'the-app-cookie-secret' })
  await app.register(redisSuite, { env: env(redis.port), processEnv: false })
  app.get('/sign', { config: { session: true } }, async (request, reply) => {
    request.session.set('userId', 'u1')
    return reply.setCookie('own', 'value', { signed: true }).send({ ok: true })
  })
  const res = await app.inject('/sign')
  t.equal(res.statusCode, 200)
  const names = res.cookies.map((cookie) => cookie.name).sort()
  t.same(names, ['own', 'sid'].sort(), 'the app\'s signed cookie and the session cookie')
  const own = res.cookies.find((cookie) => cookie.name === 'own')
  t.ok(own !== undefined && app.unsignCookie(own.value).valid, 'the app\'s cookie secret still signs')
})

t.test('after @fastify/session: boot stops with one line naming session: false; with it, the app keeps its sessions', async (t) => {
  const redis = await useRedis(t)
  const app = newApp(t)
  await app.register(fastifyCookie)
  await app.register(fastifySession, { secret: SECRET, cookie: { secure: false } })
  const err = await app.register(redisSuite, { env: env(redis.port), processEnv: false }).ready().then(() => undefined, (e: Error) => e)
  t.match(err, { code: 'FRS_PLUGIN_CONFLICT', message: /@fastify\/session is already registered.*\{ session: false \}/ })
  t.notMatch(err?.message, /\n/, 'one line')

  const second = newApp(t)
  await second.register(fastifyCookie)
  await second.register(fastifySession, { secret: SECRET, cookie: { secure: false } })
  await second.register(redisSuite, { env: env(redis.port), processEnv: false, session: false })
  second.get('/visit', async (request) => {
    const visits = Number(request.session.get('visits' as never) ?? 0) + 1
    request.session.set('visits' as never, visits as never)
    return { visits }
  })
  const first = await second.inject('/visit')
  const cookie = first.cookies.find((c) => c.name === 'sessionId')
  t.ok(cookie, '@fastify/session set its cookie')
  const again = await second.inject({ url: '/visit', cookies: { sessionId: cookie?.value ?? '' } })
  t.same(again.json(), { visits: 2 }, 'the app\'s sessions work as before')
  t.notOk(second.hasDecorator('sessions'), 'no app.sessions')
})

t.test('after @fastify/rate-limit: boot stops with one line naming rateLimit: false; with it, the app\'s limiter is the only one', async (t) => {
  const redis = await useRedis(t)
  const app = newApp(t)
  await app.register(fastifyRateLimit, { max: 2, timeWindow: 60_000 })
  const err = await app.register(redisSuite, { env: env(redis.port), processEnv: false }).ready().then(() => undefined, (e: Error) => e)
  t.match(err, { code: 'FRS_PLUGIN_CONFLICT', message: /@fastify\/rate-limit is already registered.*\{ rateLimit: false \}/ })
  t.notMatch(err?.message, /\n/, 'one line')

  const second = newApp(t)
  await second.register(fastifyRateLimit, { max: 2, timeWindow: 60_000 })
  await second.register(redisSuite, { env: env(redis.port), processEnv: false, rateLimit: false })
  second.get('/', async () => ({ ok: true }))
  const codes = []
  for (let i = 0; i < 3; i++) codes.push((await second.inject('/')).statusCode)
  t.same(codes, [200, 200, 429], '@fastify/rate-limit\'s own limit applies, once')
  t.notOk(second.hasDecorator('rateLimits'), 'no suite limiter')
})
