// Remember-me (issue 31): a lifetime chosen per session at sign-in with regenerate({ lifetime }),
// bounded by SESSION_MAX_LIFETIME, which is the session's idle timeout and cookie max age, over real
// Redis and across a restart of the app. Idleness is made by moving a session's last-seen time back in
// Redis (the store's own clock check), so nothing here waits for a timeout.
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { useRedis, type RedisServer } from '../helpers/index.js'
import { sessionHandle } from '../../lib/session/index.js'
import { loadConfig } from '../../lib/config/index.js'
import redisSuite from '../../index.js'

const DAY = 86_400_000
const SECRET = 's'.repeat(32)

async function remembering (t: Test, server: RedisServer, extra: Record<string, string> = {}): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(redisSuite, {
    env: { NODE_ENV: 'test', REDIS_URL: server.url, SESSION_SECRET: SECRET, RATE_LIMIT_GLOBAL: 'false', METRICS_ENABLED: 'false', SESSION_IDLE_TIMEOUT: '1h', ...extra },
    processEnv: false
  })
  app.post<{ Body: { userId: string, remember?: string } }>('/sign-in', { config: { session: true } }, async (request) => {
    if (request.body.remember === undefined) await request.session.regenerate()
    else await request.session.regenerate({ lifetime: request.body.remember })
    request.session.userId = request.body.userId
    return { ok: true }
  })
  app.get('/me', { config: { session: true } }, async (request) => ({ userId: request.session.userId ?? null }))
  await app.ready()
  return app
}

async function signIn (app: FastifyInstance, userId: string, remember?: string): Promise<{ sid: string, expires: number }> {
  const res = await app.inject({ method: 'POST', url: '/sign-in', payload: remember === undefined ? { userId } : { userId, remember } })
  const cookie = res.cookies.find((c) => c.name === 'sid')
  if (res.statusCode !== 200 || cookie === undefined) throw new Error(`sign-in answered ${res.statusCode}: ${res.body}`)
  return { sid: cookie.value, expires: (cookie.expires as Date).getTime() }
}

/** The session's Redis key from its signed cookie value. */
function keyOf (sid: string): string {
  return `sess:{${sessionHandle(decodeURIComponent(sid).split('.')[0] as string)}}`
}

/** Moves the session's last use `ms` back, as if it had not been used since. */
async function idle (server: RedisServer, sid: string, ms: number): Promise<void> {
  const seen = Number(await server.cli('HGET', keyOf(sid), 'm:seen'))
  await server.cli('HSET', keyOf(sid), 'm:seen', String(seen - ms))
}

t.test('a remember-me session outlives a normal session\'s idle timeout; its cookie and Redis TTL follow its lifetime', async (t) => {
  const server = await useRedis(t)
  const app = await remembering(t, server)
  const before = Date.now()
  const normal = await signIn(app, 'ada')
  const remembered = await signIn(app, 'ada', '30d')
  t.ok(normal.expires <= Date.now() + 7 * DAY && normal.expires >= before + 7 * DAY - 1000, 'a normal cookie lasts SESSION_TTL')
  t.ok(remembered.expires <= Date.now() + 30 * DAY && remembered.expires >= before + 30 * DAY - 1000, 'the remember-me cookie lasts 30 days')
  const pttl = Number(await server.cli('PTTL', keyOf(remembered.sid)))
  t.ok(pttl > 29 * DAY && pttl <= 30 * DAY, `Redis keeps it 30 days (PTTL ${pttl}), not SESSION_IDLE_TIMEOUT`)
  t.ok(Number(await server.cli('PTTL', keyOf(normal.sid))) <= 3_600_000, 'a normal one lasts the idle timeout in Redis')

  // Two hours without use: past the 1 h idle timeout of a normal session, far within 30 days.
  await idle(server, normal.sid, 2 * 3_600_000)
  await idle(server, remembered.sid, 2 * 3_600_000)
  const gone = await app.inject({ url: '/me', cookies: { sid: normal.sid } })
  t.same(gone.json(), { userId: null }, 'the normal session ended at its idle timeout')
  const kept = await app.inject({ url: '/me', cookies: { sid: remembered.sid } })
  t.same(kept.json(), { userId: 'ada' }, 'the remember-me session is still signed in')
  const again = kept.cookies.find((c) => c.name === 'sid')
  t.ok(again !== undefined, 'its refresh sends the cookie again')
  t.ok((again?.expires as Date).getTime() >= before + 30 * DAY - 1000, 'with the 30-day max age, not SESSION_TTL')
  t.ok(Number(await server.cli('PTTL', keyOf(remembered.sid))) > 29 * DAY, 'the refresh kept its own idle timeout in Redis')
  t.equal(JSON.parse(await server.cli('HGET', keyOf(remembered.sid), 'm:cookie')).chosen, true)
  const abs = Number(await server.cli('HGET', keyOf(remembered.sid), 'm:abs'))
  t.ok(abs >= before + 30 * DAY, 'its absolute timeout is at least its lifetime')
  await idle(server, remembered.sid, 31 * DAY)
  t.same((await app.inject({ url: '/me', cookies: { sid: remembered.sid } })).json(), { userId: null }, 'unused for longer than its lifetime: ended')
})

t.test('a remember-me session in daily use still ends at its own absolute deadline', async (t) => {
  const server = await useRedis(t)
  const app = await remembering(t, server, { SESSION_ABSOLUTE_TIMEOUT: '7d' })
  const before = Date.now()
  const { sid } = await signIn(app, 'dee', '30d')
  const abs = Number(await server.cli('HGET', keyOf(sid), 'm:abs'))
  t.ok(abs >= before + 30 * DAY && abs <= Date.now() + 30 * DAY, 'its absolute deadline is its 30-day lifetime, not SESSION_ABSOLUTE_TIMEOUT (7 days)')
  // Used a moment ago (never idle), but signed in over 30 days before: the deadline is past.
  await server.cli('HSET', keyOf(sid), 'm:abs', String(Date.now() - 1_000))
  t.same((await app.inject({ url: '/me', cookies: { sid } })).json(), { userId: null }, 'ended at its absolute timeout though in use')
})

t.test('a lifetime above SESSION_MAX_LIFETIME is clamped to it, cookie and Redis alike', async (t) => {
  const server = await useRedis(t)
  const app = await remembering(t, server, { SESSION_MAX_LIFETIME: '60d' })
  const before = Date.now()
  const { sid, expires } = await signIn(app, 'bob', '365d')
  t.ok(expires <= Date.now() + 60 * DAY && expires >= before + 60 * DAY - 1000, 'the cookie says 60 days')
  const pttl = Number(await server.cli('PTTL', keyOf(sid)))
  t.ok(pttl > 59 * DAY && pttl <= 60 * DAY, `Redis keeps it 60 days (PTTL ${pttl})`)
  t.same(JSON.parse(await server.cli('HGET', keyOf(sid), 'm:cookie')), { maxAge: 60 * DAY, chosen: true })
  await t.rejects(app.inject({ method: 'POST', url: '/sign-in', payload: { userId: 'bob', remember: 'for ever' } }).then((res) => {
    if (res.statusCode >= 500) throw new Error(res.json().message)
  }), /regenerate\(\{ lifetime \}\) must be a duration/, 'a lifetime that is not a duration is a programming error, named')
})

t.test('a lifetime that is not a positive duration is a DurationError (FRS_DURATION_INVALID) from regenerate()', async (t) => {
  const app = await remembering(t, await useRedis(t))
  for (const remember of ['0s', 'soon']) {
    const res = await app.inject({ method: 'POST', url: '/sign-in', payload: { userId: 'ada', remember } })
    t.equal(res.statusCode, 500, 'a caller bug: the handler passed it')
    t.match(res.json(), { code: 'FRS_DURATION_INVALID', message: /regenerate\(\{ lifetime \}\)/ }, `lifetime ${remember}`)
  }
})

t.test('a remember-me session survives a restart of the app', async (t) => {
  const server = await useRedis(t)
  const first = await remembering(t, server)
  const { sid } = await signIn(first, 'cy', '30d')
  await first.close()
  const second = await remembering(t, server)
  await idle(server, sid, 2 * 3_600_000)
  const res = await second.inject({ url: '/me', cookies: { sid } })
  t.same(res.json(), { userId: 'cy' }, 'signed in after the restart, past the normal idle timeout')
  t.ok(((res.cookies.find((c) => c.name === 'sid')?.expires as Date | undefined)?.getTime() ?? 0) > Date.now() + 29 * DAY, 'still a 30-day cookie')
})

t.test('SESSION_MAX_LIFETIME: bad values stop start-up with one line naming it', async (t) => {
  t.throws(() => loadConfig({ env: { SESSION_MAX_LIFETIME: 'forever' }, processEnv: false }), /SESSION_MAX_LIFETIME must be a duration/)
  t.throws(() => loadConfig({ env: { SESSION_MAX_LIFETIME: '1d' }, processEnv: false }), /SESSION_MAX_LIFETIME must be at least SESSION_TTL/)
  t.equal(loadConfig({ env: {}, processEnv: false }).SESSION_MAX_LIFETIME, 90 * DAY, 'default 90 days')
})
