// Several policies on one route (issue 31 item 1): every policy must allow, decided in one atomic
// script (a refused request consumes from none), each with its own key and cost; the IETF headers list
// every policy; dryRun counts and reports without refusing; createRateLimit() limiters get reward and
// penalty. Against a real Redis.
import t from 'tap'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { useRedis } from '../helpers/index.js'
import { buildServer } from '../../server.js'
import type { RatePolicy, SuiteRateLimiter } from '../../plugins/rate-limit.js'

const redis = await useRedis(t)
t.beforeEach(async () => { await redis.cli('FLUSHALL') })

async function build (t: { teardown: (fn: () => unknown) => void }, routes: (app: FastifyInstance) => void): Promise<FastifyInstance> {
  const app = await buildServer({ env: { NODE_ENV: 'test', REDIS_URL: redis.url, RATE_LIMIT_GLOBAL: 'false' }, logger: false })
  t.teardown(() => app.close())
  routes(app)
  await app.ready()
  return app
}

const user = (request: FastifyRequest): string => `user:${String(request.headers['x-user'])}`
const ip = (request: FastifyRequest): string => `ip:${request.ip}`

function policies (extra: Partial<RatePolicy> = {}): RatePolicy[] {
  return [
    { name: 'ip', max: 3, timeWindow: '10s', keyGenerator: ip },
    { name: 'user', max: 5, timeWindow: '1d', keyGenerator: user, cost: (request) => Number(request.headers['x-cost'] ?? 1), ...extra }
  ]
}

const ask = (app: FastifyInstance, address: string, who: string, cost = 1) =>
  app.inject({ url: '/export', remoteAddress: address, headers: { 'x-user': who, 'x-cost': String(cost) } })

t.test('every policy must allow; a refused request consumes from none; headers list both', async (t) => {
  const app = await build(t, (app) => { app.get('/export', { config: { rateLimit: { policies: policies() } } }, async () => ({ ok: true })) })
  const first = await ask(app, '198.51.100.1', 'ann')
  t.equal(first.statusCode, 200)
  t.equal(first.headers['ratelimit-policy'], '"ip";q=3;w=10, "user";q=5;w=86400')
  t.equal(first.headers.ratelimit, '"ip";r=2;t=10, "user";r=4;t=86400')
  await ask(app, '198.51.100.1', 'ann')
  await ask(app, '198.51.100.1', 'ann')
  // The ip policy refuses: the user policy is not charged.
  const refused = await ask(app, '198.51.100.1', 'ann')
  t.equal(refused.statusCode, 429)
  t.equal(refused.headers.ratelimit, '"ip";r=0;t=10, "user";r=2;t=86400', 'the user policy still has 2 left')
  t.equal(refused.headers['retry-after'], '10', 'the refusing policy (ip) names the wait')
  t.equal(await redis.cli('GET', 'rl:{GET/export#user|user:ann}:f'), '3', 'three charged, the refused one not')
  // From another address the user has 2 left, and a cost of 3 is refused by the user policy alone, charging the ip policy nothing.
  const costly = await ask(app, '198.51.100.2', 'ann', 3)
  t.equal(costly.statusCode, 429)
  t.equal(costly.headers['retry-after'], '86400', 'the user policy refused: its window')
  t.equal(String(await redis.cli('EXISTS', 'rl:{GET/export#ip|ip:198.51.100.2}:f')).trim(), '0', 'the ip policy consumed nothing')
  const two = await ask(app, '198.51.100.2', 'ann', 2)
  t.equal(two.statusCode, 200, 'a cost that fits passes')
  t.equal(two.headers.ratelimit, '"ip";r=2;t=10, "user";r=0;t=86400', 'cost 2 uses 2 of the user\'s 5, the ip policy costs 1')
  t.match(app.rateLimits.stats(), { allowed: 4, limited: 2 })
})

t.test('sliding and fixed policies together, atomically', async (t) => {
  const app = await build(t, (app) => {
    app.get('/export', { config: { rateLimit: { policies: [{ name: 'burst', max: 2, timeWindow: 60_000, keyGenerator: ip, algorithm: 'sliding' }, { name: 'day', max: 10, timeWindow: '1d', keyGenerator: user }] } } }, async () => ({ ok: true }))
  })
  const codes = []
  for (let i = 0; i < 4; i++) codes.push((await ask(app, '198.51.100.3', 'bo')).statusCode)
  t.same(codes, [200, 200, 429, 429])
  t.equal(await redis.cli('GET', 'rl:{GET/export#day|user:bo}:f'), '2', 'the daily count holds only the two allowed')
})

t.test('dryRun: counted and reported, never refused; stats count what it would have refused', async (t) => {
  const app = await build(t, (app) => { app.get('/export', { config: { rateLimit: { policies: policies({ max: 1, dryRun: true }) } } }, async () => ({ ok: true })) })
  const first = await ask(app, '198.51.100.4', 'cy')
  const second = await ask(app, '198.51.100.4', 'cy')
  t.same([first.statusCode, second.statusCode], [200, 200])
  t.equal(second.headers.ratelimit, '"ip";r=1;t=10, "user";r=0;t=86400', 'the dry-run policy reports itself spent')
  t.equal(second.headers['retry-after'], undefined)
  t.match(app.rateLimits.stats(), { allowed: 2, limited: 0, dryRunRefused: 1 })
  t.equal(await redis.cli('GET', 'rl:{GET/export#user|user:cy}:f'), '1', 'what it would have refused is not charged')
})

t.test('createRateLimit() results have reward and penalty', async (t) => {
  const app = await build(t, (app) => {
    const limiter: SuiteRateLimiter = app.createRateLimit({ max: 2, timeWindow: 60_000 })
    app.post('/try', async (request) => {
      const result = await limiter(request)
      return { allowed: result.isAllowed || !result.isExceeded, key: result.key }
    })
    app.post('/reward', async (request) => { await limiter.reward(`ip:${request.ip}`, 2); return {} })
    app.post('/penalty', async (request) => { await limiter.penalty(`ip:${request.ip}`, 2); return {} })
  })
  const call = async (url: string) => (await app.inject({ method: 'POST', url, remoteAddress: '198.51.100.5' })).json()
  t.same([(await call('/try')).allowed, (await call('/try')).allowed, (await call('/try')).allowed], [true, true, false])
  await call('/reward')
  t.same([(await call('/try')).allowed, (await call('/try')).allowed], [true, false], 'two given back: one more passes (the refused try counted too)')
  await redis.cli('FLUSHALL')
  await call('/penalty')
  t.equal((await call('/try')).allowed, false, 'a penalty of 2 used the whole quota')
})

t.test('the list form refuses unknown and misplaced options at start-up', async (t) => {
  const route = (rateLimit: object) => async (t: { teardown: (fn: () => unknown) => void }) => {
    await build(t, (app) => { app.get('/x', { config: { rateLimit } }, async () => ({})) })
  }
  await t.rejects(route({ policies: [{ name: 'a', max: 1, timeWindow: 1000, costt: 2 }] })(t), /policies\[0\]\.costt.*did you mean cost/i)
  await t.rejects(route({ max: 3, policies: [{ name: 'a', max: 1, timeWindow: 1000 }] })(t), /max cannot sit beside policies/)
  await t.rejects(route({ policies: [{ name: 'a', max: 1, timeWindow: 1000 }, { name: 'a', max: 1, timeWindow: 1000 }] })(t), /used twice/)
  await t.rejects(route({ policies: [] })(t), /non-empty/)
})
