// Issue 28 item 7: on Redis >= 7.4 (and Valkey >= 9) the per-user session index is a hash whose fields
// expire themselves (HPEXPIREAT): no prune on every sign-in, refresh and list. Detected at connect from
// INFO; Redis 7.0 keeps the sorted set. Both paths are run here: the run's server (Debian's Redis 7.0 or
// Valkey 8: the sorted set) and Redis 7.4.1 from REDIS74_SERVER (skipped, naming it, when unset).
import t, { type Test } from 'tap'
import { REDIS_SERVER_BIN, serverFromEnv, useRedis, waitFor, type RedisServer } from '../../helpers/index.js'
import { RedisSessionBackend, sessionHandle } from '../../../lib/session/index.js'
import { detectHashFieldExpiry } from '../../../lib/redis/index.js'
import { connect, destroy, load, makeStore, newSession, save } from './fixtures.js'
import type { Redis } from 'ioredis'

async function setup (t: Test, server: RedisServer): Promise<{ client: Redis, backend: RedisSessionBackend } & ReturnType<typeof makeStore>> {
  const client = await connect(t, server, 'app:')
  const made = makeStore(client)
  const backend = (made.store as unknown as { backend: RedisSessionBackend }).backend
  backend.useHashFieldExpiry(await detectHashFieldExpiry(client))
  return { client, backend, ...made }
}

t.test(`the run's server (${REDIS_SERVER_BIN}): no hash-field expiry, the sorted-set index as before`, async (t) => {
  const server = await useRedis(t)
  const version = /^(valkey_version|redis_version):(\d+\.\d+)/m.exec(await server.cli('INFO', 'server'))
  if (version !== null && ((version[1] === 'redis_version' && Number(version[2]) >= 7.4) || (version[1] === 'valkey_version' && Number(version[2]) >= 9))) {
    t.comment('this run\'s server has hash-field expiry: the Redis 7.4 tests below cover it')
    return
  }
  const { client, backend, store, sessions } = await setup(t, server)
  t.equal(backend.hashFieldExpiry, false, 'detected: none')
  await save(store, newSession('s1', { userId: 'ada' }))
  await save(store, newSession('s2', { userId: 'ada' }))
  t.equal(await server.cli('TYPE', 'app:sess:user:{ada}'), 'zset')
  t.equal(await server.cli('EXISTS', 'app:sess:uh:{ada}'), '0')
  t.equal(await sessions.count('ada'), 2)
  t.equal(await sessions.revokeAll('ada'), 2)
  t.equal(await sessions.count('ada'), 0)
  t.ok(client.status === 'ready')
})

const redis74 = serverFromEnv('REDIS74_SERVER')
t.test('Redis 7.4: the user index is a hash whose fields expire themselves', 'skip' in redis74 ? { skip: redis74.skip } : {}, async (t) => {
  if (!('bin' in redis74)) return
  const server = await useRedis(t, { bin: redis74.bin })
  const { backend, store, sessions } = await setup(t, server)
  t.equal(backend.hashFieldExpiry, true, 'detected at connect')

  store.noteClient('s1', { ip: '10.0.0.1', userAgent: 'Firefox' })
  await save(store, newSession('s1', { userId: 'ada' }))
  await save(store, newSession('s2', { userId: 'ada' }))
  await save(store, newSession('s3', { userId: 'bob' }))
  t.equal(await server.cli('TYPE', 'app:sess:uh:{ada}'), 'hash')
  t.equal(await server.cli('EXISTS', 'app:sess:user:{ada}'), '0', 'no sorted set written')
  const fieldExpiry = await server.cli('HPEXPIRETIME', 'app:sess:uh:{ada}', 'FIELDS', '1', sessionHandle('s1'))
  t.equal(fieldExpiry, await server.cli('HGET', `app:sess:{${sessionHandle('s1')}}`, 'm:exp'), 'the field expires when the session does')
  t.equal(await sessions.count('ada'), 2)
  const list = await sessions.list('ada', { current: sessionHandle('s1') })
  t.same(list.map((s) => s.id).sort(), [sessionHandle('s1'), sessionHandle('s2')].sort())
  t.equal(await sessions.revoke('ada', sessionHandle('s2')), true)
  t.equal(await server.cli('HEXISTS', 'app:sess:uh:{ada}', sessionHandle('s2')), '0', 'revoke drops the field')
  await destroy(store, 's1')
  t.equal(await sessions.count('ada'), 0)
  t.equal(await server.cli('EXISTS', 'app:sess:uh:{ada}'), '0', 'the last field gone, the key is gone')
  t.equal(await sessions.count('bob'), 1)

  // A refresh (the load script, due here) moves the field's expiry with the session's.
  const before = Number(await server.cli('HPEXPIRETIME', 'app:sess:uh:{bob}', 'FIELDS', '1', sessionHandle('s3')))
  const refreshed = await backend.load(sessionHandle('s3'), { now: Date.now() + 120_000, every: 0, idleTimeout: 86_400_000, ttl: 7 * 86_400_000, maxLifetime: 7 * 86_400_000 })
  t.ok((refreshed?.refreshedTtl ?? 0) > 0, 'refreshed by the script')
  const after = Number(await server.cli('HPEXPIRETIME', 'app:sess:uh:{bob}', 'FIELDS', '1', sessionHandle('s3')))
  t.ok(after >= before + 100, `the index field's expiry moved (${before} → ${after})`)

  // Expiry without a prune: a field past its time disappears on its own.
  await server.cli('HPEXPIRE', 'app:sess:uh:{bob}', '50', 'FIELDS', '1', sessionHandle('s3'))
  await waitFor(async () => await server.cli('EXISTS', 'app:sess:uh:{bob}') === '0', { what: 'the expired field (and key) to go by itself', timeoutMs: 5_000 })
})

t.test('Redis 7.4: entries of the sorted-set index (written before the upgrade) are still listed, counted and revoked', 'skip' in redis74 ? { skip: redis74.skip } : {}, async (t) => {
  if (!('bin' in redis74)) return
  const server = await useRedis(t, { bin: redis74.bin })
  const { backend, store, sessions } = await setup(t, server)
  backend.useHashFieldExpiry(false)
  await save(store, newSession('old', { userId: 'ada' }))
  t.equal(await server.cli('TYPE', 'app:sess:user:{ada}'), 'zset')
  backend.useHashFieldExpiry(true)
  await save(store, newSession('new', { userId: 'ada' }))
  t.equal(await sessions.count('ada'), 2, 'both forms counted')
  t.equal((await sessions.list('ada')).length, 2)
  t.equal(await sessions.revokeAll('ada'), 2)
  t.equal(await load(store, 'old'), null)
  t.equal(await sessions.count('ada'), 0)
})

t.test('Redis 7.4: a probe that later reads the flag as off (failover, failed INFO) hides no session from revokeAll or the cap', 'skip' in redis74 ? { skip: redis74.skip } : {}, async (t) => {
  if (!('bin' in redis74)) return
  const server = await useRedis(t, { bin: redis74.bin })
  const { backend, store, sessions } = await setup(t, server)
  await save(store, newSession('h1', { userId: 'ada' }))
  await save(store, newSession('h2', { userId: 'ada' }))
  backend.useHashFieldExpiry(false) // what a failover to an older server reports
  await save(store, newSession('z1', { userId: 'ada' }))
  t.equal(await sessions.count('ada'), 3, 'both index forms counted')
  t.equal((await sessions.list('ada')).length, 3)
  t.equal(await sessions.revokeAll('ada'), 3, 'a password reset signs out every session')
  t.equal(await load(store, 'h1'), null)
  t.equal(await sessions.count('ada'), 0)
})
