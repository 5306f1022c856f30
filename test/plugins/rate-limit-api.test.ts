// The API a user reaches for beside config.rateLimit (issue 15): the authRateLimit preset applies
// RATE_LIMIT_AUTH_MAX, createRateLimit()'s peek (`{ increment: false }`) works on the suite's store,
// and a createRateLimit({ max }) limiter inside a globally limited route counts on its own scope.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { useRedis } from '../helpers/index.js'
import { buildServer } from '../../server.js'
import { authRateLimit, type RateLimitPluginOptions } from '../../plugins/rate-limit.js'

const redis = await useRedis(t)
t.beforeEach(async () => { await redis.cli('FLUSHALL') })

async function build (t: { teardown: (fn: () => unknown) => void }, env: Record<string, string>, routes: (app: FastifyInstance) => void,
  rateLimit?: RateLimitPluginOptions): Promise<FastifyInstance> {
  const app = await buildServer({ env: { NODE_ENV: 'test', REDIS_URL: redis.url, ...env }, logger: false, ...(rateLimit === undefined ? {} : { rateLimit }) })
  t.teardown(() => app.close())
  routes(app)
  await app.ready()
  return app
}

const from = { remoteAddress: '203.0.113.40' }

t.test('the exported authRateLimit preset applies RATE_LIMIT_AUTH_MAX and its one-minute policy window', async (t) => {
  const app = await build(t, { RATE_LIMIT_AUTH_MAX: '3' }, (app) => {
    app.post('/sign-in', { config: { rateLimit: authRateLimit } }, async () => ({ ok: true }))
  })
  const answers = []
  for (let i = 0; i < 4; i++) answers.push(await app.inject({ method: 'POST', url: '/sign-in', ...from }))
  t.same(answers.map((r) => r.statusCode), [200, 200, 200, 429], 'three attempts, as configured')
  t.equal(answers[0]?.headers['ratelimit-policy'], '"auth";q=3;w=60')
  t.equal(answers[0]?.headers.ratelimit, '"auth";r=2;t=20', 'sliding: one attempt back every 60 s / 3')
})

t.test('createRateLimit(authRateLimit) reads RATE_LIMIT_AUTH_MAX per request', async (t) => {
  const app = await build(t, { RATE_LIMIT_AUTH_MAX: '2' }, (app) => {
    const signIn = app.createRateLimit(authRateLimit)
    app.post('/code', { config: { rateLimit: false } }, async (request) => {
      const result = await signIn(request)
      return { allowed: result.isAllowed ? true : !result.isExceeded, max: result.isAllowed ? null : result.max }
    })
  })
  const answers = []
  for (let i = 0; i < 3; i++) answers.push((await app.inject({ method: 'POST', url: '/code', ...from })).json())
  t.same(answers.map((a) => a.allowed), [true, true, false], 'two attempts, as configured, not the preset\'s 5')
  t.equal(answers[0]?.max, 2)
})

t.test('createRateLimit()(request, { increment: false }) peeks at the count without counting', async (t) => {
  const app = await build(t, { RATE_LIMIT_MAX: '5' }, (app) => {
    const limiter = app.createRateLimit()
    app.get('/counted', async () => ({ ok: true }))
    app.get('/peek', { config: { rateLimit: false } }, async (request) => await limiter(request, { increment: false }))
  })
  await app.inject({ url: '/counted', ...from })
  await app.inject({ url: '/counted', ...from })
  const first = await app.inject({ url: '/peek', ...from })
  t.equal(first.statusCode, 200)
  t.match(first.json(), { isAllowed: false, key: 'ip:203.0.113.40', max: 5, remaining: 3, isExceeded: false })
  t.ok(first.json().ttl > 0 && first.json().ttl <= 60_000, 'the window\'s time left')
  t.match((await app.inject({ url: '/peek', ...from })).json(), { remaining: 3 }, 'peeking counted nothing')
  t.match((await app.inject({ url: '/counted', ...from })).headers, { ratelimit: /^"default";r=2;/ })
})

t.test('createRateLimit({ max }) inside a globally limited route counts on its own scope', async (t) => {
  const app = await build(t, { RATE_LIMIT_MAX: '100' }, (app) => {
    const perAction = app.createRateLimit({ max: 2, timeWindow: 60_000 })
    app.get('/action', async (request) => {
      const result = await perAction(request)
      return { exceeded: result.isAllowed ? false : result.isExceeded }
    })
  })
  const exceeded = []
  for (let i = 0; i < 3; i++) exceeded.push((await app.inject({ url: '/action', ...from })).json().exceeded)
  t.same(exceeded, [false, false, true], 'two allowed by the inner limit, whatever the global counter says')
  const last = await app.inject({ url: '/action', ...from })
  t.match(last.headers, { ratelimit: /^"default";r=96;/ }, 'the global limit counted only the requests')
})

t.test('an asynchronous allow list and a per-request max take the slow path and still decide', async (t) => {
  const app = await build(t, { RATE_LIMIT_MAX: '1', RATE_LIMIT_ALLOW_LIST: '10.9.0.0/16' }, (app) => {
    app.get('/open', async () => ({ ok: true }))
    app.get('/tiered', { config: { rateLimit: { max: async (request) => request.headers['x-tier'] === 'gold' ? 3 : 1 } } }, async () => ({ ok: true }))
  }, { allowList: async (request) => request.headers['x-internal'] === 'yes' })
  const get = (url: string, headers: Record<string, string> = {}, remoteAddress = '203.0.113.41'): Promise<number> =>
    app.inject({ url, headers, remoteAddress }).then((r) => r.statusCode)
  t.same([await get('/open', { 'x-internal': 'yes' }), await get('/open', { 'x-internal': 'yes' })], [200, 200], 'allowed by the async check')
  t.same([await get('/open', {}, '10.9.1.1'), await get('/open', {}, '10.9.1.1')], [200, 200], 'allowed by RATE_LIMIT_ALLOW_LIST')
  t.same([await get('/open'), await get('/open')], [200, 429], 'everyone else is limited')
  const gold = []
  for (let i = 0; i < 4; i++) gold.push(await get('/tiered', { 'x-tier': 'gold' }, '203.0.113.42'))
  t.same(gold, [200, 200, 200, 429], 'max from the request')
  const res = await app.inject({ url: '/tiered', remoteAddress: '203.0.113.43' })
  t.equal(res.headers['ratelimit-policy'], '"route";q=1;w=60', 'the policy header built from the decision')
})
