// The store's rules, run against real Redis and against the in-process backend: per-field writes,
// touches, timeouts, the schema, the per-user index. Redis-only details (keys, TTLs) come last.
import t, { type Test } from 'tap'
import { useRedis } from '../../helpers/index.js'
import { allSessionsKey, expiryLedgerKeys, sessionHandle } from '../../../lib/session/index.js'
import { clock, connect, destroy, load, makeStore, newSession, save } from './fixtures.js'
import type { Redis } from 'ioredis'

for (const kind of ['redis', 'memory'] as const) {
  const setup = async (t: Test, options: Parameters<typeof makeStore>[1] = {}) => {
    const client: Redis | 'memory' = kind === 'memory' ? 'memory' : await connect(t, await useRedis(t))
    return { client, ...makeStore(client, options) }
  }

  t.test(`${kind}: a saved session loads back with its payload and cookie options`, async (t) => {
    const { store } = await setup(t)
    await save(store, newSession('s1', { userId: 'ada', cart: ['a'] }))
    const loaded = await load(store, 's1')
    t.match(loaded, { userId: 'ada', cart: ['a'], cookie: { originalMaxAge: 7 * 86_400_000 } })
    t.notOk('expires' in (loaded?.cookie ?? {}), 'no stored expiry: @fastify/session restarts it (rolling)')
    t.notOk('sameSite' in (loaded?.cookie ?? {}), 'flags are not stored: they come from the current config (issue 14.11)')
    t.equal(await load(store, 'unknown'), null)
    t.match(store.stats(), { loads: 2, saves: 1, touches: 0 })
  })

  t.test(`${kind}: concurrent saves changing different fields both survive`, async (t) => {
    const { store } = await setup(t)
    await save(store, newSession('s1', { userId: 'ada' }))
    const a = await load(store, 's1')
    const b = await load(store, 's1')
    if (a === null || b === null) throw new Error('not loaded')
    a['cart'] = ['book']
    b['theme'] = 'dark'
    await Promise.all([save(store, a), save(store, b)])
    t.match(await load(store, 's1'), { userId: 'ada', cart: ['book'], theme: 'dark' })
    // A removed field is removed; a field the other request set stays.
    const c = await load(store, 's1')
    const d = await load(store, 's1')
    if (c === null || d === null) throw new Error('not loaded')
    delete c['cart']
    d['theme'] = 'light'
    await save(store, c)
    await save(store, d)
    const final = await load(store, 's1')
    t.notOk(final !== null && 'cart' in final, 'cart deleted')
    t.equal(final?.['theme'], 'light')
  })

  t.test(`${kind}: an unchanged save is a touch and does not rewrite the data`, async (t) => {
    const { store } = await setup(t)
    await save(store, newSession('s1', { userId: 'ada', theme: 'dark' }))
    const a = await load(store, 's1')
    const b = await load(store, 's1')
    if (a === null || b === null) throw new Error('not loaded')
    b['theme'] = 'light'
    await save(store, b)
    await save(store, a) // a changed nothing: it must not write its stale theme back
    t.equal((await load(store, 's1'))?.['theme'], 'light')
    t.match(store.stats(), { saves: 2, touches: 1 })
  })

  t.test(`${kind}: a save never brings back a session destroyed meanwhile`, async (t) => {
    const { store, sessions } = await setup(t)
    await save(store, newSession('s1', { userId: 'ada' }))
    const a = await load(store, 's1')
    if (a === null) throw new Error('not loaded')
    t.equal(await sessions.revoke('ada', sessionHandle('s1')), true)
    a['theme'] = 'dark'
    await save(store, a)
    t.equal(await load(store, 's1'), null)
    t.equal(await sessions.count('ada'), 0)
  })

  t.test(`${kind}: data breaking the schema is refused at save`, async (t) => {
    const { store } = await setup(t)
    await t.rejects(save(store, newSession('s2', { userId: 42 })), { code: 'FRS_SESSION_DATA_INVALID', message: /userId/ })
    t.equal(await load(store, 's2'), null, 'nothing stored')
  })

  t.test(`${kind}: idle timeout and absolute lifetime`, async (t) => {
    const time = clock()
    const { store } = await setup(t, { now: time.now, idleTimeout: 60_000, absoluteTimeout: 150_000 })
    await save(store, newSession('s1', { userId: 'ada' }))
    time.advance(59_000)
    const a = await load(store, 's1')
    t.ok(a, 'used within the idle timeout')
    await save(store, a as never)
    time.advance(59_000)
    const b = await load(store, 's1')
    t.ok(b, 'sliding: idle counts from the last use')
    await save(store, b as never)
    time.advance(40_000) // 158 s after creation, 40 s after the last use
    t.equal(await load(store, 's1'), null, 'absolute lifetime reached')
    await save(store, newSession('s2', { userId: 'bob' }))
    time.advance(61_000)
    t.equal(await load(store, 's2'), null, 'idle timeout reached')
  })

  t.test(`${kind}: per-user index: list, count, revoke one, revoke all but the current`, async (t) => {
    const { store, sessions } = await setup(t)
    store.noteClient('s1', { ip: '10.0.0.1', userAgent: 'Firefox' })
    await save(store, newSession('s1', { userId: 'ada' }))
    await save(store, newSession('s2', { userId: 'ada' }))
    await save(store, newSession('s3', { userId: 'ada' }))
    await save(store, newSession('s4', { userId: 'bob' }))
    await save(store, newSession('anon', { cart: ['x'] }))
    t.equal(await sessions.count('ada'), 3)
    t.equal(await sessions.count('bob'), 1)
    t.equal(await sessions.countAll(), 5)
    const list = await sessions.list('ada', { current: sessionHandle('s1') })
    t.equal(list.length, 3)
    const first = list.find((s) => s.current)
    t.match(first, { id: sessionHandle('s1'), userId: 'ada', ip: '10.0.0.1', userAgent: 'Firefox', createdAt: Number, lastSeenAt: Number })
    t.notOk(JSON.stringify(list).includes('"s1"'), 'the list never holds a session id')

    t.equal(await sessions.revoke('bob', sessionHandle('s2')), false, 'not his session')
    t.ok(await load(store, 's2'))
    t.equal(await sessions.revoke('ada', sessionHandle('s2')), true)
    t.equal(await load(store, 's2'), null)
    t.equal(await sessions.revokeAll('ada', { except: sessionHandle('s1') }), 1)
    t.equal(await load(store, 's3'), null)
    t.ok(await load(store, 's1'), 'the current one stays')
    t.equal(await sessions.count('ada'), 1)
    await destroy(store, 's1')
    t.equal(await sessions.count('ada'), 0)
    t.equal(await sessions.countAll(), 2)
  })

  t.test(`${kind}: a user change moves the session between indexes`, async (t) => {
    const { store, sessions } = await setup(t)
    await save(store, newSession('s1', { userId: 'ada' }))
    const a = await load(store, 's1')
    if (a === null) throw new Error('not loaded')
    a['userId'] = 'bob'
    await save(store, a)
    t.equal(await sessions.count('ada'), 0)
    t.equal(await sessions.count('bob'), 1)
    delete a['userId']
    await save(store, a)
    t.equal(await sessions.count('bob'), 0)
  })
}

t.test('redis: keys hold a hash of the id, per-field data, and TTLs bounded by the idle timeout', async (t) => {
  const server = await useRedis(t)
  const client = await connect(t, server, 'app:')
  const { store } = makeStore(client, { idleTimeout: 60_000 })
  await save(store, newSession('secret-session-id', { userId: 'ada', cart: ['a', 'b'] }))
  const keys = (await server.cli('KEYS', '*')).split('\n').sort()
  const handle = sessionHandle('secret-session-id')
  t.same(keys, [`app:${allSessionsKey(handle)}`, ...expiryLedgerKeys(handle).map((key) => `app:${key}`), 'app:sess:user:{ada}', `app:sess:{${handle}}`].sort())
  t.notOk(keys.join(' ').includes('secret-session-id'), 'no key names the session id')
  t.equal(await server.cli('HGET', `app:sess:{${handle}}`, 'd:cart'), '["a","b"]')
  const pttl = Number(await server.cli('PTTL', `app:sess:{${handle}}`))
  t.ok(pttl > 55_000 && pttl <= 60_000, `session TTL ${pttl}`)
  t.ok(Number(await server.cli('PTTL', 'app:sess:user:{ada}')) > 55_000, 'the index expires too')
  t.equal(await server.cli('ZSCORE', 'app:sess:user:{ada}', handle), await server.cli('HGET', `app:sess:{${handle}}`, 'm:exp'))
})

t.test('redis: index entries expire with their sessions and are pruned on the next write', async (t) => {
  const server = await useRedis(t)
  const client = await connect(t, server)
  const { store, sessions } = makeStore(client, { idleTimeout: 300 })
  for (let i = 0; i < 20; i++) await save(store, newSession(`old${i}`, { userId: 'ada' }))
  t.equal(await sessions.count('ada'), 20)
  await new Promise((resolve) => setTimeout(resolve, 400))
  t.equal(await sessions.count('ada'), 0, 'expired entries are not counted')
  t.equal(await sessions.countAll(), 0)
  t.equal(await server.cli('EXISTS', 'sess:user:{ada}'), '0', 'the whole index key expired with its sessions')
  const { store: longer } = makeStore(client, { idleTimeout: 60_000 })
  for (let i = 0; i < 20; i++) await save(longer, newSession(`s${i}`, { userId: 'ada' }))
  await new Promise((resolve) => setTimeout(resolve, 400))
  for (let i = 0; i < 20; i++) await save(store, newSession(`short${i}`, { userId: 'ada' }))
  await new Promise((resolve) => setTimeout(resolve, 400))
  await save(longer, newSession('new', { userId: 'ada' }))
  t.equal(await server.cli('ZCARD', 'sess:user:{ada}'), '21', 'the 20 expired entries were removed by ZREMRANGEBYSCORE')
  // The total index is 16 buckets, each pruned (by the same script) when a session of its own is written.
  t.equal(await sessions.countAll(), 21, 'the total counts the 21 live sessions')
})

t.test('redis: a stored payload failing the schema starts a fresh session and is deleted', async (t) => {
  const server = await useRedis(t)
  const client = await connect(t, server)
  const { store } = makeStore(client)
  await save(store, newSession('s1', { userId: 'ada' }))
  const key = `sess:{${sessionHandle('s1')}}`
  await server.cli('HSET', key, 'd:userId', '42')
  t.equal(await load(store, 's1'), null)
  t.equal(await server.cli('EXISTS', key), '0')
  await save(store, newSession('s2', { userId: 'bob' }))
  await server.cli('HSET', `sess:{${sessionHandle('s2')}}`, 'd:cart', '{not json')
  t.equal(await load(store, 's2'), null)
  t.equal(store.stats().invalid, 2)
})

t.test('redis: failures become SessionUnavailableError within the time budget', async (t) => {
  const server = await useRedis(t)
  // The bound is the client's own commandTimeout (no timer per call): a client built for a 300 ms budget.
  const client = await connect(t, server, undefined, 300)
  const { store } = makeStore(client, { timeout: 300, retryAfter: 2 })
  await save(store, newSession('s1', { userId: 'ada' }))
  server.freeze()
  let frozen = true
  t.teardown(() => { if (frozen) server.thaw() })
  const started = Date.now()
  await t.rejects(load(store, 's1'), { code: 'FRS_SESSION_UNAVAILABLE', statusCode: 503, headers: { 'retry-after': '2' } })
  t.ok(Date.now() - started < 900, 'within the budget')
  server.thaw()
  frozen = false
  await server.kill()
  await t.rejects(load(store, 's1'), { code: 'FRS_SESSION_UNAVAILABLE', message: /temporarily unavailable/ })
  t.ok(store.stats().errors >= 2)
})
