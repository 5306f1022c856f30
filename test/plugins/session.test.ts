// The session plugin over real Redis: secure defaults, fixation, rotation, no keys for anonymous
// traffic, concurrent writes through HTTP, Redis killed or frozen, schema, timeouts, logging.
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import Type from 'typebox'
import { useRedis, type RedisServer } from '../helpers/index.js'
import { buildTestApp } from '../helper.js'
import { detectHashFieldExpiry } from '../../lib/redis/index.js'
import { sample } from '../monitoring/prom.js'
import redisSuite, { type RedisSuiteOptions } from '../../index.js'

const SECRET_A = 'a'.repeat(32)
const SECRET_B = 'b'.repeat(32)
const quiet = { RATE_LIMIT_GLOBAL: 'false', METRICS_ENABLED: 'false' }
const env = (server: RedisServer, extra: Record<string, string> = {}) => ({ REDIS_URL: server.url, SESSION_SECRET: SECRET_A, ...quiet, ...extra })

function sid (response: { cookies: Array<{ name: string, value: string }> }): string | undefined {
  return response.cookies.find((c) => c.name === 'sid')?.value
}

async function login (app: FastifyInstance, userId: string, cookie?: string): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/demo/login', payload: { userId }, ...(cookie === undefined ? {} : { cookies: { sid: cookie } }) })
  if (res.statusCode !== 200) throw new Error(`login answered ${res.statusCode}: ${res.body}`)
  const value = sid(res)
  if (value === undefined) throw new Error('no session cookie')
  return value
}

/** A bare app with the suite and test routes, for what the demo routes do not exercise. */
async function customApp (t: Test, server: RedisServer, options: RedisSuiteOptions = {}, extraEnv: Record<string, string> = {}): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(redisSuite, { env: { NODE_ENV: 'test', ...env(server, extraEnv) }, processEnv: false, ...options })
  app.post<{ Params: { field: string } }>('/set/:field', { config: { session: true } }, async (request) => {
    await new Promise((resolve) => setTimeout(resolve, 50)) // both requests load before either saves
    ;(request.session as unknown as Record<string, unknown>)[request.params.field] = 'yes'
    return { ok: true }
  })
  app.get('/read', { config: { session: true } }, async (request) => ({ ...request.session, cookie: undefined }))
  app.get('/plain', async () => ({ ok: true }))
  app.post<{ Body: { userId: string } }>('/sign-in', { config: { session: true } }, async (request) => {
    await request.session.regenerate()
    request.session.userId = request.body.userId
    return { ok: true }
  })
  app.post('/fixed', { config: { session: true } }, async (request) => {
    request.session.cookie.originalMaxAge = null
    request.session.cookie.expires = new Date(Date.now() + 60_000)
    request.session.userId = 'ada'
    return { ok: true }
  })
  app.post('/slow-sign-in', { config: { session: true } }, async (request) => {
    await new Promise((resolve) => setTimeout(resolve, 600)) // longer than the test's REDIS_COMMAND_TIMEOUT
    await request.session.regenerate()
    request.session.userId = 'slow'
    return { ok: true }
  })
  app.get('/misuse', async (request) => ({ user: request.session.userId }))
  await app.ready()
  return app
}

t.test('cookie defaults: httpOnly, SameSite=Lax, Max-Age from SESSION_TTL, not Secure outside production', async (t) => {
  const server = await useRedis(t)
  const { app } = await buildTestApp(t, env(server))
  const res = await app.inject({ method: 'POST', url: '/demo/login', payload: { userId: 'ada' } })
  t.equal(res.statusCode, 200)
  const cookie = res.cookies.find((c) => c.name === 'sid')
  t.match(cookie, { httpOnly: true, sameSite: 'Lax', path: '/', expires: Date })
  const lifetime = (cookie?.expires?.getTime() ?? 0) - Date.now()
  t.ok(lifetime > 7 * 86_400_000 - 60_000 && lifetime <= 7 * 86_400_000, 'expires after SESSION_TTL')
  t.notOk(cookie?.secure)
})

t.test('fixation: login gives a new session id and the old one stops working', async (t) => {
  const server = await useRedis(t)
  const { app } = await buildTestApp(t, env(server))
  const planted = await login(app, 'mallory')
  const fresh = await login(app, 'ada', planted)
  t.not(fresh, planted)
  t.equal((await app.inject({ url: '/demo/me', cookies: { sid: planted } })).statusCode, 401, 'the planted cookie is worth nothing')
  const me = await app.inject({ url: '/demo/me', cookies: { sid: fresh } })
  t.same(me.json(), { userId: 'ada' })
})

t.test('rotation: a cookie signed with the old secret still works after rotating; unknown secrets do not', async (t) => {
  const server = await useRedis(t)
  const { app: before } = await buildTestApp(t, env(server, { SESSION_SECRET: SECRET_A }))
  const cookie = await login(before, 'ada')
  const { app: rotated } = await buildTestApp(t, env(server, { SESSION_SECRET: `${SECRET_B},${SECRET_A}` }))
  const res = await rotated.inject({ url: '/demo/me', cookies: { sid: cookie } })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { userId: 'ada' })
  const resigned = sid(res)
  t.ok(resigned !== undefined && resigned !== cookie, 'the rolling cookie comes back signed with the new secret')
  const { app: dropped } = await buildTestApp(t, env(server, { SESSION_SECRET: SECRET_B }))
  t.equal((await dropped.inject({ url: '/demo/me', cookies: { sid: cookie } })).statusCode, 401, 'old secret removed: old cookie refused')
  t.equal((await dropped.inject({ url: '/demo/me', cookies: { sid: resigned ?? '' } })).statusCode, 200)
})

t.test('anonymous traffic: 1,000 requests create no session key and no cookie', async (t) => {
  const server = await useRedis(t)
  const { app } = await buildTestApp(t, env(server))
  let cookies = 0
  for (let i = 0; i < 1000; i++) {
    const res = await app.inject({ url: i % 2 === 0 ? '/demo/me' : '/' })
    if (res.headers['set-cookie'] !== undefined) cookies++
  }
  t.equal(cookies, 0)
  t.equal(await server.cli('DBSIZE'), '0', 'no key at all')
})

t.test('concurrent requests changing different fields of one session both keep their change', async (t) => {
  const server = await useRedis(t)
  const app = await customApp(t, server)
  const first = await app.inject({ method: 'POST', url: '/set/start' })
  const cookie = sid(first) ?? ''
  const [a, b] = await Promise.all([
    app.inject({ method: 'POST', url: '/set/a', cookies: { sid: cookie } }),
    app.inject({ method: 'POST', url: '/set/b', cookies: { sid: cookie } })
  ])
  t.equal(a.statusCode, 200)
  t.equal(b.statusCode, 200)
  t.match((await app.inject({ url: '/read', cookies: { sid: cookie } })).json(), { start: 'yes', a: 'yes', b: 'yes' })
})

t.test('an unchanged session is refreshed (a touch, with the cookie) only at the cadence, never rewritten', async (t) => {
  const server = await useRedis(t)
  // SESSION_IDLE_TIMEOUT 10 s: the refresh cadence is 1 s, far more than the five reads take on a loaded
  // machine (with 2 s, a 200 ms cadence, a loaded run saw the fifth read come due).
  const { app } = await buildTestApp(t, env(server, { SESSION_IDLE_TIMEOUT: '10s' }))
  const cookie = await login(app, 'ada')
  const before = app.sessions.stats()
  // Executed by Redis, by name (a script's own commands included), and sent by the client.
  const commands = async (): Promise<Record<string, number>> => {
    const stats = await server.cli('INFO', 'commandstats')
    return Object.fromEntries([...stats.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)].filter(([, name]) => name !== 'ping' && name !== 'info').map((m) => [m[1], Number(m[2])]))
  }
  const delta = (a: Record<string, number>, b: Record<string, number>): Record<string, number> => {
    const out: Record<string, number> = {}
    for (const [name, n] of Object.entries(b)) if (n !== (a[name] ?? 0)) out[name === 'eval' ? 'evalsha' : name] = (out[name === 'eval' ? 'evalsha' : name] ?? 0) + n - (a[name] ?? 0)
    return out
  }
  const client = app.redisConnections.main
  if (client === undefined) throw new Error('no Redis client')
  let sent = 0
  const original = client.sendCommand
  client.sendCommand = function (this: typeof client, command: { name: string }, ...rest: unknown[]) {
    if (command.name !== 'ping' && command.name !== 'info') sent++
    return (original as (...args: unknown[]) => unknown).call(this, command, ...rest)
  } as never
  t.teardown(() => { client.sendCommand = original })
  const executed = await commands()
  for (let i = 0; i < 5; i++) {
    const res = await app.inject({ url: '/demo/me', cookies: { sid: cookie } })
    t.equal(res.statusCode, 200)
    t.equal(res.headers['set-cookie'], undefined, 'not due: no Set-Cookie')
  }
  t.equal(sent, 5, 'one command sent per read')
  // The instance wrote the last-seen time at sign-in, so it knows these reads are not due: plain HGETALLs.
  t.same(delta(executed, await commands()), { hgetall: 5 }, 'one executed per read, no write')
  const notDue = app.sessions.stats()
  t.equal(notDue.touches - before.touches, 0)
  t.equal(notDue.saves - before.saves, 0)
  await new Promise((resolve) => setTimeout(resolve, 1_050))
  sent = 0
  const beforeDue = await commands()
  const due = await app.inject({ url: '/demo/me', cookies: { sid: cookie } })
  t.equal(due.statusCode, 200)
  t.equal(sid(due), cookie, 'due: the expiry moved and the cookie goes out again')
  t.equal(sent, 1, 'due: still one command sent (the refresh is in the same script call)')
  // Redis >= 7.4 / Valkey >= 9: the user index is a hash whose field gets the new expiry (HSET + HPEXPIREAT, no prune).
  const refreshed = await detectHashFieldExpiry(client)
    ? { evalsha: 1, hgetall: 1, hset: 2, hpexpireat: 1, pexpire: Number, zadd: 1 }
    : { evalsha: 1, hgetall: 1, hset: 1, pexpire: Number, zadd: 2 }
  t.match(delta(beforeDue, await commands()), refreshed, 'the session, the user index and the total index bucket refreshed')
  const after = app.sessions.stats()
  t.equal(after.touches - before.touches, 1, 'a touch')
  t.equal(after.saves - before.saves, 0, 'not a rewrite')
})

t.test('config.cache private on a session route: the same user hits, another user does not (no Set-Cookie when not due)', async (t) => {
  const server = await useRedis(t)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(redisSuite, { env: { NODE_ENV: 'test', ...env(server) } })
  app.post<{ Body: { userId: string } }>('/in', { config: { session: true } }, async (request) => {
    await request.session.regenerate()
    request.session.userId = request.body.userId
    return { ok: true }
  })
  let runs = 0
  app.get('/mine', { config: { session: true, cache: { ttl: '1m', private: true } } }, async (request) => {
    runs++
    return { userId: request.session.userId }
  })
  await app.ready()
  const signIn = async (userId: string): Promise<string> => sid(await app.inject({ method: 'POST', url: '/in', payload: { userId } })) ?? ''
  const ada = await signIn('ada')
  const bob = await signIn('bob')
  const seen: Array<[unknown, unknown, boolean]> = []
  for (const cookie of [ada, ada, bob, bob]) {
    const res = await app.inject({ url: '/mine', cookies: { sid: cookie } })
    seen.push([res.json().userId, res.headers['x-cache'], res.headers['set-cookie'] !== undefined])
  }
  t.same(seen, [['ada', 'MISS', false], ['ada', 'HIT', false], ['bob', 'MISS', false], ['bob', 'HIT', false]])
  t.equal(runs, 2, 'the handler ran once per user')
})

t.test('a handler slower than REDIS_COMMAND_TIMEOUT still saves: only time waiting on the store spends the budget', async (t) => {
  const server = await useRedis(t)
  const app = await customApp(t, server, {}, { REDIS_COMMAND_TIMEOUT: '300ms' })
  const first = await app.inject({ method: 'POST', url: '/sign-in', payload: { userId: 'ada' } })
  t.equal(first.statusCode, 200)
  // Loaded from the cookie (a store call), then 600 ms in the handler, then regenerate (destroy) and save.
  const slow = await app.inject({ method: 'POST', url: '/slow-sign-in', cookies: { sid: sid(first) ?? '' } })
  t.equal(slow.statusCode, 200, slow.body)
  const read = await app.inject({ url: '/read', cookies: { sid: sid(slow) ?? '' } })
  t.equal((read.json() as { userId?: string }).userId, 'slow', 'the slow sign-in was stored')
})

t.test('a sign-in costs one round trip without a session, and two after loading one', async (t) => {
  const server = await useRedis(t)
  const app = await customApp(t, server)
  const client = app.redisConnections.main
  if (client === undefined) throw new Error('no Redis client')
  // A round trip starts when a command goes out while none of ours is in flight; commands sent
  // together (pipelined on the connection) share it.
  let inFlight = 0
  let trips = 0
  const original = client.sendCommand
  client.sendCommand = function (this: typeof client, command: { name: string, promise: Promise<unknown> }, ...rest: unknown[]) {
    if (command.name !== 'ping' && command.name !== 'info') {
      if (inFlight === 0) trips++
      inFlight++
      command.promise.finally(() => { inFlight-- }).catch(() => {})
    }
    return (original as (...args: unknown[]) => unknown).call(this, command, ...rest)
  } as never
  t.teardown(() => { client.sendCommand = original })
  const fresh = await app.inject({ method: 'POST', url: '/sign-in', payload: { userId: 'ada' } })
  t.equal(fresh.statusCode, 200)
  t.equal(trips, 1, 'no cookie: the save only')
  trips = 0
  const again = await app.inject({ method: 'POST', url: '/sign-in', payload: { userId: 'ada' }, cookies: { sid: sid(fresh) ?? '' } })
  t.equal(again.statusCode, 200)
  t.equal(trips, 3, 'with a session: its load, the destroy of the old id, the save of the new one')
})

t.test('cookie flags come from the current config; a shorter SESSION_TTL caps existing sessions', async (t) => {
  const server = await useRedis(t)
  const app = await customApp(t, server)
  const first = await app.inject({ method: 'POST', url: '/set/start' })
  t.match(first.headers['set-cookie'], /SameSite=Lax/)
  const cookie = sid(first) ?? ''
  const tightened = await customApp(t, server, {}, { SESSION_COOKIE_SAMESITE: 'strict', SESSION_COOKIE_DOMAIN: 'example.test', SESSION_TTL: '1h' })
  const res = await tightened.inject({ method: 'POST', url: '/set/more', cookies: { sid: cookie } })
  t.equal(res.statusCode, 200)
  const set = res.cookies.find((c) => c.name === 'sid')
  t.match(set, { sameSite: 'Strict', domain: 'example.test', httpOnly: true, path: '/' }, 'an existing session gets the tightened flags')
  const lifetime = (set?.expires?.getTime() ?? 0) - Date.now()
  t.ok(lifetime > 0 && lifetime <= 3_600_000, `cookie lifetime ${lifetime} ms ≤ the new SESSION_TTL`)
  const [key] = (await server.cli('KEYS', 'sess:{*')).split('\n')
  const pttl = Number(await server.cli('PTTL', key ?? ''))
  t.ok(pttl > 0 && pttl <= 3_600_000, `stored TTL ${pttl} ms ≤ the new SESSION_TTL`)
  t.match((await tightened.inject({ url: '/read', cookies: { sid: cookie } })).json(), { start: 'yes', more: 'yes' })
})

t.test('a session with a fixed expiry (no max age) keeps it across requests instead of becoming rolling', async (t) => {
  const server = await useRedis(t)
  const app = await customApp(t, server)
  const first = await app.inject({ method: 'POST', url: '/fixed' })
  const cookie = sid(first)
  t.ok(cookie, 'signed in')
  const changed = await app.inject({ method: 'POST', url: '/set/theme', cookies: { sid: cookie ?? '' } })
  t.equal(changed.statusCode, 200)
  const expires = changed.cookies.find((c) => c.name === 'sid')?.expires?.getTime()
  t.ok(expires !== undefined && expires - Date.now() <= 60_000, 'the cookie still ends within the fixed 60 s, not after SESSION_TTL')
  const ttl = Number(await server.cli('PTTL', (await server.cli('--scan', '--pattern', 'sess:{*')).trim()))
  t.ok(ttl > 0 && ttl <= 60_000, `the stored session ends with it too (PTTL ${ttl})`)
})

t.test('SESSION_MAX_PER_USER: signing in past the cap revokes the oldest sessions', async (t) => {
  const server = await useRedis(t)
  const { app } = await buildTestApp(t, env(server, { SESSION_MAX_PER_USER: '3' }))
  const cookies: string[] = []
  for (let i = 0; i < 5; i++) cookies.push(await login(app, 'ada'))
  t.equal(await app.sessions.count('ada'), 3)
  const statuses = await Promise.all(cookies.map(async (cookie) => (await app.inject({ url: '/demo/me', cookies: { sid: cookie } })).statusCode))
  t.same(statuses, [401, 401, 200, 200, 200], 'the two oldest are signed out')
})

t.test('sign-in during an outage: 503, one warning for the outage, no error or stack per request, counted', async (t) => {
  const server = await useRedis(t)
  const { app, logs, rawLogs } = await buildTestApp(t, env(server, { REDIS_WAIT_ON_BOOT: 'true', METRICS_ENABLED: 'true' }))
  const cookie = await login(app, 'ada')
  await server.kill()
  for (let i = 0; i < 6; i++) {
    const res = await app.inject({ method: 'POST', url: '/demo/login', payload: { userId: 'bob' }, ...(i % 2 === 0 ? { cookies: { sid: cookie } } : {}) })
    t.equal(res.statusCode, 503)
    t.equal(res.json().code, 'FRS_SESSION_UNAVAILABLE')
  }
  const lines = logs()
  t.equal(lines.filter((l) => l.level >= 50).length, 0, 'no error-level line')
  t.notMatch(rawLogs(), /FRS_SESSION_UNAVAILABLE|SessionUnavailableError/, 'the 503s are not logged as errors with a stack')
  const warnings = lines.filter((l) => /session store unavailable/.test(l.msg ?? ''))
  t.equal(warnings.length, 1, 'one warning')
  t.notMatch(JSON.stringify(warnings), /ECONNREFUSED|Connection is closed|Stream isn't writeable/, 'no driver text')
  t.ok(app.sessions.stats().unavailable >= 3, 'counted in the store')
  const scraped = sample((await app.inject('/metrics')).body, 'session_events_total', { event: 'unavailable' })
  t.ok(scraped !== undefined && scraped >= 3, `counted in /metrics: session_events_total{event="unavailable"} ${scraped}`)
})

t.test('a store lost while the handler runs (regenerate fails): 503 with one warning, never an error with a stack', async (t) => {
  const server = await useRedis(t)
  const lines: string[] = []
  const app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { lines.push(line) } } } })
  t.teardown(() => app.close())
  await app.register(redisSuite, { env: { NODE_ENV: 'test', ...env(server, { REDIS_FAILOVER_WAIT: '0' }) }, processEnv: false })
  let entered = (): void => {}
  let release = (): void => {}
  const inHandler = new Promise<void>((resolve) => { entered = resolve })
  const gate = new Promise<void>((resolve) => { release = resolve })
  app.post('/sign-in', { config: { session: true } }, async (request) => {
    request.session.userId = 'ada'
    return { ok: true }
  })
  app.post('/gated-sign-in', { config: { session: true } }, async (request) => {
    entered()
    await gate // the session was loaded; Redis goes away before regenerate() destroys the old one
    await request.session.regenerate()
    request.session.userId = 'bob'
    return { ok: true }
  })
  await app.ready()
  const cookie = sid(await app.inject({ method: 'POST', url: '/sign-in' })) ?? ''
  t.ok(cookie, 'signed in')
  const pending = app.inject({ method: 'POST', url: '/gated-sign-in', cookies: { sid: cookie } })
  await inHandler
  await server.kill()
  release()
  const res = await pending
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'FRS_SESSION_UNAVAILABLE')
  t.ok(res.headers['retry-after'], 'Retry-After')
  const logged = lines.map((line) => JSON.parse(line) as { level: number, msg?: string })
  t.same(logged.filter((line) => line.level >= 50).map((line) => line.msg), [], 'no error-level line')
  t.notMatch(lines.join('\n'), /"stack"/, 'no stack logged')
  t.equal(logged.filter((line) => /session store unavailable/.test(line.msg ?? '')).length, 1, 'one warning')
})

t.test('routes without config.session never touch the store; reading request.session there is a clear error', async (t) => {
  const server = await useRedis(t)
  const app = await customApp(t, server)
  const cookie = sid(await app.inject({ method: 'POST', url: '/set/x' })) ?? ''
  const loads = app.sessions.stats().loads
  t.equal((await app.inject({ url: '/plain', cookies: { sid: cookie } })).statusCode, 200)
  t.equal(app.sessions.stats().loads, loads, 'no load')
  const misuse = await app.inject({ url: '/misuse', cookies: { sid: cookie } })
  t.equal(misuse.statusCode, 500)
  t.match(misuse.json(), { code: 'FRS_SESSION_NOT_ENABLED', message: /config: \{ session: true \}/ })
})

t.test('Redis killed: session routes answer 503 with Retry-After and a plain message; others are unaffected', async (t) => {
  const server = await useRedis(t)
  // The fail-fast rule once an outage is older than REDIS_FAILOVER_WAIT; the wait itself: test/plugins/redis-failover.test.ts.
  const { app, rawLogs } = await buildTestApp(t, env(server, { REDIS_WAIT_ON_BOOT: 'true', REDIS_FAILOVER_WAIT: '0' }), 'debug')
  const cookie = await login(app, 'ada')
  await server.kill()
  for (const request of [
    { url: '/demo/me', cookies: { sid: cookie } },
    { method: 'POST' as const, url: '/demo/login', payload: { userId: 'bob' } },
    { method: 'POST' as const, url: '/demo/logout', cookies: { sid: cookie } }
  ]) {
    const started = Date.now()
    const res = await app.inject(request)
    const elapsed = Date.now() - started
    t.equal(res.statusCode, 503, `${request.url}: ${res.body}`)
    t.equal(res.headers['retry-after'], '2')
    t.same(res.json(), { statusCode: 503, code: 'FRS_SESSION_UNAVAILABLE', error: 'Service Unavailable', message: 'Sessions are temporarily unavailable. Please try again shortly.' })
    t.ok(elapsed < 1_000 + 1_000, `answered in ${elapsed} ms (command timeout 1 s)`)
  }
  t.equal((await app.inject({ url: '/health/live', cookies: { sid: cookie } })).statusCode, 200)
  t.equal((await app.inject({ url: '/', cookies: { sid: cookie } })).statusCode, 200, 'non-session route with a session cookie')
  t.notOk(rawLogs().includes(cookie) || rawLogs().includes(cookie.split('.')[0] ?? '-'), 'no session id in the logs')
  await server.restart()
  let status = 0
  for (let i = 0; i < 50 && status !== 200; i++) {
    status = (await app.inject({ method: 'POST', url: '/demo/login', payload: { userId: 'ada' } })).statusCode
    if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.equal(status, 200, 'sign-in works again once Redis is back')
})

t.test('Redis frozen: a session route answers 503 within the command timeout', async (t) => {
  const server = await useRedis(t)
  const { app } = await buildTestApp(t, env(server))
  const cookie = await login(app, 'ada')
  server.freeze()
  let frozen = true
  t.teardown(() => { if (frozen) server.thaw() })
  const started = Date.now()
  const res = await app.inject({ url: '/demo/me', cookies: { sid: cookie } })
  const elapsed = Date.now() - started
  t.equal(res.statusCode, 503)
  t.ok(elapsed < 1_000 + 1_000, `answered in ${elapsed} ms`)
  t.equal((await app.inject({ url: '/', cookies: { sid: cookie } })).statusCode, 200)
  server.thaw()
  frozen = false
})

t.test('a stored payload failing the schema starts a fresh session instead of a 500', async (t) => {
  const server = await useRedis(t)
  const app = await customApp(t, server, { session: { schema: Type.Object({ x: Type.Optional(Type.String()), start: Type.Optional(Type.String()) }) } })
  const cookie = sid(await app.inject({ method: 'POST', url: '/set/x' })) ?? ''
  const [key] = (await server.cli('KEYS', 'sess:{*')).split('\n')
  await server.cli('HSET', key ?? '', 'd:x', '42')
  const res = await app.inject({ url: '/read', cookies: { sid: cookie } })
  t.equal(res.statusCode, 200)
  t.notMatch(res.json(), { x: String })
  t.equal(app.sessions.stats().invalid, 1)
})

t.test('idle timeout and absolute lifetime end the session', async (t) => {
  const server = await useRedis(t)
  const { app } = await buildTestApp(t, env(server, { SESSION_IDLE_TIMEOUT: '600ms', SESSION_ABSOLUTE_TIMEOUT: '1500ms' }))
  const idle = await login(app, 'ada')
  await new Promise((resolve) => setTimeout(resolve, 800))
  t.equal((await app.inject({ url: '/demo/me', cookies: { sid: idle } })).statusCode, 401, 'idle')
  const active = await login(app, 'ada')
  const statuses: number[] = []
  for (let i = 0; i < 8; i++) {
    await new Promise((resolve) => setTimeout(resolve, 250))
    statuses.push((await app.inject({ url: '/demo/me', cookies: { sid: active } })).statusCode)
  }
  t.equal(statuses[0], 200, 'kept alive by use')
  t.equal(statuses.at(-1), 401, `absolute lifetime reached (${statuses.join(',')})`)
})

t.test('Secure cookies over plain HTTP: a warning instead of a silently lost session', async (t) => {
  const server = await useRedis(t)
  const { app, logs } = await buildTestApp(t, env(server, { SESSION_COOKIE_SECURE: 'true' }))
  const res = await app.inject({ method: 'POST', url: '/demo/login', payload: { userId: 'ada' } })
  t.equal(sid(res), undefined, 'no cookie over HTTP')
  t.ok(logs().some((l) => l.level === 40 && /Secure but the request came over plain HTTP/.test(l.msg ?? '')))
})

t.test('sign-in over plain HTTP in production fails loudly: one error naming TRUST_PROXY and HTTPS, a response that says the session was not set (issue 28 item 4)', async (t) => {
  const server = await useRedis(t)
  const { app, logs } = await buildTestApp(t, env(server, { NODE_ENV: 'production' }))
  for (let i = 0; i < 3; i++) {
    const res = await app.inject({ method: 'POST', url: '/demo/login', payload: { userId: 'ada' } })
    t.equal(res.statusCode, 500, 'not the handler\'s 200')
    t.same(res.json(), { statusCode: 500, code: 'FRS_SESSION_NOT_SET', error: 'Internal Server Error', message: 'The session could not be set: session cookies are Secure and this request did not come over HTTPS.' })
    t.equal(sid(res), undefined, 'no cookie')
  }
  const errors = logs().filter((l) => l.level === 50 && /session was not set/.test(l.msg ?? ''))
  t.equal(errors.length, 1, 'one error line per process, not one per request')
  t.match(errors[0]?.msg, /TRUST_PROXY/)
  t.match(errors[0]?.msg, /HTTPS/)
  t.notMatch(errors[0]?.msg, /SESSION_COOKIE_SECURE=false/, 'never the fix production refuses')
  t.equal(await app.sessions.countAll(), 0, 'nothing stored')
  // Behind the proxy listed in TRUST_PROXY, the same sign-in works.
  const proxied = await buildTestApp(t, env(server, { NODE_ENV: 'production', TRUST_PROXY: '10.0.0.1' }))
  const ok = await proxied.app.inject({ method: 'POST', url: '/demo/login', payload: { userId: 'ada' }, remoteAddress: '10.0.0.1', headers: { 'x-forwarded-proto': 'https' } })
  t.equal(ok.statusCode, 200)
  t.ok(sid(ok), 'cookie set over HTTPS')
})

t.test('demo: bad input is a 400 with a message; listing and revoking', async (t) => {
  const server = await useRedis(t)
  const { app } = await buildTestApp(t, env(server))
  const bad = await app.inject({ method: 'POST', url: '/demo/login', payload: { userId: '' } })
  t.equal(bad.statusCode, 400)
  t.match(bad.json(), { message: /userId/ })
  t.equal((await app.inject({ url: '/demo/sessions' })).statusCode, 401)
  const one = await login(app, 'ada')
  const two = await login(app, 'ada')
  const list = (await app.inject({ url: '/demo/sessions', cookies: { sid: one } })).json() as { sessions: Array<{ id: string, current: boolean }> }
  t.equal(list.sessions.length, 2)
  const other = list.sessions.find((s) => !s.current)
  t.equal((await app.inject({ method: 'DELETE', url: '/demo/sessions/nope', cookies: { sid: one } })).statusCode, 404)
  t.equal((await app.inject({ method: 'DELETE', url: `/demo/sessions/${other?.id ?? ''}`, cookies: { sid: one } })).statusCode, 200)
  t.equal((await app.inject({ url: '/demo/me', cookies: { sid: two } })).statusCode, 401, 'revoked')
  const logout = await app.inject({ method: 'POST', url: '/demo/logout', cookies: { sid: one } })
  t.match(logout.headers['set-cookie'], /sid=;/, 'cookie cleared')
  t.equal((await app.inject({ url: '/demo/me', cookies: { sid: one } })).statusCode, 401)
  t.equal(await app.sessions.countAll(), 0)
})

t.test('in-memory mode (no Redis): the same flow works', async (t) => {
  const { app, logs } = await buildTestApp(t, { ...quiet })
  const cookie = await login(app, 'ada')
  t.same((await app.inject({ url: '/demo/me', cookies: { sid: cookie } })).json(), { userId: 'ada' })
  t.equal(await app.sessions.count('ada'), 1)
  await app.inject({ method: 'POST', url: '/demo/logout', cookies: { sid: cookie } })
  t.equal((await app.inject({ url: '/demo/me', cookies: { sid: cookie } })).statusCode, 401)
  t.ok(logs().some((l) => /SESSION_SECRET is not set/.test(l.msg ?? '')), 'ephemeral secret warned')
})

t.test('SESSION_ENCRYPTION_KEYS: payloads encrypted in Redis; an altered or undecompressable one is no session, counted in /metrics', async (t) => {
  const server = await useRedis(t)
  const keys = { SESSION_ENCRYPTION_KEYS: `k1:${'7'.repeat(64)}`, SESSION_COMPRESSION: 'zlib', METRICS_ENABLED: 'true' }
  const app = await customApp(t, server, {}, keys)
  const res = await app.inject({ method: 'POST', url: '/sign-in', payload: { userId: 'ada-lovelace' } })
  const cookie = sid(res)
  if (cookie === undefined) throw new Error('no session cookie')
  const key = (await server.cli('--scan', '--pattern', 'sess:{*')).trim()
  const field = await server.cli('HGET', key, 'd:userId')
  t.match(field, /^ek1:/, 'the payload field is sealed with k1')
  t.notMatch(field, /ada-lovelace/)
  t.match((await app.inject({ url: '/read', cookies: { sid: cookie } })).json(), { userId: 'ada-lovelace' })
  await server.cli('HSET', key, 'd:userId', field.slice(0, 10) + (field[10] === 'A' ? 'B' : 'A') + field.slice(11))
  t.notMatch((await app.inject({ url: '/read', cookies: { sid: cookie } })).json(), { userId: 'ada-lovelace' }, 'read as no session')
  t.equal(app.sessions.stats().decryptionFailures, 1)
  // A compressed field that does not decompress (a brotli marker on text that is not brotli): read as no session too.
  const again = sid(await app.inject({ method: 'POST', url: '/sign-in', payload: { userId: 'ada-lovelace' } }))
  if (again === undefined) throw new Error('no session cookie')
  const second = (await server.cli('--scan', '--pattern', 'sess:{*')).split('\n').map((k) => k.trim()).find((k) => k !== '' && k !== key)
  if (second === undefined) throw new Error('no second session key')
  await server.cli('HSET', second, 'd:userId', 'zb\nbm90IGJyb3RsaQ==')
  t.notMatch((await app.inject({ url: '/read', cookies: { sid: again } })).json(), { userId: 'ada-lovelace' }, 'a corrupt compressed field: no session')
  const metrics = (await app.inject('/metrics')).body
  t.equal(sample(metrics, 'session_decryption_failures_total'), 1, '/metrics: what the SessionDecryptionFailures alert reads')
  t.equal(sample(metrics, 'session_decompression_failures_total'), 1, '/metrics: what the SessionDecompressionFailures alert reads')
})
