// app.sessions.on (issue 31) through HTTP, two app instances (two Fastify apps, each with its own
// connection, store and sweep) on one real Redis: created on the instance that signed in, revoked on
// the one that signed out or revoked, regenerated named as such, an expiry reported once across both
// by their sweeps (SESSION_EVENTS_SWEEP), and a failing handler never failing a request while
// /metrics counts it. Then the expiry race again with the second instance in a process of its own.
import t from 'tap'
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import type { FastifyInstance } from 'fastify'
import { TS_NODE_ARGS, useRedis, waitFor, type RedisServer } from '../helpers/index.js'
import { buildTestApp } from '../helper.js'
import { sample } from '../monitoring/prom.js'
import type { SessionEvent } from '../../index.js'

const SECRET = 'events-secret-0123456789abcdef0123456789'

async function instance (t: Parameters<typeof buildTestApp>[0], server: RedisServer, extra: Record<string, string> = {}): Promise<{ app: FastifyInstance, seen: SessionEvent[] }> {
  const { app } = await buildTestApp(t, { REDIS_URL: server.url, SESSION_SECRET: SECRET, RATE_LIMIT_GLOBAL: 'false', SESSION_EVENTS_SWEEP: '100ms', ...extra })
  const seen: SessionEvent[] = []
  for (const type of ['created', 'revoked', 'expired'] as const) app.sessions.on(type, (event) => { seen.push(event) })
  return { app, seen }
}

async function login (app: FastifyInstance, userId: string, extra: { lifetime?: string, sid?: string } = {}): Promise<string> {
  const res = await app.inject({
    method: 'POST',
    url: '/demo/login',
    payload: { userId, ...(extra.lifetime === undefined ? {} : { lifetime: extra.lifetime }) },
    ...(extra.sid === undefined ? {} : { cookies: { sid: extra.sid } })
  })
  const sid = res.cookies.find((c) => c.name === 'sid')?.value
  if (res.statusCode !== 200 || sid === undefined) throw new Error(`sign-in answered ${res.statusCode}: ${res.body}`)
  return sid
}

const idOf = (app: FastifyInstance, sid: string): string => app.sessions.idOf(decodeURIComponent(sid).split('.')[0] as string)

t.test('two instances: each event on the instance that caused it, expiries once across both', async (t) => {
  const server = await useRedis(t)
  const a = await instance(t, server)
  const b = await instance(t, server)

  const first = await login(a.app, 'ada')
  const second = await login(a.app, 'ada', { sid: first }) // signing in again on a session: regenerate()
  await waitFor(() => a.seen.length >= 3, { what: 'A\'s events', timeoutMs: 2_000 })
  t.match(a.seen, [
    { type: 'created', id: idOf(a.app, first), userId: 'ada', reason: 'new' },
    { type: 'revoked', id: idOf(a.app, first), userId: 'ada', reason: 'regenerated' },
    { type: 'created', id: idOf(a.app, second), userId: 'ada', reason: 'new' }
  ])
  t.same(b.seen, [], 'B raised nothing')

  t.equal((await b.app.inject({ method: 'POST', url: '/demo/logout', cookies: { sid: second } })).statusCode, 200)
  await waitFor(() => b.seen.length === 1, { what: 'B\'s revoked event', timeoutMs: 2_000 })
  t.match(b.seen, [{ type: 'revoked', id: idOf(b.app, second), userId: 'ada', reason: 'logout' }], 'sign-out on B: revoked on B')
  t.equal(a.seen.length, 3, 'not on A')

  // Remember-me's lifetime, 400 ms: Redis ends the sessions, the sweeps of both instances race for them.
  const short = await Promise.all(['u1', 'u2', 'u3'].map((user) => login(a.app, user, { lifetime: '400ms' })))
  const signedIn = Date.now() // each of the three ends in Redis by signedIn + 400 ms
  const expired = await waitFor(() => {
    const all = [...a.seen, ...b.seen].filter((e) => e.type === 'expired')
    return all.length >= 3 && all
  }, { what: 'three expired events', timeoutMs: 5_000 })
  await new Promise((resolve) => setTimeout(resolve, 300)) // a few more sweeps of each: nothing more comes
  t.equal([...a.seen, ...b.seen].filter((e) => e.type === 'expired').length, 3, 'each reported once across the two instances')
  t.same(new Set(expired.map((e) => e.id)), new Set(short.map((sid) => idOf(a.app, sid))))
  t.same(new Set(expired.map((e) => e.userId)), new Set(['u1', 'u2', 'u3']))
  t.ok(expired.every((e) => e.reason === 'timeout'))
  // The stated delay bound: one SESSION_EVENTS_SWEEP (100 ms here) after Redis ended the session, plus
  // the sweep's round trips; 1 s of slack for a loaded machine (the wait above allowed 5 s).
  const late = Math.max(...expired.map((e) => e.at)) - (signedIn + 400)
  t.ok(late <= 100 + 1_000, `reported within the sweep period of the expiry (latest ${late} ms after it)`)
})

t.test('a failing handler never fails the request; /metrics counts it', async (t) => {
  const server = await useRedis(t)
  const { app } = await buildTestApp(t, { REDIS_URL: server.url, SESSION_SECRET: SECRET, RATE_LIMIT_GLOBAL: 'false' })
  app.sessions.on('created', () => { throw new Error('audit log down') })
  app.sessions.on('revoked', async () => { throw new Error('audit log down') })
  const sid = await login(app, 'ada')
  t.equal((await app.inject({ url: '/demo/me', cookies: { sid } })).statusCode, 200, 'signed in despite the handler')
  t.equal((await app.inject({ method: 'POST', url: '/demo/logout', cookies: { sid } })).statusCode, 200)
  await waitFor(() => app.sessions.stats().eventHandlerErrors === 2, { what: 'both failures counted', timeoutMs: 2_000 })
  const text = (await app.inject('/metrics')).body
  t.equal(sample(text, 'session_lifecycle_handler_errors_total'), 2)
  t.equal(sample(text, 'session_lifecycle_events_dropped_total'), 0)
  t.throws(() => app.sessions.on('deleted' as 'created', () => {}), /unknown event "deleted"/)
})

t.test('two processes: an expiry is reported once, by whichever instance claims it', async (t) => {
  const server = await useRedis(t)
  const env = { REDIS_URL: server.url, SESSION_SECRET: SECRET, RATE_LIMIT_GLOBAL: 'false', METRICS_ENABLED: 'false', SESSION_EVENTS_SWEEP: '100ms' }
  const child = spawn(process.execPath, [...TS_NODE_ARGS, 'test/helpers/session-events-child.ts'], {
    env: { ...process.env, SESSION_EVENTS_ENV: JSON.stringify(env) },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(() => { child.kill('SIGKILL') })
  const fromChild: SessionEvent[] = []
  let ready!: () => void
  const started = new Promise<void>((resolve) => { ready = resolve })
  createInterface({ input: child.stdout }).on('line', (line) => {
    const message = JSON.parse(line) as { ready?: true, event?: SessionEvent }
    if (message.ready === true) ready()
    if (message.event !== undefined) fromChild.push(message.event)
  })
  const here = await instance(t, server, { METRICS_ENABLED: 'false' })
  await started
  // Expiries spread over 600 ms: several sweeps of each process race for them.
  const sids = await Promise.all(Array.from({ length: 10 }, (_, i) => login(here.app, `p${i}`, { lifetime: `${300 + i * 60}ms` })))
  await waitFor(() => [...here.seen, ...fromChild].filter((e) => e.type === 'expired').length >= sids.length, { what: 'ten expired events', timeoutMs: 5_000 })
  await new Promise((resolve) => setTimeout(resolve, 300)) // more sweeps of both: nothing more comes
  const expired = [...here.seen, ...fromChild].filter((e) => e.type === 'expired')
  t.equal(expired.length, sids.length, 'each expiry reported once across the two processes')
  t.same(new Set(expired.map((e) => e.id)), new Set(sids.map((sid) => idOf(here.app, sid))))
  t.comment(`reported here: ${here.seen.filter((e) => e.type === 'expired').length}, in the child: ${fromChild.filter((e) => e.type === 'expired').length}`)
  t.equal(fromChild.filter((e) => e.type === 'created').length, 0, 'created only where the sign-ins happened')
})
