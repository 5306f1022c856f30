// Session lifetime rules added by issues 14, 15 and 16, run against real Redis and the in-process
// backend: only the lifetime of a cookie is stored (flags come from config, a shorter SESSION_TTL caps
// old sessions), `cookie.expires` is honoured, `touch` never resurrects, the per-user cap, the refresh
// cadence, and one warning per outage.
import t, { type Test } from 'tap'
import { useRedis } from '../../helpers/index.js'
import { sessionHandle, type SessionLogger } from '../../../lib/session/index.js'
import { clock, connect, destroy, load, makeStore, newSession, save, type TestSession } from './fixtures.js'
import type { Redis } from 'ioredis'
import type { SessionStore } from '../../../lib/session/index.js'

function touch (store: SessionStore, session: TestSession): Promise<void> {
  return new Promise((resolve, reject) => store.touch(session.sessionId, session, (err) => { if (err === undefined || err === null) resolve(); else reject(err) }))
}

for (const kind of ['redis', 'memory'] as const) {
  const setup = async (t: Test, options: Parameters<typeof makeStore>[1] = {}) => {
    const client: Redis | 'memory' = kind === 'memory' ? 'memory' : await connect(t, await useRedis(t))
    return { client, ...makeStore(client, options) }
  }

  t.test(`${kind}: a cookie with only an expiry (no max age) sets the TTL; an expired one is never returned`, async (t) => {
    const time = clock()
    const { store } = await setup(t, { now: time.now })
    const expires = new Date(time.now() + 60_000)
    await save(store, { sessionId: 'e1', cookie: { originalMaxAge: null, expires, path: '/' }, userId: 'ada' })
    const loaded = await load(store, 'e1')
    t.equal((loaded?.cookie as { expires?: Date } | undefined)?.expires?.getTime(), expires.getTime(), 'the fixed expiry comes back')
    t.equal(await store.backend.count('ada', time.now()), 1)
    time.advance(61_000)
    t.equal(await load(store, 'e1'), null, 'past its cookie expiry: gone, not restored under its old id')
    await save(store, { sessionId: 'e2', cookie: { originalMaxAge: null, expires: new Date(time.now() - 1_000) }, userId: 'ada' })
    t.equal(await load(store, 'e2'), null, 'saved already expired: never stored')
  })

  t.test(`${kind}: touch extends an existing session and never brings back a destroyed one`, async (t) => {
    const time = clock()
    const { store, sessions } = await setup(t, { now: time.now })
    await save(store, newSession('t1', { userId: 'ada' }))
    const a = await load(store, 't1')
    if (a === null) throw new Error('not loaded')
    const before = time.now()
    time.advance(10_000)
    await touch(store, a)
    const [info] = await sessions.list('ada')
    t.ok((info?.lastSeenAt ?? 0) >= before + 10_000, 'last seen moved')
    await destroy(store, 't1')
    await touch(store, a)
    t.equal(await load(store, 't1'), null, 'still destroyed')
    await touch(store, newSession('never-stored', { userId: 'ada' }))
    t.equal(await load(store, 'never-stored'), null, 'touch creates nothing')
    t.equal(await sessions.count('ada'), 0)
  })

  t.test(`${kind}: past maxPerUser the user's oldest sessions are revoked at sign-in`, async (t) => {
    const time = clock()
    const { store, sessions } = await setup(t, { now: time.now, maxPerUser: 3 })
    for (let i = 1; i <= 5; i++) {
      await save(store, newSession(`m${i}`, { userId: 'ada' }))
      time.advance(1_000)
    }
    await save(store, newSession('b1', { userId: 'bob' }))
    t.equal(await sessions.count('ada'), 3)
    t.equal(await load(store, 'm1'), null, 'oldest revoked')
    t.equal(await load(store, 'm2'), null)
    t.ok(await load(store, 'm3'))
    t.ok(await load(store, 'm5'), 'the newest stays')
    t.equal(await sessions.count('bob'), 1, 'other users are not touched')
    t.equal(store.stats().capped, 2)
  })

  t.test(`${kind}: a restored session is due for refresh only once the cadence has passed`, async (t) => {
    const time = clock()
    const { store } = await setup(t, { now: time.now, idleTimeout: 60_000 }) // cadence 6 s
    await save(store, newSession('d1', { userId: 'ada' }))
    const fresh = await load(store, 'd1')
    if (fresh === null) throw new Error('not loaded')
    t.equal(store.isDue(fresh), false)
    t.equal(store.refreshOf(fresh), 'none')
    time.advance(6_000)
    const later = await load(store, 'd1')
    if (later === null) throw new Error('not loaded')
    if (kind === 'redis') {
      // A standalone server refreshes a due session inside the load itself (issue 16).
      t.equal(store.refreshOf(later), 'refreshed', 'the load refreshed it: the cookie goes out, nothing to write')
      t.equal(store.isDue(later), false)
    } else {
      t.equal(store.isDue(later), true)
      t.equal(store.refreshOf(later), 'due')
      await save(store, later)
      t.equal(store.isDue(later), false, 'refreshed by the save')
    }
    t.equal(store.isDue(newSession('unknown')), false, 'a session never loaded is not due')
    t.equal(store.refreshOf(newSession('unknown')), 'none')
  })
}

t.test('redis: a shorter SESSION_TTL caps sessions stored with a longer max age', async (t) => {
  const server = await useRedis(t)
  const client = await connect(t, server)
  const { store } = makeStore(client)
  await save(store, newSession('c1', { userId: 'ada' })) // max age 7 days
  const { store: tighter } = makeStore(client, { ttl: 3_600_000 })
  const loaded = await load(tighter, 'c1')
  if (loaded === null) throw new Error('not loaded')
  t.equal((loaded.cookie as { originalMaxAge?: number }).originalMaxAge, 3_600_000, 'the cookie max age is capped')
  loaded['theme'] = 'dark'
  await save(tighter, loaded)
  const pttl = Number(await server.cli('PTTL', `sess:{${sessionHandle('c1')}}`))
  t.ok(pttl > 0 && pttl <= 3_600_000, `stored TTL ${pttl} ≤ the new SESSION_TTL`)
})

t.test('redis: a session stored with the whole cookie (before issue 14) keeps only its max age', async (t) => {
  const server = await useRedis(t)
  const client = await connect(t, server)
  const { store } = makeStore(client)
  await save(store, newSession('legacy', { userId: 'ada' }))
  await server.cli('HSET', `sess:{${sessionHandle('legacy')}}`, 'm:cookie', JSON.stringify({ originalMaxAge: 86_400_000, sameSite: 'none', domain: 'old.example', secure: false, httpOnly: false, path: '/' }))
  const loaded = await load(store, 'legacy')
  t.same(loaded?.cookie, { originalMaxAge: 86_400_000 }, 'old flags are dropped: the current config supplies them')
})

t.test('redis: an outage logs one warning (no driver text), every failure is counted, recovery one info line', async (t) => {
  const server = await useRedis(t)
  const client = await connect(t, server)
  const lines: Array<{ level: string, obj: object, msg: string }> = []
  const logger: SessionLogger = {
    warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
    info: (obj, msg) => lines.push({ level: 'info', obj, msg }),
    debug: () => {}
  }
  const { store } = makeStore(client, { logger })
  await save(store, newSession('o1', { userId: 'ada' }))
  await server.kill()
  for (let i = 0; i < 5; i++) await t.rejects(load(store, 'o1'), { code: 'FRS_SESSION_UNAVAILABLE' })
  await t.rejects(save(store, newSession('o2', { userId: 'bob' })), { code: 'FRS_SESSION_UNAVAILABLE' })
  const warnings = lines.filter((l) => l.level === 'warn')
  t.equal(warnings.length, 1, 'one warning for the whole outage')
  t.match(warnings[0]?.msg, /session store unavailable/)
  t.notMatch(JSON.stringify(lines), /ECONNREFUSED|Connection is closed|Stream isn't writeable|127\.0\.0\.1/, 'no driver text')
  t.equal(store.stats().unavailable, 6, 'each refused call counted')
  await server.restart()
  let back = false
  for (let i = 0; i < 100 && !back; i++) {
    back = await load(store, 'o1').then(() => true, () => false)
    if (!back) await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.ok(back, 'answers again after the restart')
  t.equal(lines.filter((l) => l.msg === 'session store available again').length, 1)
  t.equal(lines.filter((l) => l.level === 'warn').length, 1, 'still one warning')
})
