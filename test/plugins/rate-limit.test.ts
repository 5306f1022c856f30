// The rate-limit plugin in the demo app against a real redis-server: limits through HTTP, windows,
// the sliding algorithm, instances sharing a limit, client keys behind proxies, the allow list,
// headers and the 429 body, bans, the auth preset and NOSCRIPT recovery.
import t from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { useRedis } from '../helpers/index.js'
import { sleep } from '../helpers/wait.js'
import { buildServer } from '../../server.js'
import { buildLimitedApp, statuses } from './rate-limit-app.js'

const redis = await useRedis(t)
const REDIS_URL = `redis://127.0.0.1:${redis.port}`

t.beforeEach(async () => { await redis.cli('FLUSHALL') })

t.test('through HTTP: exactly max allowed, then a JSON 429 with Retry-After and the IETF headers', async (t) => {
  const { app } = await buildLimitedApp(t, { REDIS_URL, RATE_LIMIT_MAX: '5', RATE_LIMIT_WINDOW: '1m' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const responses = []
  for (let i = 0; i < 6; i++) responses.push(await fetch(`${base}/limited`))
  t.same(responses.map((r) => r.status), [200, 200, 200, 200, 200, 429])

  const first = responses[0]!
  t.equal(first.headers.get('ratelimit-policy'), '"default";q=5;w=60')
  t.equal(first.headers.get('ratelimit'), '"default";r=4;t=60')
  t.same(responses.slice(0, 5).map((r) => r.headers.get('ratelimit')?.replace(/;t=\d+$/, '')),
    ['"default";r=4', '"default";r=3', '"default";r=2', '"default";r=1', '"default";r=0'])
  t.equal(first.headers.get('x-ratelimit-limit'), null, 'no legacy headers by default')

  const refused = responses[5]!
  const retryAfter = Number(refused.headers.get('retry-after'))
  t.ok(retryAfter >= 55 && retryAfter <= 60, `Retry-After ${retryAfter} s`)
  t.equal(refused.headers.get('ratelimit'), `"default";r=0;t=${retryAfter}`)
  t.equal(refused.headers.get('ratelimit-policy'), '"default";q=5;w=60')
  t.match(refused.headers.get('content-type'), /^application\/json/)
  t.same(await refused.json(), {
    statusCode: 429, code: 'FRS_RATE_LIMITED', error: 'Too Many Requests', message: `Rate limit exceeded: retry in ${retryAfter} s`
  })
  t.match(app.rateLimits.stats(), { allowed: 5, limited: 1, redisFailures: 0 })
  t.equal(app.rateLimits.backend, 'redis')
})

t.test('legacy x-ratelimit-* headers only when RATE_LIMIT_LEGACY_HEADERS is set', async (t) => {
  const { app } = await buildLimitedApp(t, { REDIS_URL, RATE_LIMIT_MAX: '3', RATE_LIMIT_LEGACY_HEADERS: 'true' })
  const res = await app.inject('/limited')
  t.match(res.headers, { 'x-ratelimit-limit': '3', 'x-ratelimit-remaining': '2', 'x-ratelimit-reset': '60', ratelimit: '"default";r=2;t=60' })
})

t.test('the window resets after timeWindow', async (t) => {
  const { app } = await buildLimitedApp(t, { REDIS_URL })
  t.same(await statuses(app, '/short', 3), [200, 200, 429])
  const refused = await app.inject({ url: '/short', remoteAddress: '203.0.113.10' })
  t.equal(refused.headers['retry-after'], '1', 'under a second left, rounded up')
  t.equal(refused.headers['ratelimit-policy'], '"route";q=2;w=1')
  await sleep(550)
  t.same(await statuses(app, '/short', 3), [200, 200, 429], 'a whole new window')
})

t.test('sliding route (GCRA): one request back per window / max, no double burst', async (t) => {
  const { app } = await buildLimitedApp(t, { REDIS_URL })
  // max 2 per 4 s: a slot comes back 2 s after the first request, the second 2 s later.
  const started = Date.now()
  t.same(await statuses(app, '/sliding', 3), [200, 200, 429])
  const refused = await app.inject({ url: '/sliding', remoteAddress: '203.0.113.10' })
  t.equal(refused.headers['retry-after'], '2', 'GCRA: back after one interval, not the whole window')
  t.equal(refused.headers['ratelimit-policy'], '"route";q=2;w=4')
  await sleep(Math.max(0, 2200 - (Date.now() - started)))
  t.same(await statuses(app, '/sliding', 2), [200, 429], 'half a window later: one slot back, not the whole quota')
  t.ok(Date.now() - started < 4000, 'checked within the window (on a very slow machine this test proves less)')
  t.ok(await redis.cli('KEYS', 'rl:*GET/sliding*:g'), 'counted with the sliding (GCRA) counter')
})

for (const algorithm of ['fixed', 'sliding']) {
  t.test(`${algorithm}: two app instances on one Redis share one limit exactly`, async (t) => {
    const env = { REDIS_URL, RATE_LIMIT_MAX: '10', RATE_LIMIT_WINDOW: '10s', RATE_LIMIT_ALGORITHM: algorithm }
    const [a, b] = [(await buildLimitedApp(t, env)).app, (await buildLimitedApp(t, env)).app]
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? a : b).inject({ url: '/limited', remoteAddress: '198.51.100.7' })))
    const codes = results.map((r) => r.statusCode)
    t.equal(codes.filter((c) => c === 200).length, 10, 'exactly max allowed across both')
    t.equal(codes.filter((c) => c === 429).length, 20)
    t.equal(a.rateLimits.stats().allowed + b.rateLimits.stats().allowed, 10)
  })
}

t.test('a spoofed X-Forwarded-For from a peer that is not a trusted proxy does not bypass the limit', async (t) => {
  const { app } = await buildLimitedApp(t, { REDIS_URL, RATE_LIMIT_MAX: '3' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const codes = []
  for (let i = 0; i < 6; i++) codes.push((await fetch(`${base}/limited`, { headers: { 'x-forwarded-for': `192.0.2.${i + 1}` } })).status)
  t.same(codes, [200, 200, 200, 429, 429, 429], 'counted against the socket address, whatever the header says')

  const injected = []
  for (let i = 0; i < 4; i++) injected.push((await app.inject({ url: '/limited', remoteAddress: '203.0.113.50', headers: { 'x-forwarded-for': `192.0.2.${i}` } })).statusCode)
  t.same(injected, [200, 200, 200, 429])
})

t.test("a trusted proxy's X-Forwarded-For names the client; an untrusted peer's does not", async (t) => {
  const { app } = await buildLimitedApp(t, { REDIS_URL, RATE_LIMIT_MAX: '2', TRUST_PROXY: '10.0.0.0/24,127.0.0.1' })
  const viaProxy = (client: string): Promise<number> =>
    app.inject({ url: '/limited', remoteAddress: '10.0.0.5', headers: { 'x-forwarded-for': client } }).then((r) => r.statusCode)
  t.same([await viaProxy('198.51.100.1'), await viaProxy('198.51.100.1'), await viaProxy('198.51.100.1')], [200, 200, 429])
  t.equal(await viaProxy('198.51.100.2'), 200, 'another client behind the same proxy has its own quota')
  // A client cannot prepend a fake hop: the right-most untrusted address is the client.
  t.equal(await viaProxy('6.6.6.6, 198.51.100.1'), 429)

  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const direct = []
  for (let i = 0; i < 3; i++) direct.push((await fetch(`${base}/limited`, { headers: { 'x-forwarded-for': '198.51.100.9' } })).status)
  t.same(direct, [200, 200, 429], 'through HTTP from the trusted 127.0.0.1')
  t.equal((await fetch(`${base}/limited`, { headers: { 'x-forwarded-for': '198.51.100.10' } })).status, 200)

  const spoofed = []
  for (let i = 0; i < 3; i++) spoofed.push((await app.inject({ url: '/limited', remoteAddress: '203.0.113.77', headers: { 'x-forwarded-for': `192.0.2.${i}` } })).statusCode)
  t.same(spoofed, [200, 200, 429], 'an untrusted peer is its own client')
})

t.test('IPv6 clients are grouped by /64', async (t) => {
  const { app } = await buildLimitedApp(t, { REDIS_URL, RATE_LIMIT_MAX: '1' })
  t.same(await statuses(app, '/limited', 1, '2001:db8:1:2::1'), [200])
  t.same(await statuses(app, '/limited', 1, '2001:db8:1:2:aaaa:bbbb:cccc:dddd'), [429], 'same /64, same client')
  t.same(await statuses(app, '/limited', 1, '2001:db8:1:3::1'), [200], 'the next /64 is another client')
  t.same(await statuses(app, '/limited', 1, '::ffff:203.0.113.200'), [200])
  t.same(await statuses(app, '/limited', 1, '203.0.113.200'), [429], 'an IPv4-mapped address is the IPv4 client')
})

t.test('the allow list: addresses and CIDRs, IPv4 and IPv6, are never limited', async (t) => {
  const { app } = await buildLimitedApp(t, { REDIS_URL, RATE_LIMIT_MAX: '1', RATE_LIMIT_ALLOW_LIST: '10.1.0.0/16, 192.0.2.7, 2001:db8:aa::/48' })
  t.same(await statuses(app, '/limited', 4, '10.1.200.3'), [200, 200, 200, 200])
  t.same(await statuses(app, '/limited', 3, '::ffff:10.1.0.9'), [200, 200, 200])
  t.same(await statuses(app, '/limited', 3, '192.0.2.7'), [200, 200, 200])
  t.same(await statuses(app, '/limited', 3, '2001:db8:aa:1::5'), [200, 200, 200])
  t.same(await statuses(app, '/sliding', 4, '10.1.0.1'), [200, 200, 200, 200], 'on routes with their own limit too')
  const allowed = await app.inject({ url: '/limited', remoteAddress: '10.1.0.1' })
  t.equal(allowed.headers.ratelimit, undefined, 'no RateLimit header: no limit applies')
  t.same(await statuses(app, '/limited', 2, '10.2.0.1'), [200, 429], 'outside the list')
  t.same(await statuses(app, '/limited', 2, '2001:db8:ab::1'), [200, 429])

  // Without Redis: a boot that fails after connecting would leave the client open (buildServer returns no app to close).
  await t.rejects(buildServer({ env: { NODE_ENV: 'test', RATE_LIMIT_ALLOW_LIST: '10.0.0.0/33' }, logger: false }),
    { code: 'FRS_RATE_LIMIT_ALLOW_LIST_INVALID', message: /RATE_LIMIT_ALLOW_LIST must list IP addresses or CIDRs.*10\.0\.0\.0\/33/ })
})

t.test('NOSCRIPT after SCRIPT FLUSH through HTTP: counted in Redis, nothing lost', async (t) => {
  const { app } = await buildLimitedApp(t, { REDIS_URL, RATE_LIMIT_MAX: '5' })
  await statuses(app, '/limited', 2)
  await statuses(app, '/wide', 2)
  t.equal(await redis.cli('SCRIPT', 'FLUSH'), 'OK')
  const fixed = await app.inject({ url: '/limited', remoteAddress: '203.0.113.10' })
  const sliding = await app.inject({ url: '/wide', remoteAddress: '203.0.113.10' })
  t.equal(fixed.statusCode, 200)
  t.match(fixed.headers.ratelimit, /^"default";r=2;/, 'the third request of five')
  t.match(sliding.headers.ratelimit, /^"wide";r=7;/)
  t.equal(sliding.headers['ratelimit-policy'], '"wide";q=10;w=10')
  t.equal(app.rateLimits.stats().redisFailures, 0)
})

t.test('a ban after repeated refusals outlasts the window and is shared through Redis', async (t) => {
  const env = { REDIS_URL, RATE_LIMIT_BAN_AFTER: '2', RATE_LIMIT_BAN_DURATION: '3s' }
  const { app } = await buildLimitedApp(t, env)
  t.same(await statuses(app, '/short', 4), [200, 200, 429, 429])
  const banned = await app.inject({ url: '/short', remoteAddress: '203.0.113.10' })
  t.equal(banned.statusCode, 429)
  t.equal(banned.headers['retry-after'], '3', 'told to wait for the ban')
  t.equal(banned.json().message, 'Rate limit exceeded: retry in 3 s')
  await sleep(600) // the 500 ms window is over; the ban is not
  const other = (await buildLimitedApp(t, env)).app
  t.same(await statuses(other, '/short', 1), [429], 'another instance refuses the banned client')
  t.same(await statuses(other, '/short', 1, '203.0.113.11'), [200], 'other clients are not affected')
  t.ok(app.rateLimits.stats().banned >= 1 && other.rateLimits.stats().banned === 1)
})

t.test('the auth preset: 5 a minute per IP and route, sliding, then a 15-minute ban', async (t) => {
  const { app } = await buildLimitedApp(t, { REDIS_URL, RATE_LIMIT_MAX: '1000' })
  const login = (remoteAddress = '203.0.113.20'): Promise<LightMyRequestResponse> => app.inject({ method: 'POST', url: '/login', remoteAddress })
  const first = await login()
  t.equal(first.headers['ratelimit-policy'], '"auth";q=5;w=60')
  t.equal(first.headers.ratelimit, '"auth";r=4;t=12', 'sliding: one attempt comes back every 12 s')
  const codes = [first.statusCode]
  for (let i = 0; i < 5; i++) codes.push((await login()).statusCode)
  t.same(codes, [200, 200, 200, 200, 200, 429])
  t.equal((await app.inject({ method: 'POST', url: '/password-reset', remoteAddress: '203.0.113.20' })).statusCode, 200, 'each route counts on its own')
  t.equal((await login('203.0.113.21')).statusCode, 200, 'each IP counts on its own')
  let last
  for (let i = 0; i < 4; i++) last = await login()
  t.equal(last?.statusCode, 429)
  t.equal(last?.headers['retry-after'], '900', 'the fifth refusal starts a 15-minute ban')
  t.ok(await redis.cli('EXISTS', 'rl:{POST/login|ip:203.0.113.20}:b'), 'the ban lives in Redis')
})

t.test('a custom key function from the suite options', async (t) => {
  const { app } = await buildLimitedApp(t, { REDIS_URL, RATE_LIMIT_MAX: '1' }, {
    keyGenerator: (request) => `tenant:${String(request.headers['x-tenant'] ?? 'none')}`
  })
  const as = (tenant: string, remoteAddress: string): Promise<number> =>
    app.inject({ url: '/limited', remoteAddress, headers: { 'x-tenant': tenant } }).then((r) => r.statusCode)
  t.same([await as('a', '203.0.113.1'), await as('a', '203.0.113.2'), await as('b', '203.0.113.1')], [200, 429, 200])
})

t.test('health routes are exempt from the global limit; rateLimit: false routes are never limited', async (t) => {
  const { app } = await buildLimitedApp(t, { REDIS_URL, RATE_LIMIT_MAX: '1' })
  t.same(await statuses(app, '/health/live', 5), [200, 200, 200, 200, 200])
  t.same(await statuses(app, '/unlimited', 5), [200, 200, 200, 200, 200])
  t.equal((await app.inject('/health/live')).headers.ratelimit, undefined)
})

t.test('RATE_LIMIT_GLOBAL=false limits only routes with config.rateLimit', async (t) => {
  const { app } = await buildLimitedApp(t, { REDIS_URL, RATE_LIMIT_MAX: '1', RATE_LIMIT_GLOBAL: 'false' })
  t.same(await statuses(app, '/limited', 3), [200, 200, 200])
  t.equal((await app.inject('/limited')).headers.ratelimit, undefined)
  t.same(await statuses(app, '/short', 3), [200, 200, 429])
})

t.test('the start-up log names the Redis-down mode in one line', async (t) => {
  const { app, rawLogs } = await buildLimitedApp(t, { REDIS_URL, RATE_LIMIT_WHEN_REDIS_DOWN: 'closed' })
  t.equal(app.rateLimits.mode, 'closed')
  const lines = rawLogs().split('\n').filter((line) => line.includes('rate limit:'))
  t.equal(lines.length, 1)
  t.match(JSON.parse(lines[0]!), { plugin: 'rate-limit', msg: /while Redis is down, requests are refused with 503 \(fail closed\)/, rateLimit: { whenRedisDown: 'closed', backend: 'redis' } })
})

t.test('no Redis configured: the in-process limiter, logged', async (t) => {
  const { app, rawLogs } = await buildLimitedApp(t, { RATE_LIMIT_MAX: '2' })
  t.equal(app.rateLimits.backend, 'memory')
  t.same(await statuses(app, '/limited', 3), [200, 200, 429])
  t.same(await statuses(app, '/sliding', 3), [200, 200, 429])
  t.match(rawLogs(), /rate limit: no Redis configured, limits are counted in this process only/)
  t.match(app.rateLimits.stats(), { allowed: 4, limited: 2 })
})
