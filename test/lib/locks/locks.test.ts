// Locks against a real Redis: the bare-client primitive, the Locks API (wait, withLock, auto-extend,
// lost locks), bounded errors while Redis is down or frozen, and the in-process store.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { useRedis, type RedisServer, type TeardownScope } from '../../helpers/index.js'
import {
  Locks, MemoryLockStore, RedisLockStore, extendLock, lockKeys, releaseLock, tryFencedLock, tryLock
} from '../../../lib/locks/locks.js'
import { LockBusyError, LockLostError } from '../../../lib/errors/index.js'

const TIMEOUT_MS = 1_000

async function connect (t: TeardownScope, server: RedisServer, keyPrefix = ''): Promise<Redis> {
  const client = new Redis({
    port: server.port,
    host: server.host,
    keyPrefix,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: TIMEOUT_MS,
    retryStrategy: () => 100,
    lazyConnect: true
  })
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  await client.connect()
  return client
}

t.test('primitive: only the owner releases or extends; fencing tokens increase; the cache-style lock has no counter', async (t) => {
  const server = await useRedis(t)
  const client = await connect(t, server, 'app:')
  const { key, fence } = lockKeys('job')
  t.equal(key, 'lock:{job}')
  t.equal(fence, 'lock:{job}:fence', 'the counter shares the hash tag of the lock')

  const first = await tryFencedLock(client, key, fence, 'owner-a', 30_000)
  t.equal(first, 1)
  t.equal(await tryFencedLock(client, key, fence, 'owner-b', 30_000), undefined, 'taken')
  t.notOk(await releaseLock(client, key, 'owner-b'), 'a non-owner cannot release')
  t.notOk(await extendLock(client, key, 'owner-b', 10_000), 'a non-owner cannot extend')
  t.equal(await server.cli('GET', 'app:lock:{job}'), 'owner-a', 'keys carry the app prefix')

  await server.cli('PEXPIRE', 'app:lock:{job}', '1') // owner-a's lock expires: owner-b takes it
  await sleep(10)
  const second = await tryFencedLock(client, key, fence, 'owner-b', 5_000)
  t.equal(second, 2, 'a later owner gets a larger token')
  t.notOk(await releaseLock(client, key, 'owner-a'), 'the stale owner cannot release the new owner\'s lock')
  t.notOk(await extendLock(client, key, 'owner-a', 60_000), 'nor extend it')
  t.equal(await server.cli('GET', 'app:lock:{job}'), 'owner-b')
  t.ok(await extendLock(client, key, 'owner-b', 60_000))
  t.ok(Number(await server.cli('PTTL', 'app:lock:{job}')) > 50_000, 'extended')
  t.ok(await releaseLock(client, key, 'owner-b'))
  t.equal(await server.cli('EXISTS', 'app:lock:{job}'), '0')

  t.ok(await tryLock(client, 'stampede', 'x', 1_000), 'SET NX PX lock for the cache')
  t.notOk(await tryLock(client, 'stampede', 'y', 1_000))
  t.ok(await releaseLock(client, 'stampede', 'x'))

  await server.cli('SCRIPT', 'FLUSH')
  t.equal(await tryFencedLock(client, key, fence, 'owner-c', 1_000), 3, 'EVAL after NOSCRIPT')
})

t.test('Locks: wait and busy, withLock always releases, tokens increase', async (t) => {
  const server = await useRedis(t)
  const locks = new Locks({ store: new RedisLockStore(await connect(t, server), TIMEOUT_MS) })

  const held = await locks.acquire('report', { ttl: '5s' })
  t.equal(held.fencingToken, 1)
  t.equal(await locks.tryAcquire('report'), undefined)
  const started = Date.now()
  await t.rejects(locks.acquire('report', { wait: 150, retryDelay: 20 }), { code: 'FRS_LOCK_BUSY', name: 'LockBusyError' })
  t.ok(Date.now() - started >= 140, 'waited for `wait`')

  setTimeout(() => { held.release().catch(() => {}) }, 100)
  const next = await locks.acquire('report', { wait: 2_000, retryDelay: 20 })
  t.equal(next.fencingToken, 2, 'acquired once the holder released')
  t.ok(await next.release())
  t.notOk(await next.release(), 'a second release is a no-op')

  await t.rejects(locks.withLock('report', async () => { throw new Error('boom') }), { message: 'boom' })
  t.equal(await server.cli('EXISTS', 'lock:{report}'), '0', 'released after the work threw')
  const result = await locks.withLock('report', async (lock) => lock.fencingToken)
  t.equal(result, 4)
  t.equal(await server.cli('EXISTS', 'lock:{report}'), '0')
  t.match(locks.stats(), { acquisitions: 4, busy: 1, held: 0, failures: 0 })
  t.ok(locks.stats().contention >= 2)
  await t.rejects(locks.tryAcquire(''), { code: 'FRS_LOCK_NAME_INVALID' })
})

t.test('withLock extends the lock while the work runs, and reports a lost lock', async (t) => {
  const server = await useRedis(t)
  const locks = new Locks({ store: new RedisLockStore(await connect(t, server), TIMEOUT_MS) })
  const outlived = await locks.withLock('long', async () => {
    await sleep(1_300) // well past the 400 ms ttl
    return Number(await server.cli('PTTL', 'lock:{long}'))
  }, { ttl: 400 })
  t.ok(outlived > 0, 'still held after three ttls')

  let signal: AbortSignal | undefined
  await t.rejects(locks.withLock('stolen', async (_lock, s) => {
    signal = s
    await server.cli('SET', 'lock:{stolen}', 'someone-else') // a takeover, as after an expiry
    await sleep(300)
    return 'done'
  }, { ttl: 150 }), { code: 'FRS_LOCK_LOST' })
  t.ok(signal?.aborted, 'the work was told at once through its signal')
  t.ok(signal?.reason instanceof LockLostError)
  t.equal(await server.cli('GET', 'lock:{stolen}'), 'someone-else', 'and the other owner\'s lock was left alone')
  t.equal(locks.stats().lost, 1)
})

t.test('Redis down or frozen: FRS_LOCK_UNAVAILABLE within the command timeout', async (t) => {
  const server = await useRedis(t)
  const locks = new Locks({ store: new RedisLockStore(await connect(t, server), TIMEOUT_MS) })
  const lock = await locks.acquire('a', { ttl: '10s' })

  server.freeze()
  let started = Date.now()
  await t.rejects(locks.acquire('b'), { code: 'FRS_LOCK_UNAVAILABLE', message: /Redis/ })
  const frozenMs = Date.now() - started
  t.ok(frozenMs < TIMEOUT_MS + 500, `frozen: failed in ${frozenMs} ms`)
  await t.rejects(lock.extend('10s'), { code: 'FRS_LOCK_UNAVAILABLE' })
  server.thaw()

  await server.kill()
  started = Date.now()
  await t.rejects(locks.acquire('c', { wait: 5_000 }), { code: 'FRS_LOCK_UNAVAILABLE' })
  const downMs = Date.now() - started
  t.ok(downMs < TIMEOUT_MS, `down: failed in ${downMs} ms (no waiting on a dead server)`)
  await t.rejects(lock.release(), { code: 'FRS_LOCK_UNAVAILABLE' })
  t.ok(locks.stats().failures >= 2)
  t.comment(`frozen ${frozenMs} ms, down ${downMs} ms`)
})

t.test('memory store: same rules in one process', async (t) => {
  const locks = new Locks({ store: new MemoryLockStore() })
  const a = await locks.acquire('k', { ttl: 50 })
  t.equal(await locks.tryAcquire('k'), undefined)
  await sleep(70)
  const b = await locks.acquire('k', { ttl: 1_000 })
  t.ok(b.fencingToken > a.fencingToken)
  t.notOk(await a.release(), 'the expired owner cannot release the new lock')
  t.notOk(await a.extend(1_000))
  t.ok(await b.release())
  await t.rejects(locks.acquire('k2', { ttl: 1_000 }).then(() => locks.acquire('k2', { wait: 30 })), LockBusyError)
  t.equal(await locks.withLock('k3', () => 'ok'), 'ok')
  await locks.close()
  t.equal(locks.stats().held, 0)
})
