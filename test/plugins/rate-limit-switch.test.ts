// Switching from @fastify/rate-limit (issue 27): the option names an app already passes work as they
// did there, in the suite's own route hook, at the plugin level (inherited by every route) and per
// route; the ones the suite does not take stop registration with a line saying what to use instead.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { useRedis } from '../helpers/index.js'
import { buildServer } from '../../server.js'
import type { RateLimitPluginOptions } from '../../plugins/rate-limit.js'

const redis = await useRedis(t)
t.beforeEach(async () => { await redis.cli('FLUSHALL') })

async function build (t: { teardown: (fn: () => unknown) => void }, routes: (app: FastifyInstance) => void, rateLimit?: RateLimitPluginOptions, env: Record<string, string> = {}): Promise<FastifyInstance> {
  const app = await buildServer({
    env: { NODE_ENV: 'test', REDIS_URL: redis.url, RATE_LIMIT_GLOBAL: 'false', RATE_LIMIT_LEGACY_HEADERS: 'true', ...env },
    logger: false,
    ...(rateLimit === undefined ? {} : { rateLimit })
  })
  t.teardown(() => app.close())
  routes(app)
  await app.ready()
  return app
}

const ok = async (): Promise<{ ok: true }> => ({ ok: true })
const statuses = async (app: FastifyInstance, url: string, n: number, headers: Record<string, string> = {}): Promise<number[]> => {
  const out: number[] = []
  for (let i = 0; i < n; i++) out.push((await app.inject({ url, headers })).statusCode)
  return out
}

t.test('keyGenerator: plugin-wide and per route, as in @fastify/rate-limit', async (t) => {
  const app = await build(t, (app) => {
    app.get('/a', { config: { rateLimit: { max: 1, timeWindow: 60_000 } } }, ok)
    app.get('/b', { config: { rateLimit: { max: 1, timeWindow: 60_000, keyGenerator: (request) => String(request.headers['x-tenant']) } } }, ok)
  }, { keyGenerator: (request: FastifyRequest) => String(request.headers['x-api-key']) })
  t.same(await statuses(app, '/a', 2, { 'x-api-key': 'k1' }), [200, 429])
  t.same(await statuses(app, '/a', 1, { 'x-api-key': 'k2' }), [200], 'another key has its own count')
  t.same(await statuses(app, '/b', 2, { 'x-api-key': 'k1', 'x-tenant': 't1' }), [200, 429])
  t.same(await statuses(app, '/b', 1, { 'x-api-key': 'k1', 'x-tenant': 't2' }), [200], "the route's own generator wins")
})

t.test('errorResponseBuilder: plugin-wide and per route, with the context @fastify/rate-limit gives', async (t) => {
  const app = await build(t, (app) => {
    app.get('/a', { config: { rateLimit: { max: 1, timeWindow: 60_000 } } }, ok)
    app.get('/b', { config: { rateLimit: { max: 1, timeWindow: 60_000, errorResponseBuilder: () => ({ statusCode: 429, route: 'own' }) } } }, ok)
  }, { errorResponseBuilder: (_request, context) => ({ statusCode: context.statusCode, message: `wait ${context.after}`, max: context.max }) })
  await app.inject('/a')
  const refused = await app.inject('/a')
  t.equal(refused.statusCode, 429)
  t.match(refused.json(), { message: 'wait 60 seconds', max: 1 })
  await app.inject('/b')
  t.match((await app.inject('/b')).json(), { route: 'own' })
})

t.test('allowList: a list of keys or a check, plugin-wide and per route', async (t) => {
  const app = await build(t, (app) => {
    app.get('/a', { config: { rateLimit: { max: 1, timeWindow: 60_000 } } }, ok)
    app.get('/b', { config: { rateLimit: { max: 1, timeWindow: 60_000, allowList: ['vip'] } } }, ok)
  }, { keyGenerator: (request: FastifyRequest) => String(request.headers['x-api-key']), allowList: ['trusted'] })
  t.same(await statuses(app, '/a', 3, { 'x-api-key': 'trusted' }), [200, 200, 200], 'a listed key is never limited')
  t.same(await statuses(app, '/a', 2, { 'x-api-key': 'other' }), [200, 429])
  t.same(await statuses(app, '/b', 3, { 'x-api-key': 'vip' }), [200, 200, 200], "the route's own list")
})

t.test('ban: 403 once a client goes `ban` requests past max, plugin-wide and per route', async (t) => {
  const app = await build(t, (app) => {
    app.get('/a', { config: { rateLimit: { max: 1, timeWindow: 60_000 } } }, ok)
    app.get('/b', { config: { rateLimit: { max: 1, timeWindow: 60_000, ban: 2 } } }, ok)
  }, { ban: 1 })
  t.same(await statuses(app, '/a', 3), [200, 429, 403])
  t.same(await statuses(app, '/b', 4), [200, 429, 429, 403])
})

t.test('exponentialBackoff: each refusal doubles the wait, plugin-wide and off per route', async (t) => {
  const app = await build(t, (app) => {
    app.get('/a', { config: { rateLimit: { max: 1, timeWindow: 1000 } } }, ok)
    app.get('/b', { config: { rateLimit: { max: 1, timeWindow: 1000, exponentialBackoff: false } } }, ok)
  }, { exponentialBackoff: true })
  const waits = async (url: string): Promise<Array<string | undefined>> => {
    const out: Array<string | undefined> = []
    for (let i = 0; i < 4; i++) out.push((await app.inject(url)).headers['retry-after'] as string | undefined)
    return out
  }
  t.same(await waits('/a'), [undefined, '1', '2', '4'])
  t.same(await waits('/b'), [undefined, '1', '1', '1'])
})

t.test('continueExceeding: a refused request restarts the window, plugin-wide and off per route', async (t) => {
  const app = await build(t, (app) => {
    app.get('/a', { config: { rateLimit: { max: 1, timeWindow: 5000 } } }, ok)
    app.get('/b', { config: { rateLimit: { max: 1, timeWindow: 5000, continueExceeding: false } } }, ok)
  }, { continueExceeding: true })
  await app.inject('/a')
  await app.inject('/b')
  await sleep(1100) // as upstream's own test: a second of the window goes by
  t.equal((await app.inject('/a')).headers['x-ratelimit-reset'], '5', 'the refusal restarted the 5 s window')
  t.equal((await app.inject('/b')).headers['x-ratelimit-reset'], '4', 'without it the window runs on')
})

t.test('options the suite does not take stop registration with one line saying what to use', async (t) => {
  const refused: Array<[Record<string, unknown>, RegExp]> = [
    [{ skipOnError: true }, /skipOnError is not supported: while Redis is down RATE_LIMIT_WHEN_REDIS_DOWN decides/],
    [{ max: 10 }, /max is set by RATE_LIMIT_MAX/],
    [{ timeWindow: '1 minute' }, /timeWindow is set by RATE_LIMIT_WINDOW/],
    [{ addHeaders: { 'x-ratelimit-limit': false } }, /RATE_LIMIT_LEGACY_HEADERS/],
    [{ redis: {} }, /redis is not needed/],
    [{ maxx: 1 }, /maxx is unknown/]
  ]
  for (const [options, message] of refused) {
    await t.rejects(build(t, () => {}, options as RateLimitPluginOptions), { code: 'FRS_RATE_LIMIT_OPTION', message }, JSON.stringify(options))
  }
  await t.rejects(build(t, (app) => {
    app.get('/x', { config: { rateLimit: { max: 1, skipOnError: true } } }, ok)
  }), { code: 'FRS_RATE_LIMIT_OPTION', message: /config\.rateLimit of GET \/x: skipOnError is not supported/ }, 'per route too')
})
