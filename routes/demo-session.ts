// Demo routes for sessions (mounted by server.ts): sign in (a new session id, against fixation),
// who am I, sign out, list and revoke the user's sessions, and a tiny page that drives them from a
// browser. Every route that reads request.session opts in with `config: { session: true }`.
import Type from 'typebox'
import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { DURATION_PATTERN } from '../lib/config/index.js'
import { authRateLimit } from '../lib/rate-limit/index.js'

declare module 'fastify' {
  interface Session {
    /** Set at sign-in by the demo; the per-user index reads it (userKey). */
    userId?: string
  }
}

const Message = Type.Object({ message: Type.String() })
const LoginBody = Type.Object({
  userId: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_.@-]+$' }),
  /** Remember me: this session's lifetime ('30d'), at most SESSION_MAX_LIFETIME; absent, SESSION_TTL and SESSION_IDLE_TIMEOUT. */
  lifetime: Type.Optional(Type.String({ maxLength: 16, pattern: DURATION_PATTERN }))
}, { additionalProperties: false })
const Me = Type.Object({ userId: Type.String() })
const SessionList = Type.Object({
  sessions: Type.Array(Type.Object({
    id: Type.String(),
    createdAt: Type.String(),
    lastSeenAt: Type.String(),
    expiresAt: Type.String(),
    ip: Type.Optional(Type.String()),
    userAgent: Type.Optional(Type.String()),
    current: Type.Boolean()
  }))
})
const session = { session: true }
const notSignedIn = { message: 'Not signed in' }

export default async function demoSessionRoutes (fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()

  app.get('/demo', async (_request, reply) => reply.type('text/html; charset=utf-8').send(DEMO_PAGE))

  // Sign-in is what credential stuffing hits: the strict per-IP preset, sliding, with a ban.
  const loginLimit = { ...authRateLimit, max: app.config.RATE_LIMIT_AUTH_MAX }
  app.post('/demo/login', { config: { ...session, rateLimit: loginLimit }, schema: { body: LoginBody, response: { 200: Me } } }, async (request) => {
    // A new id at sign-in: a planted cookie is worth nothing.
    if (request.body.lifetime === undefined) await request.session.regenerate()
    else await request.session.regenerate({ lifetime: request.body.lifetime })
    request.session.userId = request.body.userId
    return { userId: request.body.userId }
  })

  app.get('/demo/me', { config: session, schema: { response: { 200: Me, 401: Message } } }, async (request, reply) => {
    const userId = request.session.userId
    return userId === undefined ? reply.code(401).send(notSignedIn) : { userId }
  })

  app.post('/demo/logout', { config: session, schema: { response: { 200: Message } } }, async (request) => {
    if (request.session.userId !== undefined) await request.session.destroy()
    return { message: 'Signed out' }
  })

  app.get('/demo/sessions', { config: session, schema: { response: { 200: SessionList, 401: Message } } }, async (request, reply) => {
    const userId = request.session.userId
    if (userId === undefined) return reply.code(401).send(notSignedIn)
    const list = await app.sessions.list(userId, { current: app.sessions.idOf(request.session.sessionId) })
    return {
      sessions: list.map((s) => ({
        id: s.id,
        createdAt: new Date(s.createdAt).toISOString(),
        lastSeenAt: new Date(s.lastSeenAt).toISOString(),
        expiresAt: new Date(s.expiresAt).toISOString(),
        ...(s.ip === undefined ? {} : { ip: s.ip }),
        ...(s.userAgent === undefined ? {} : { userAgent: s.userAgent }),
        current: s.current
      }))
    }
  })

  app.delete('/demo/sessions/:id', {
    config: session,
    schema: { params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }), response: { 200: Message, 401: Message, 404: Message } }
  }, async (request, reply) => {
    const userId = request.session.userId
    if (userId === undefined) return reply.code(401).send(notSignedIn)
    if (request.params.id === app.sessions.idOf(request.session.sessionId)) {
      await request.session.destroy()
      return { message: 'Session revoked' }
    }
    const revoked = await app.sessions.revoke(userId, request.params.id)
    return revoked ? { message: 'Session revoked' } : reply.code(404).send({ message: 'No such session' })
  })
}

// Kept inline and tiny: a form, three buttons, and fetch calls to the routes above.
const DEMO_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Session demo</title></head>
<body>
<h1>Session demo</h1>
<p id="status">Loading…</p>
<form id="login"><input id="userId" name="userId" placeholder="user id" required> <button type="submit">Sign in</button></form>
<button id="logout">Sign out</button> <button id="refresh">List sessions</button>
<ul id="sessions"></ul>
<script>
const $ = (id) => document.getElementById(id)
async function call (method, url, body) {
  const res = await fetch(url, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined })
  return { status: res.status, body: await res.json().catch(() => ({})) }
}
async function refresh () {
  const me = await call('GET', '/demo/me')
  $('status').textContent = me.status === 200 ? 'Signed in as ' + me.body.userId : 'Signed out'
  const list = $('sessions')
  list.replaceChildren()
  if (me.status !== 200) return
  const { body } = await call('GET', '/demo/sessions')
  for (const s of body.sessions || []) {
    const li = document.createElement('li')
    li.dataset.id = s.id
    li.textContent = (s.current ? '(this session) ' : '') + (s.userAgent || '?') + ' from ' + (s.ip || '?') + ', last seen ' + s.lastSeenAt + ' '
    const revoke = document.createElement('button')
    revoke.textContent = 'Revoke'
    revoke.onclick = async () => { await call('DELETE', '/demo/sessions/' + encodeURIComponent(s.id)); await refresh() }
    li.append(revoke)
    list.append(li)
  }
}
$('login').onsubmit = async (event) => { event.preventDefault(); await call('POST', '/demo/login', { userId: $('userId').value }); await refresh() }
$('logout').onclick = async () => { await call('POST', '/demo/logout'); await refresh() }
$('refresh').onclick = refresh
refresh()
</script>
</body></html>
`
