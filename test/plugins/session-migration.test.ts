// Switching from @fastify/session (or express-session) + connect-redis: sessions the old app wrote with
// the real packages are served by the suite under the same cookie name and secret, moved to the suite's
// format on their first request, and their old keys deleted. A tampered cookie is refused.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import expressSession from 'express-session'
import { RedisStore } from 'connect-redis'
import { createClient } from 'redis'
import { useRedis, type RedisServer } from '../helpers/index.js'
import redisSuite from '../../index.js'

const SECRET = 'the-secret-both-apps-share-0123456789'
const COOKIE = 'sessionId' // @fastify/session's default name; the express app is given the same

async function oldStore (t: Test, server: RedisServer, prefix?: string): Promise<{ store: RedisStore, client: ReturnType<typeof createClient> }> {
  const client = createClient({ url: server.url })
  client.on('error', () => {})
  await client.connect()
  t.teardown(async () => { await client.close() })
  return { store: new RedisStore({ client, ...(prefix === undefined ? {} : { prefix }) }), client }
}

/** The app before the switch: @fastify/session with a connect-redis store. Returns the signed cookie of a sign-in. */
async function signInWithFastifySession (t: Test, store: RedisStore, userId: string): Promise<string> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyCookie)
  await app.register(fastifySession, { secret: SECRET, cookieName: COOKIE, store: store as never, cookie: { secure: false, maxAge: 3_600_000 } })
  app.post('/login', async (request) => {
    const session = request.session as unknown as Record<string, unknown>
    session['userId'] = userId
    session['cart'] = ['book']
    return { ok: true }
  })
  const res = await app.inject({ method: 'POST', url: '/login' })
  const cookie = res.cookies.find((c) => c.name === COOKIE)?.value
  if (cookie === undefined) throw new Error('the old app set no cookie')
  return cookie
}

/** The app before the switch: express-session (plain connect middleware) with a connect-redis store. Returns the raw Cookie header value. */
async function signInWithExpressSession (t: Test, store: RedisStore, userId: string): Promise<string> {
  const middleware = expressSession({ store, secret: SECRET, name: COOKIE, resave: false, saveUninitialized: false, cookie: { maxAge: 3_600_000 } })
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    middleware(req as never, res as never, () => {
      (req as unknown as { session: Record<string, unknown> }).session['userId'] = userId
      res.end('ok')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/login`, { method: 'POST' })
  const setCookie = res.headers.get('set-cookie') ?? ''
  const pair = setCookie.split(';')[0] ?? ''
  if (!pair.startsWith(`${COOKIE}=s%3A`)) throw new Error(`unexpected express-session cookie: ${setCookie}`)
  return pair
}

async function suiteApp (t: Test, server: RedisServer, extra: Record<string, string>): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(redisSuite, {
    env: { NODE_ENV: 'test', REDIS_URL: server.url, SESSION_SECRET: SECRET, SESSION_COOKIE_NAME: COOKIE, RATE_LIMIT_GLOBAL: 'false', METRICS_ENABLED: 'false', ...extra },
    processEnv: false
  })
  const fields = (request: { session: unknown }): Record<string, unknown> => request.session as Record<string, unknown>
  app.get('/me', { config: { session: true } }, async (request) => ({ userId: fields(request)['userId'] ?? null, cart: fields(request)['cart'] ?? null }))
  app.post('/cart', { config: { session: true } }, async (request) => {
    fields(request)['cart'] = ['book', 'pen']
    return { ok: true }
  })
  await app.ready()
  return app
}

function setCookieOf (res: { cookies: Array<{ name: string, value: string }> }): string | undefined {
  return res.cookies.find((c) => c.name === COOKIE)?.value
}

const idOf = (signed: string): string => signed.replace(/^s:/, '').slice(0, signed.replace(/^s:/, '').lastIndexOf('.'))

t.test('a session written by @fastify/session + connect-redis is served, moved, and its old key deleted', async (t) => {
  const server = await useRedis(t)
  const { store, client } = await oldStore(t, server)
  const cookie = await signInWithFastifySession(t, store, 'ada')
  t.equal(await client.exists(`sess:${idOf(cookie)}`), 1, 'connect-redis wrote its key')

  const app = await suiteApp(t, server, { SESSION_LEGACY_PREFIX: 'sess:' })
  const first = await app.inject({ url: '/me', cookies: { [COOKIE]: cookie } })
  t.equal(first.statusCode, 200)
  t.same(first.json(), { userId: 'ada', cart: ['book'] }, 'signed in, no second sign-in')
  t.equal(await client.exists(`sess:${idOf(cookie)}`), 0, 'the old key is gone after the move')
  const sent = setCookieOf(first)
  t.equal(sent, cookie, 'the cookie goes out again (same id, same signature), with the suite\'s flags and lifetime')
  t.notOk(first.cookies.some((c) => c.name === COOKIE && c.value === ''), 'the cookie is never cleared')
  t.equal(await app.sessions.count('ada'), 1, 'the moved session is in the per-user index')

  const again = await app.inject({ url: '/me', cookies: { [COOKIE]: cookie } })
  t.same(again.json(), { userId: 'ada', cart: ['book'] }, 'served from the suite\'s own format now')
  const write = await app.inject({ method: 'POST', url: '/cart', cookies: { [COOKIE]: cookie } })
  t.equal(write.statusCode, 200)
  t.same((await app.inject({ url: '/me', cookies: { [COOKIE]: cookie } })).json(), { userId: 'ada', cart: ['book', 'pen'] })
  t.equal(await client.exists(`sess:${idOf(cookie)}`), 0, 'no write brings the old key back')
})

t.test('an express-session cookie (s:<id>.<sig>) and a configured prefix: served, re-signed without s:, old key deleted', async (t) => {
  const server = await useRedis(t)
  const { store, client } = await oldStore(t, server, 'myapp:sess:')
  const header = await signInWithExpressSession(t, store, 'grace')
  const signed = decodeURIComponent(header.slice(COOKIE.length + 1))
  const id = idOf(signed)
  t.equal(await client.exists(`myapp:sess:${id}`), 1)

  const app = await suiteApp(t, server, { SESSION_LEGACY_PREFIX: 'myapp:sess:' })
  const first = await app.inject({ url: '/me', headers: { cookie: header } })
  t.same(first.json(), { userId: 'grace', cart: null })
  t.equal(setCookieOf(first), signed.slice(2), 'the cookie is re-sent in @fastify/session form')
  t.equal(await client.exists(`myapp:sess:${id}`), 0, 'the old key is gone after the move')
  const next = await app.inject({ url: '/me', cookies: { [COOKIE]: setCookieOf(first) as string } })
  t.same(next.json(), { userId: 'grace', cart: null }, 'the new cookie reads the moved session')
})

t.test('two concurrent first requests with the same legacy cookie are both signed in, the session moved once', async (t) => {
  const server = await useRedis(t)
  const { store, client } = await oldStore(t, server)
  const cookie = await signInWithFastifySession(t, store, 'ada')
  const app = await suiteApp(t, server, { SESSION_LEGACY_PREFIX: 'sess:' })
  const answers = await Promise.all(Array.from({ length: 4 }, () => app.inject({ url: '/me', cookies: { [COOKIE]: cookie } })))
  t.same(answers.map((res) => res.json()), Array.from({ length: 4 }, () => ({ userId: 'ada', cart: ['book'] })))
  t.notOk(answers.some((res) => res.cookies.some((c) => c.name === COOKIE && c.value === '')), 'no response clears the cookie')
  t.equal(await client.exists(`sess:${idOf(cookie)}`), 0)
  t.equal(await app.sessions.count('ada'), 1, 'one session, not one per request')
})

t.test('a tampered legacy cookie is refused and the old session is left alone', async (t) => {
  const server = await useRedis(t)
  const { store, client } = await oldStore(t, server)
  const cookie = await signInWithFastifySession(t, store, 'mallory-target')
  const header = await signInWithExpressSession(t, store, 'express-target')
  const app = await suiteApp(t, server, { SESSION_LEGACY_PREFIX: 'sess:' })

  const flip = (value: string): string => value.slice(0, -1) + (value.endsWith('A') ? 'B' : 'A')
  const forged = await app.inject({ url: '/me', cookies: { [COOKIE]: flip(cookie) } })
  t.same(forged.json(), { userId: null, cart: null }, 'a bad signature reads no session')
  const unsignedExpress = await app.inject({ url: '/me', cookies: { [COOKIE]: `s:${idOf(decodeURIComponent(header.slice(COOKIE.length + 1)))}.x` } })
  t.same(unsignedExpress.json(), { userId: null, cart: null }, 'an s: cookie with a bad signature reads no session')
  const bare = await app.inject({ url: '/me', cookies: { [COOKIE]: idOf(cookie) } })
  t.same(bare.json(), { userId: null, cart: null }, 'an unsigned id reads no session')
  t.equal(await client.exists(`sess:${idOf(cookie)}`), 1, 'the old key is untouched')
})

t.test('off by default: without SESSION_LEGACY_PREFIX the old sessions are not read', async (t) => {
  const server = await useRedis(t)
  const { store, client } = await oldStore(t, server)
  const cookie = await signInWithFastifySession(t, store, 'ada')
  const app = await suiteApp(t, server, {})
  t.same((await app.inject({ url: '/me', cookies: { [COOKIE]: cookie } })).json(), { userId: null, cart: null })
  t.equal(await client.exists(`sess:${idOf(cookie)}`), 1, 'nothing touched')
})
