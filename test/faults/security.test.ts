// Security sweep (issue 9): the suite as a least-privilege ACL user under load, cookie flags, a spoofed
// X-Forwarded-For, fuzzed cache keys, route keys and session cookies (never a 500, never a crash),
// and at the end no secret or session id in any log line this process wrote (debug level).
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { request } from 'undici'
import { serverVersion, useRedis } from '../helpers/index.js'
import { allLogLines, cookiePair, startFaultApp } from '../helpers/fault-app.js'
import { describeSummary, runLoad, summarize } from '../helpers/load.js'
import { CacheKeyError } from '../../lib/errors/index.js'
import { suiteAclRule } from '../../lib/redis/index.js'

const PASSWORD = 'acl-password-f7c1e2d9b8a7'
const SESSION_SECRET = 'fault-suite-session-secret-9f8e7d6c5b4a3210'
const METRICS_TOKEN = 'metrics-token-5a4b3c2d1e0f'
// The README's least-privilege rule (issue 14 item 8), the one test/lib/redis/acl.test.ts derives.
const RULES = suiteAclRule('app:', { serverVersion: serverVersion() })
const sessionIds = new Set<string>()

function remember (setCookie: string | string[] | undefined): string | undefined {
  const pair = cookiePair(setCookie)
  if (pair !== undefined) {
    const value = decodeURIComponent(pair.slice(pair.indexOf('=') + 1))
    sessionIds.add(value)
    sessionIds.add(value.split('.')[0] ?? value) // the id without its signature
  }
  return pair
}

const random = (bytes: number): string => randomBytes(bytes).toString('latin1')

t.test('least-privilege ACL user, under load, with hostile input', async (t) => {
  const redis = await useRedis(t, { acl: [{ username: 'app', password: PASSWORD, rules: RULES }] })
  const { app, baseUrl } = await startFaultApp(t, {
    REDIS_URL: `redis://app:${encodeURIComponent(PASSWORD)}@127.0.0.1:${redis.port}`,
    REDIS_KEY_PREFIX: 'app:',
    SESSION_SECRET,
    METRICS_TOKEN,
    LOG_LEVEL: 'debug'
  }, {
    routes: (app) => {
      app.get('/limited', { config: { rateLimit: { max: 3, timeWindow: '1m' } } }, async () => ({ ok: true }))
    }
  })

  await t.test('the whole surface works as the ACL user under load', async (t) => {
    const cookies: string[] = []
    for (let i = 0; i < 10; i++) {
      const res = await request(`${baseUrl}/demo/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId: `s${i}` }) })
      await res.body.dump()
      t.equal(res.statusCode, 200, 'sign-in')
      cookies.push(remember(res.headers['set-cookie']) ?? '')
    }
    const run = await runLoad({
      baseUrl,
      rate: 50,
      durationMs: 4_000,
      onResult: (r) => { remember(r.headers['set-cookie']) },
      next: (i) => {
        const cookie = cookies[i % cookies.length] ?? ''
        const paths = [
          { path: '/demo/me', headers: { cookie } },
          { path: '/demo/sessions', headers: { cookie } },
          { path: '/demo/login', method: 'POST' as const, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId: `l${i}` }) },
          { path: `/cached/${i % 20}` },
          { path: '/demo/products' },
          { path: `/write/k${i}`, method: 'POST' as const, headers: { 'content-type': 'text/plain' }, body: 'v' },
          { path: '/health/redis' },
          { path: '/metrics', headers: { authorization: `Bearer ${METRICS_TOKEN}` } }
        ]
        return paths[i % paths.length] as { path: string }
      }
    })
    const s = summarize(run.results)
    t.comment(describeSummary('ACL user, mixed routes', s))
    t.same(Object.keys(s.statuses), ['200'], 'every request answered 200 as the ACL user')
    t.equal(app.redisState.status, 'connected')
    t.notMatch(String(app.redisState.lastError ?? ''), /NOPERM/, 'no NOPERM seen by the monitor')
  })

  await t.test('cookie flags', async (t) => {
    const res = await request(`${baseUrl}/demo/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"userId":"flags"}' })
    await res.body.dump()
    remember(res.headers['set-cookie'])
    const cookie = String(res.headers['set-cookie'])
    t.match(cookie, /HttpOnly/i, 'HttpOnly')
    t.match(cookie, /SameSite=Lax/i, 'SameSite=Lax')
    t.match(cookie, /Path=\//, 'Path=/')
    t.notMatch(cookie, /Secure/i, 'no Secure flag in the test profile over plain HTTP (auto)')
    const anonymous = await request(`${baseUrl}/demo/me`)
    await anonymous.body.dump()
    t.equal(anonymous.headers['set-cookie'], undefined, 'no cookie for an anonymous visitor')
  })

  await t.test('a spoofed X-Forwarded-For is not believed (no TRUST_PROXY)', async (t) => {
    const codes: number[] = []
    for (let i = 0; i < 6; i++) {
      const res = await request(`${baseUrl}/limited`, { headers: { 'x-forwarded-for': `198.51.100.${i}` } })
      await res.body.dump()
      codes.push(res.statusCode)
    }
    t.same(codes, [200, 200, 200, 429, 429, 429], 'limited by the socket address whatever the header says')
  })

  await t.test('fuzzed session cookies: 401 or a 4xx, never a 500', async (t) => {
    const cookies = [
      ...Array.from({ length: 50 }, () => `sid=${encodeURIComponent(random(48))}`),
      ...Array.from({ length: 20 }, () => `sid=${random(64).replace(/[;\r\n]/g, '')}`),
      `sid=${'a'.repeat(4_000)}`,
      `sid=${randomBytes(24).toString('base64url')}.${randomBytes(32).toString('base64url')}`, // well-formed, unsigned
      `sid=${randomBytes(24).toString('base64url')}`,
      'sid=', 'sid=.', 'sid=%', 'sid=%zz', `sid=${'%00'.repeat(500)}`, 'sid', 'sid=a; sid=b'
    ]
    const statuses = new Map<number, number>()
    for (const cookie of cookies) {
      let status: number
      try {
        const res = await request(`${baseUrl}/demo/me`, { headers: { cookie } })
        await res.body.dump()
        status = res.statusCode
      } catch {
        status = 0 // the client refused to send an invalid header value: not the server's doing
      }
      statuses.set(status, (statuses.get(status) ?? 0) + 1)
    }
    t.comment(`fuzzed cookies → ${JSON.stringify(Object.fromEntries(statuses))}`)
    t.ok([...statuses.keys()].every((s) => s === 0 || (s >= 400 && s < 500)), 'every fuzzed cookie answered 4xx')
  })

  await t.test('fuzzed route keys and cached-route inputs: never a 500', async (t) => {
    const paths: Array<{ path: string, headers?: Record<string, string> }> = [
      ...Array.from({ length: 40 }, () => ({ path: `/demo/products/${encodeURIComponent(random(32))}` })),
      ...Array.from({ length: 20 }, () => ({ path: `/demo/products?${encodeURIComponent(random(64))}=${encodeURIComponent(random(64))}` })),
      { path: `/demo/products/${'9'.repeat(400)}` },
      { path: `/demo/products?q=${'x'.repeat(8_000)}` },
      { path: `/demo/products/${'%ff'.repeat(300)}` },
      ...Array.from({ length: 20 }, () => ({ path: '/demo/greeting', headers: { 'accept-language': randomBytes(200).toString('base64') } })),
      { path: '/demo/greeting', headers: { 'accept-language': 'fr'.repeat(4_000) } },
      { path: `/health/${encodeURIComponent(random(16))}` }
    ]
    const statuses = new Map<number, number>()
    for (const { path, headers } of paths) {
      let status: number
      try {
        const res = await request(`${baseUrl}${path}`, { headers })
        await res.body.dump()
        status = res.statusCode
      } catch {
        status = 0
      }
      statuses.set(status, (statuses.get(status) ?? 0) + 1)
    }
    t.comment(`fuzzed routes → ${JSON.stringify(Object.fromEntries(statuses))}`)
    t.ok([...statuses.keys()].every((s) => s !== 0 && s < 500), 'no 500 and no dropped connection')
  })

  await t.test('fuzzed cache keys: a value, a miss, or the documented CacheKeyError', async (t) => {
    const keys = [
      ...Array.from({ length: 100 }, () => random(Math.floor(Math.random() * 200))),
      '', ' ', '\u0000', '*', '{tag}', 'a'.repeat(1_000_000), '\r\n*1\r\n$4\r\nPING\r\n'
    ]
    const outcomes = { stored: 0, keyError: 0, other: 0 }
    const others: string[] = []
    for (const key of keys) {
      try {
        await app.cache.set(key, { key: key.length })
        const value = await app.cache.get<{ key: number }>(key)
        if (value?.key === key.length) outcomes.stored++
        else outcomes.other++
      } catch (err) {
        if (err instanceof CacheKeyError) outcomes.keyError++
        else {
          outcomes.other++
          others.push(`${(err as Error).name}: ${(err as Error).message.slice(0, 120)}`)
        }
      }
    }
    t.comment(`fuzzed cache keys → ${JSON.stringify(outcomes)}${others.length > 0 ? ` (${others.slice(0, 3).join('; ')})` : ''}`)
    t.equal(outcomes.other, 0, 'every key was stored and read back, or refused with CacheKeyError')
  })

  await t.test('huge bodies and values: clear 4xx', async (t) => {
    const big = await request(`${baseUrl}/demo/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId: 'x'.repeat(2_000_000) }) })
    await big.body.dump()
    t.equal(big.statusCode, 413, 'a 2 MB sign-in body answers 413')
    const odd = await request(`${baseUrl}/demo/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId: random(64) }) })
    await odd.body.dump()
    t.equal(odd.statusCode, 400, 'random bytes as a user id answer 400')
  })

  t.test('no secret or session id in any log line', async (t) => {
    const logs = allLogLines.join('\n')
    t.ok(allLogLines.length > 500, `swept ${allLogLines.length} log lines`)
    for (const [name, secret] of [['Redis password', PASSWORD], ['SESSION_SECRET', SESSION_SECRET], ['METRICS_TOKEN', METRICS_TOKEN]]) {
      t.notOk(logs.includes(secret as string), `${name} never logged`)
    }
    const leaked = [...sessionIds].filter((id) => id.length >= 16 && logs.includes(id))
    t.comment(`checked ${sessionIds.size} session ids and cookie values`)
    t.same(leaked.length, 0, 'no session id or cookie value in the logs')
    t.notMatch(logs, /redis:\/\/app:[^@[]/, 'no Redis URL with a password')
  })
})
