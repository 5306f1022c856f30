// Session lifecycle events (issue 31) over real Redis, two stores on one server standing for two app
// instances (each its own connection, events and sweep; they share nothing but Redis): each event is
// raised on exactly the instance that did the thing, an expiry is reported once across instances by
// the sweep of the suite's expiry ledger, a claim left unacknowledged (an instance dying mid-report) is
// reported again after its lease, and handler failures never reach the store's callers.
import t, { type Test } from 'tap'
import { useRedis, waitFor, type RedisServer } from '../../helpers/index.js'
import { ExpirySweep, SessionEvents, sessionHandle, type SessionEvent, type SessionStore, type UserSessions } from '../../../lib/session/index.js'
import { connect, destroy, load, makeStore, newSession, save } from './fixtures.js'

interface Instance { store: SessionStore, sessions: UserSessions, sweep: ExpirySweep, seen: SessionEvent[] }

async function instance (t: Test, server: RedisServer | 'memory', options: Parameters<typeof makeStore>[1] = {}): Promise<Instance> {
  const made = makeStore(server === 'memory' ? 'memory' : await connect(t, server), options)
  const seen: SessionEvent[] = []
  for (const type of ['created', 'refreshed', 'revoked', 'expired'] as const) made.sessions.on(type, (event) => { seen.push(event) })
  const sweep = new ExpirySweep({ backend: made.store.backend, events: made.store.events, every: 60_000, leaseMs: 300 })
  return { ...made, sweep, seen }
}

const of = (seen: SessionEvent[], type: SessionEvent['type']): SessionEvent[] => seen.filter((e) => e.type === type)
/** Handlers run on the next turn of the event loop. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

t.test('created, refreshed and revoked are raised on the instance that did it, once', async (t) => {
  const server = await useRedis(t)
  const a = await instance(t, server)
  const b = await instance(t, server, { maxPerUser: 2 })

  await save(a.store, newSession('s1', { userId: 'ada' }))
  await settle()
  t.match(of(a.seen, 'created'), [{ id: sessionHandle('s1'), userId: 'ada', reason: 'new' }], 'created on A, with the public id and user')
  t.same(b.seen, [], 'nothing on B')

  const loaded = await load(b.store, 's1')
  if (loaded === null) throw new Error('not loaded')
  loaded['theme'] = 'dark'
  await save(b.store, loaded)
  await settle()
  t.match(of(b.seen, 'refreshed'), [{ id: sessionHandle('s1'), userId: 'ada', reason: 'change' }], 'a saved change refreshes it, on B')
  t.equal(of(a.seen, 'refreshed').length, 0)

  await Promise.all([destroy(a.store, 's1'), destroy(b.store, 's1')])
  await settle()
  t.equal(of(a.seen, 'revoked').length + of(b.seen, 'revoked').length, 1, 'two concurrent sign-outs: one revoked event, from the one whose delete won')
  t.match([...of(a.seen, 'revoked'), ...of(b.seen, 'revoked')], [{ userId: 'ada', reason: 'logout' }])

  await save(a.store, newSession('s2', { userId: 'bob' }))
  t.equal(await b.sessions.revokeAll('bob'), 1)
  await settle()
  t.match(of(b.seen, 'revoked').at(-1), { id: sessionHandle('s2'), userId: 'bob', reason: 'revoked' }, 'app.sessions.revokeAll: on the instance that called it')

  for (const id of ['c1', 'c2', 'c3']) await save(b.store, newSession(id, { userId: 'cy' }))
  await settle()
  t.match(of(b.seen, 'revoked').at(-1), { id: sessionHandle('c1'), userId: 'cy', reason: 'capped' }, 'past maxPerUser: the oldest, capped')
  t.equal(of(a.seen, 'expired').length + of(b.seen, 'expired').length, 0, 'no expiry reported for sessions that were ended')
  t.same(await Promise.all([a.sweep.sweep(), b.sweep.sweep()]), [0, 0], 'and the sweep finds none')
})

t.test('an expiry is reported once across two instances, within one sweep, with its user', async (t) => {
  const server = await useRedis(t)
  const a = await instance(t, server)
  const b = await instance(t, server)
  const ids = Array.from({ length: 20 }, (_, i) => `e${i}`)
  // A lifetime chosen per session (remember-me's mechanism), 300 ms: Redis ends them by itself.
  for (const id of ids) await save(a.store, { sessionId: id, cookie: { originalMaxAge: 300 }, userId: `u-${id}` })
  await save(a.store, newSession('keeps', { userId: 'ada' }))
  await waitFor(async () => await server.cli('EXISTS', `sess:{${sessionHandle('e19')}}`) === '0', { what: 'Redis expired the sessions', timeoutMs: 5_000 })
  // Both instances sweep at once, twice: each expiry is claimed by exactly one.
  await Promise.all([a.sweep.sweep(), b.sweep.sweep(), a.sweep.sweep(), b.sweep.sweep()])
  await Promise.all([a.sweep.sweep(), b.sweep.sweep()])
  const expired = [...of(a.seen, 'expired'), ...of(b.seen, 'expired')]
  t.equal(expired.length, ids.length, 'every expiry reported once')
  t.same(new Set(expired.map((e) => e.id)), new Set(ids.map(sessionHandle)))
  t.ok(expired.every((e) => e.reason === 'timeout' && e.userId === `u-e${ids.findIndex((id) => sessionHandle(id) === e.id)}`), 'with the user each belonged to')
  t.equal(await server.cli('ZCARD', 'sess:exp:{' + (sessionHandle('keeps').charCodeAt(0) % 16) + '}') !== '0', true, 'the live session stays in the ledger')
  t.not(await load(a.store, 'keeps'), null)
})

t.test('a claim that is never acknowledged (the instance died while reporting) is reported again after its lease', async (t) => {
  const server = await useRedis(t)
  const a = await instance(t, server)
  const b = await instance(t, server)
  await save(a.store, { sessionId: 'x1', cookie: { originalMaxAge: 200 }, userId: 'ada' })
  await waitFor(async () => await server.cli('EXISTS', `sess:{${sessionHandle('x1')}}`) === '0', { what: 'x1 expired', timeoutMs: 5_000 })
  // A claims (the first half of its sweep) and reports nothing: a crash between claim and handlers.
  const claimed = await a.store.backend.claimExpired(Date.now(), 300, 100)
  t.match(claimed, [{ handle: sessionHandle('x1'), userId: 'ada' }])
  t.equal(await b.sweep.sweep(), 0, 'while the claim holds, B does not report it')
  const reported = await waitFor(async () => (await b.sweep.sweep()) > 0, { what: 'B reports it after the lease', timeoutMs: 5_000, intervalMs: 100 })
  t.ok(reported)
  t.match(of(b.seen, 'expired'), [{ id: sessionHandle('x1'), userId: 'ada', reason: 'timeout' }])
  t.equal(await b.sweep.sweep(), 0, 'acknowledged: not again')
})

t.test('a request that finds a session past its idle timeout reports the expiry itself', async (t) => {
  const server = await useRedis(t)
  const a = await instance(t, server)
  await save(a.store, newSession('i1', { userId: 'ada' }))
  const key = `sess:{${sessionHandle('i1')}}`
  await server.cli('HSET', key, 'm:seen', String(Date.now() - 2 * 86_400_000))
  t.equal(await load(a.store, 'i1'), null)
  await settle()
  t.match(of(a.seen, 'expired'), [{ id: sessionHandle('i1'), userId: 'ada', reason: 'idle' }])
  t.equal(await a.sweep.sweep(), 0, 'not reported a second time by the sweep')
})

t.test('handler errors and rejections are counted and logged once, never thrown at the store\'s caller', async (t) => {
  const server = await useRedis(t)
  const warnings: string[] = []
  const { store, sessions } = makeStore(await connect(t, server), { logger: { warn: (_o, msg) => warnings.push(msg), info: () => {}, debug: () => {} } })
  sessions.on('created', () => { throw new Error('boom') })
  sessions.on('created', async () => { throw new Error('async boom') })
  let calm = 0
  sessions.on('created', () => { calm++ })
  for (const id of ['h1', 'h2']) await save(store, newSession(id, { userId: 'ada' }))
  await waitFor(() => sessions.stats().eventHandlerErrors === 4, { what: 'four handler failures counted', timeoutMs: 2_000 })
  t.equal(calm, 2, 'the other handler still ran for each event')
  t.equal(sessions.stats().eventsDelivered, 2)
  t.equal(warnings.filter((w) => /event handler failed/.test(w)).length, 1, 'one log line for the burst')
  t.not(await load(store, 'h1'), null, 'the saves went through')
})

t.test('memory backend: events and expiry alike', async (t) => {
  const a = await instance(t, 'memory')
  await save(a.store, { sessionId: 'm1', cookie: { originalMaxAge: 100 }, userId: 'ada' })
  await settle()
  t.match(of(a.seen, 'created'), [{ userId: 'ada', reason: 'new' }])
  await new Promise((resolve) => setTimeout(resolve, 150))
  t.equal(await a.sweep.sweep(), 1)
  t.match(of(a.seen, 'expired'), [{ id: sessionHandle('m1'), userId: 'ada', reason: 'timeout' }])
})

t.test('the ledger stays bounded without a sweep: entries due over an hour ago go at the next creation in their bucket', async (t) => {
  const server = await useRedis(t)
  const { store } = makeStore(await connect(t, server))
  const bucket = (id: string): number => sessionHandle(id).charCodeAt(0) % 16
  const target = bucket('old')
  const sibling = Array.from({ length: 500 }, (_, i) => `n${i}`).find((id) => bucket(id) === target) as string
  await server.cli('ZADD', `sess:exp:{${target}}`, String(Date.now() - 2 * 3_600_000), 'stale-handle')
  await server.cli('HSET', `sess:expu:{${target}}`, 'stale-handle', 'ada')
  await save(store, newSession(sibling, { userId: 'bob' }))
  t.equal(await server.cli('ZSCORE', `sess:exp:{${target}}`, 'stale-handle'), '', 'dropped')
  t.equal(await server.cli('HEXISTS', `sess:expu:{${target}}`, 'stale-handle'), '0', 'its user too')
  t.not(await server.cli('ZSCORE', `sess:exp:{${target}}`, sessionHandle(sibling)), '', 'the new one is in')
})

t.test('a lifetime shortened on an existing session moves its ledger entry earlier: the expiry is reported on time', async (t) => {
  const server = await useRedis(t)
  const a = await instance(t, server)
  await save(a.store, newSession('sh', { userId: 'ada' }))
  const loaded = await load(a.store, 'sh')
  if (loaded === null) throw new Error('not loaded')
  loaded.cookie = { originalMaxAge: 300 } // session.options({ maxAge: 300 }) in a handler
  await save(a.store, loaded)
  await waitFor(async () => await server.cli('EXISTS', `sess:{${sessionHandle('sh')}}`) === '0', { what: 'sh expired', timeoutMs: 5_000 })
  t.equal(await a.sweep.sweep(), 1, 'due in the ledger at its new expiry, not a day later')
  t.match(of(a.seen, 'expired'), [{ id: sessionHandle('sh'), userId: 'ada', reason: 'timeout' }])
})

t.test('events beyond 10,000 waiting or in slow handlers are dropped and counted, never queued without bound', async (t) => {
  const events = new SessionEvents()
  const release: Array<() => void> = []
  events.on('refreshed', () => new Promise<void>((resolve) => { release.push(resolve) })) // a handler that hangs
  for (let i = 0; i < 10_005; i++) events.emit('refreshed', `h${i}`, 'ada', 'activity')
  t.equal(events.stats().eventsDropped, 5, 'the five past the bound, at once')
  await settle()
  t.equal(release.length, 10_000, 'the rest handed to the handler')
  events.emit('refreshed', 'late', 'ada', 'activity')
  t.equal(events.stats().eventsDropped, 6, 'while 10,000 handler calls still run, a new event is dropped too')
  for (const done of release) done()
  await settle()
  events.emit('refreshed', 'after', 'ada', 'activity')
  t.equal(events.stats().eventsDropped, 6, 'once they finished, events flow again')
})
