// Issue 26 item 2: each feature can be left out at registration; one left out opens no connection and
// adds no decorator, hook or route. Health and metrics paths are options.
import t from 'tap'
import Fastify, { type FastifyInstance, type RouteOptions } from 'fastify'
import redisSuite, { type RedisSuiteOptions } from '../../index.js'
import { useRedis, waitFor, type RedisServer } from '../helpers/index.js'

const REQUEST_HOOKS = ['onRequest', 'preParsing', 'preValidation', 'preHandler', 'preSerialization', 'onSend', 'onResponse', 'onError', 'onTimeout', 'onRequestAbort'] as const
const ALL_OFF = { httpCache: false, session: false, rateLimit: false, pubsub: false, presence: false, locks: false, metrics: false, health: false } satisfies RedisSuiteOptions

/** The hooks registered on the instance itself (Fastify keeps them under the `fastify.hooks` symbol). */
function instanceHooks (app: FastifyInstance): Record<string, unknown[]> {
  const slot = Object.getOwnPropertySymbols(app).find((symbol) => symbol.description === 'fastify.hooks')
  return slot === undefined ? {} : (app as unknown as Record<symbol, Record<string, unknown[]>>)[slot] ?? {}
}

/** The suite's client connections on the server (CLIENT SETNAME fastify-redis-suite). */
async function suiteConnections (redis: RedisServer): Promise<number> {
  return (await redis.cli('CLIENT', 'LIST')).split('\n').filter((line) => line.includes('name=fastify-redis-suite ')).length
}

async function build (t: { teardown: (fn: () => unknown) => void }, redis: RedisServer, options: Partial<RedisSuiteOptions>, own?: (app: FastifyInstance) => void,
  env: Record<string, string> = {}): Promise<{ app: FastifyInstance, routes: string[], mine: RouteOptions | undefined }> {
  const app = Fastify()
  t.teardown(() => app.close())
  const routes: string[] = []
  app.addHook('onRoute', (route) => { routes.push(`${String(route.method)} ${route.url}`) })
  await app.register(redisSuite, { env: { NODE_ENV: 'test', REDIS_URL: `redis://127.0.0.1:${redis.port}`, ...env }, processEnv: false, ...options })
  let mine: RouteOptions | undefined
  // Added after the suite: sees every route option the suite's onRoute hooks set.
  app.addHook('onRoute', (route) => { if (route.url === '/mine' && route.method === 'GET') mine = route })
  app.get('/mine', async () => ({ ok: true }))
  own?.(app)
  await app.ready()
  return { app, routes, mine }
}

t.test('everything but the cache off: the cache\'s connections only, no routes, no request hooks', async (t) => {
  const redis = await useRedis(t)
  const { app, routes, mine } = await build(t, redis, ALL_OFF)
  await app.cache.set('k', 'v')
  t.equal(await app.cache.get('k'), 'v', 'the cache works')
  t.same(routes, ['GET /mine', 'HEAD /mine'], 'no route of the suite\'s')
  const hooks = instanceHooks(app)
  t.ok(Object.keys(hooks).length > 0, 'the instance hooks are readable')
  for (const name of REQUEST_HOOKS) t.equal(hooks[name]?.length ?? 0, 0, `no global ${name} hook`)
  for (const name of REQUEST_HOOKS) t.equal((mine as Record<string, unknown> | undefined)?.[name], undefined, `no ${name} hook on the app's route`)
  for (const name of ['sessions', 'rateLimits', 'createRateLimit', 'httpCache', 'pubsub', 'presence', 'locks', 'metrics', 'health']) {
    t.notOk(app.hasDecorator(name), `no app.${name}`)
  }
  t.notOk(app.hasRequestDecorator('session'), 'no request.session')
  // Two, on purpose (see the next test): the cache's commands and its invalidation listener, which
  // keeps other instances' memory tiers current. RESP3 would let one connection do both, but Redis
  // then treats it as a pub/sub client.
  t.equal(await suiteConnections(redis), 2, 'the commands connection and the cache\'s invalidation subscriber')
  t.equal((await app.inject('/mine')).headers['ratelimit'], undefined, 'no limit on the app\'s route')
  t.equal((await app.inject('/health')).statusCode, 404)
})

t.test('everything but the cache off, CACHE_INVALIDATION_BUS=false: one Redis connection; other instances still see invalidations, within 1 s', async (t) => {
  const redis = await useRedis(t)
  const noBus = { CACHE_INVALIDATION_BUS: 'false' }
  const a = (await build(t, redis, ALL_OFF, undefined, noBus)).app
  t.equal(await suiteConnections(redis), 1, 'the commands connection only')
  const b = (await build(t, redis, ALL_OFF, undefined, noBus)).app
  t.equal(await suiteConnections(redis), 2, 'one per instance')
  t.equal(await redis.cli('PUBSUB', 'NUMSUB', 'cache:invalidate'), 'cache:invalidate\n0', 'nobody subscribes')
  await a.cache.set('k', 'one', { tags: ['t'] })
  t.equal(await b.cache.get('k'), 'one', 'in b\'s memory tier')
  await a.cache.set('k', 'two')
  // The bound is the 1 s sync interval plus one command; the wait allows for a loaded machine.
  await waitFor(async () => (await b.cache.get('k')) === 'two', { timeoutMs: 5_000, what: 'b asked Redis again and got a\'s write' })
  await a.cache.set('tagged', 'v', { tags: ['t'] })
  t.equal(await b.cache.get('tagged'), 'v')
  await a.cache.invalidateTags(['t'])
  await waitFor(async () => (await b.cache.get('tagged')) === undefined, { timeoutMs: 5_000, what: 'b re-read the tag version' })
})

t.test('the commands connection never subscribes: big replies are not cut by the pub/sub output limit', async (t) => {
  // Redis (7.0, 7.4, Valkey 8) counts any connection with a subscription as a pub/sub client, RESP3
  // included, and closes it when its pending replies pass client-output-buffer-limit pubsub (32 MB
  // by default, often lower on managed services; no limit for normal clients). Subscribing on the
  // commands connection would make one large read, or a backlog during an event-loop stall, drop it
  // with every command in flight. Here the pub/sub limit is 1 MB and a 2 MB entry is read from Redis.
  const redis = await useRedis(t, { extraConfig: ['client-output-buffer-limit pubsub 1mb 1mb 0'] })
  const a = (await build(t, redis, ALL_OFF)).app
  const b = (await build(t, redis, ALL_OFF)).app
  const names = async (type: string): Promise<number> => (await redis.cli('CLIENT', 'LIST', 'TYPE', type)).split('\n').filter((line) => line.includes('name=fastify-redis-suite ')).length
  t.equal(await names('normal'), 2, 'each instance\'s commands connection is a normal client')
  t.equal(await names('pubsub'), 2, 'each instance\'s subscriber is the only pub/sub client')
  const big = 'x'.repeat(2 * 1024 * 1024)
  await a.cache.set('big', big)
  t.equal((await b.cache.get<string>('big'))?.length, big.length, 'read from Redis on b\'s commands connection, past the pub/sub limit')
  await a.cache.set('k', 'one')
  t.equal(await b.cache.get('k'), 'one', 'now in b\'s memory tier')
  await a.cache.set('k', 'two')
  await waitFor(async () => (await b.cache.get('k')) === 'two', { timeoutMs: 2_000, what: 'a\'s write invalidated b\'s memory copy' })
  t.equal(b.redisState.status, 'connected', 'b\'s commands connection was never dropped')
  t.equal(b.redisState.reconnects, 0)
})

t.test('the whole suite opens a third connection (the rate limiter\'s), which rateLimit: false leaves closed', async (t) => {
  const redis = await useRedis(t)
  await build(t, redis, {})
  t.equal(await suiteConnections(redis), 3, 'main, subscriber, rate limiter')
})

t.test('health and metrics paths are options; the global limit leaves them alone where they are', async (t) => {
  const redis = await useRedis(t)
  const { app, routes } = await build(t, redis, { health: { prefix: '/_suite/health' }, metrics: { path: '/_suite/metrics' }, session: false }, (app) => {
    app.get('/health', async () => ({ mine: true }))
  })
  t.ok(routes.includes('GET /_suite/health/ready') && routes.includes('GET /_suite/metrics'), 'mounted under the options\' paths')
  t.same(routes.filter((route) => / \/(health|metrics)/.test(route)), ['GET /health', 'HEAD /health'], 'nothing of the suite\'s at /health or /metrics')
  t.same((await app.inject('/health')).json(), { mine: true }, 'an app can keep its own /health')
  t.equal((await app.inject('/_suite/health/ready')).statusCode, 200)
  const scrape = await app.inject('/_suite/metrics')
  t.equal(scrape.statusCode, 200)
  t.match(scrape.body, /redis_up|fastify_redis|# HELP/)
  t.equal(scrape.headers['ratelimit'], undefined, 'the scrape path is exempt from the global limit')
  t.ok((await app.inject('/mine')).headers['ratelimit'], 'the app\'s route has the global limit')
})

t.test('a bad health prefix stops boot with one line', async (t) => {
  const redis = await useRedis(t)
  const app = Fastify()
  t.teardown(() => app.close())
  const err = await app.register(redisSuite, { env: { NODE_ENV: 'test', REDIS_URL: `redis://127.0.0.1:${redis.port}` }, processEnv: false, health: { prefix: 'health/' } }).ready().then(() => undefined, (e: Error) => e)
  t.match(err?.message, /health prefix must start with "\/"/)
})
