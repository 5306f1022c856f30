// The suite's SessionStore behind a real express-session (plain connect middleware on node:http):
// express-session needs its Store base class (events, createSession), which the suite does not
// depend on, so the app lends it with one line (README, "The store in an express-session app").
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import expressSession from 'express-session'
import { useRedis } from '../../helpers/index.js'
import { RedisSessionBackend, SessionStore } from '../../../lib/session/index.js'
import { connect } from './fixtures.js'

t.test('express-session signs in, reads back and destroys through the store, the cookie kept as given', async (t) => {
  const server = await useRedis(t)
  const client = await connect(t, server)
  Object.setPrototypeOf(SessionStore.prototype, expressSession.Store.prototype)
  const store = new SessionStore({ backend: new RedisSessionBackend(client), keepCookie: true, ttl: 3_600_000, idleTimeout: 3_600_000, absoluteTimeout: 86_400_000 })
  const middleware = expressSession({ store: store as unknown as expressSession.Store, secret: 'x'.repeat(32), resave: false, saveUninitialized: false, cookie: { maxAge: 600_000, sameSite: 'strict', path: '/app' } })
  const http = createServer((req: IncomingMessage, res: ServerResponse) => {
    middleware(req as never, res as never, () => {
      const session = (req as unknown as { session: expressSession.Session & Record<string, unknown> }).session
      if (req.url === '/app/login') session['userId'] = 'ada'
      if (req.url === '/app/logout') { session.destroy(() => res.end('bye')); return }
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ userId: session['userId'] ?? null, cookie: session.cookie }))
    })
  })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => http.close(() => resolve())))
  const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`
  const login = await fetch(`${base}/app/login`)
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] ?? ''
  t.match(cookie, /^connect\.sid=s%3A/)
  const me = await (await fetch(`${base}/app/me`, { headers: { cookie } })).json() as { userId: string, cookie: Record<string, unknown> }
  t.equal(me.userId, 'ada')
  t.match(me.cookie, { originalMaxAge: 600_000, sameSite: 'strict', path: '/app', httpOnly: true }, 'the cookie as express-session gave it')
  t.equal(await new Promise((resolve) => store.length((_err, n) => resolve(n))), 1)
  await fetch(`${base}/app/logout`, { headers: { cookie } })
  t.match(await (await fetch(`${base}/app/me`, { headers: { cookie } })).json(), { userId: null }, 'signed out')
  t.equal(await new Promise((resolve) => store.length((_err, n) => resolve(n))), 0, 'destroyed in the store')
})
