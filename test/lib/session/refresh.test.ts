// Issue 16: a read that is due for refresh still costs one command. On a standalone server (and
// Sentinel) the load script refreshes the session, the user's index and the total index bucket in the
// same call; on Cluster the load is a plain HGETALL and the store's touch refreshes (a second call,
// once per cadence). Run against real Redis; commands counted with INFO commandstats.
import t from 'tap'
import { Cluster } from 'ioredis'
import { useCluster, useRedis, type RedisServer } from '../../helpers/index.js'
import { allSessionsKey, sessionHandle, sessionKey, userIndexKey } from '../../../lib/session/index.js'
import { clock, connect, destroy, load, makeStore, newSession, save } from './fixtures.js'
import { stopSlotsRefreshOnClose } from '../../../lib/redis/index.js'

async function executed (server: RedisServer): Promise<Record<string, number>> {
  const stats = await server.cli('INFO', 'commandstats')
  const out: Record<string, number> = {}
  for (const [, name, calls] of stats.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)) {
    if (name === 'ping' || name === 'info' || name === undefined) continue
    const key = name === 'eval' ? 'evalsha' : name // the first call of a script on a connection is an EVAL
    out[key] = (out[key] ?? 0) + Number(calls)
  }
  return out
}

function delta (before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [name, n] of Object.entries(after)) if (n !== (before[name] ?? 0)) out[name] = n - (before[name] ?? 0)
  return out
}

t.test('standalone: a due read refreshes the session and both indexes in its one call, whatever the user id', async (t) => {
  const server = await useRedis(t)
  const client = await connect(t, server, 'app:')
  const time = clock()
  const { store, sessions } = makeStore(client, { now: time.now, idleTimeout: 60_000, schema: undefined }) // cadence 6 s
  // User ids that encodeURIComponent changes: the script builds the same index key in Lua.
  const users = ['ada', 'ada@example.com', 'é {x} %/?', '💡 ~*()!\'', '{}']
  for (const [i, user] of users.entries()) await save(store, newSession(`r${i}`, { userId: user }))
  const indexKeys = (await server.cli('--scan', '--pattern', 'app:sess:user:*')).split('\n').filter(Boolean).sort()
  t.same(indexKeys, users.map((u) => `app:${userIndexKey(u)}`).sort())

  time.advance(1_000)
  let before = await executed(server)
  const notDue = await load(store, 'r0')
  t.equal(notDue !== null && store.refreshOf(notDue), 'none')
  t.same(delta(before, await executed(server)), { hgetall: 1 }, 'not due, and known so by this instance: a plain HGETALL')
  // Another instance (another store over the same Redis) does not know when r0 was last seen: it sends
  // the script, which finds the session not due and writes nothing.
  const { store: other } = makeStore(client, { now: time.now, idleTimeout: 60_000, schema: undefined })
  before = await executed(server)
  const elsewhere = await load(other, 'r0')
  t.equal(elsewhere !== null && other.refreshOf(elsewhere), 'none')
  t.same(delta(before, await executed(server)), { evalsha: 1, hgetall: 1 }, 'not due, unknown here: the script reads, no write')
  before = await executed(server)
  await load(other, 'r0')
  t.same(delta(before, await executed(server)), { hgetall: 1 }, 'known now: a plain HGETALL')

  time.advance(6_000)
  for (const [i, user] of users.entries()) {
    const handle = sessionHandle(`r${i}`)
    const oldExp = await server.cli('HGET', `app:${sessionKey(handle)}`, 'm:exp')
    before = await executed(server)
    const loaded = await load(store, `r${i}`)
    if (loaded === null) throw new Error('not loaded')
    t.equal(store.refreshOf(loaded), 'refreshed', `${user}: refreshed by the load`)
    t.match(delta(before, await executed(server)), { evalsha: 1, hgetall: 1, hset: 1, zadd: 2 }, `${user}: one call`)
    const exp = await server.cli('HGET', `app:${sessionKey(handle)}`, 'm:exp')
    t.ok(Number(exp) > Number(oldExp), `${user}: expiry moved`)
    t.ok(Number(await server.cli('HGET', `app:${sessionKey(handle)}`, 'm:seen')) >= time.now() - 1_000, `${user}: last seen moved`)
    t.equal(await server.cli('ZSCORE', `app:${userIndexKey(user)}`, handle), exp, `${user}: the user index holds the new expiry`)
    t.equal(await server.cli('ZSCORE', `app:${allSessionsKey(handle)}`, handle), exp, `${user}: the total index bucket too`)
    const pttl = Number(await server.cli('PTTL', `app:${sessionKey(handle)}`))
    t.ok(pttl > 59_000 && pttl <= 60_000, `${user}: TTL back to the idle timeout (${pttl})`)
    t.equal(await sessions.count(user), 1)
  }
  const after = (await server.cli('--scan', '--pattern', 'app:sess:user:*')).split('\n').filter(Boolean).sort()
  t.same(after, indexKeys, 'no stray index key: the script encodes user ids as userIndexKey does')
  before = await executed(server)
  const loaded = await load(store, 'r0')
  t.equal(loaded !== null && store.refreshOf(loaded), 'none', 'just refreshed: not due again')
  t.same(delta(before, await executed(server)), { hgetall: 1 })
  // The other instance's knowledge is older than the refresh: its next read past its own cadence sends
  // the script, which finds the session refreshed meanwhile (not due) and writes nothing.
  time.advance(1_000)
  before = await executed(server)
  const stale = await load(other, 'r0')
  t.equal(stale !== null && other.refreshOf(stale), 'none')
  t.same(delta(before, await executed(server)), { evalsha: 1, hgetall: 1 }, 'no write from the stale instance')
  t.equal(store.stats().touches, users.length, 'each refresh counted as a touch')
  t.equal(other.stats().touches, 0)
})

t.test('standalone: a due read never brings back a revoked, idle or absolute-expired session', async (t) => {
  const server = await useRedis(t)
  const client = await connect(t, server)
  const time = clock()
  const { store, sessions } = makeStore(client, { now: time.now, idleTimeout: 60_000, absoluteTimeout: 100_000 })
  await save(store, newSession('gone', { userId: 'ada' }))
  await save(store, newSession('idle', { userId: 'ada' }))
  await save(store, newSession('old', { userId: 'bob' }))
  await destroy(store, 'gone')
  time.advance(30_000)
  const old = await load(store, 'old') // refreshed at 30 s, absolute deadline at 100 s
  t.equal(old !== null && store.refreshOf(old), 'refreshed')
  // Past the idle timeout by our clock while Redis still holds the key (its TTL runs on Redis' clock).
  time.advance(31_000)
  t.equal(await load(store, 'gone'), null, 'revoked: stays gone')
  t.equal(await server.cli('EXISTS', `sess:{${sessionHandle('gone')}}`), '0', 'no hash written back')
  t.equal(await server.cli('ZSCORE', 'sess:user:{ada}', sessionHandle('gone')), '', 'no index entry written back')
  t.equal(await load(store, 'idle'), null, 'idle past the timeout: not refreshed, discarded')
  t.equal(await sessions.count('ada'), 0)
  time.advance(40_000) // 101 s after creation, 40 s after the last refresh
  t.equal(await load(store, 'old'), null, 'absolute deadline: not refreshed, discarded')
  t.equal(await sessions.countAll(), 0)
})

t.test('standalone: reads started together go out in one socket write and each gets its own session', async (t) => {
  const server = await useRedis(t)
  const client = await connect(t, server)
  const { store } = makeStore(client)
  for (let i = 0; i < 30; i++) await save(store, newSession(`b${i}`, { userId: `u${i}`, theme: String(i) }))
  // What reaches the socket's handle: one _write or _writev call is one write syscall.
  type Sink = (...args: unknown[]) => unknown
  const stream = (client as unknown as { stream: { _write: Sink, _writev: Sink } }).stream
  const { _write: write, _writev: writev } = stream
  let writes = 0
  stream._write = function (...args: unknown[]) { writes++; return write.apply(this, args) }
  stream._writev = function (...args: unknown[]) { writes++; return writev.apply(this, args) }
  const restore = (): void => { stream._write = write; stream._writev = writev }
  t.teardown(restore)
  const loaded = await Promise.all(Array.from({ length: 30 }, (_, i) => load(store, i === 7 ? 'missing' : `b${i}`)))
  restore()
  t.equal(writes, 1, '30 reads, one socket write')
  loaded.forEach((session, i) => {
    if (i === 7) t.equal(session, null, 'a missing session in the batch is null')
    else t.match(session, { userId: `u${i}`, theme: String(i) })
  })
})

t.test('cluster: a due read is a plain HGETALL; the touch refreshes in a second call', async (t) => {
  const cluster = await useCluster(t)
  const client = stopSlotsRefreshOnClose(new Cluster(cluster.startupNodes, { redisOptions: { commandTimeout: 2_000 } })) // lib/redis/cluster-close.ts
  t.teardown(() => client.disconnect())
  const time = clock()
  const { store, sessions } = makeStore(client as never, { now: time.now, idleTimeout: 60_000 })
  await save(store, newSession('c1', { userId: 'ada' }))
  const savedAt = time.now()
  time.advance(7_000)
  const loaded = await load(store, 'c1')
  if (loaded === null) throw new Error('not loaded')
  t.equal(store.refreshOf(loaded), 'due', 'not refreshed by the load (the user index is in another slot)')
  await save(store, loaded)
  t.equal(store.refreshOf(loaded), 'none', 'the touch refreshed it')
  const [info] = await sessions.list('ada')
  t.ok((info?.lastSeenAt ?? 0) >= savedAt + 7_000, 'last seen moved')
  t.equal(store.stats().touches, 1)
})
