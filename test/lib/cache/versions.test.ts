// Generations and tag versions kept in process: a Redis hit is one GET, and an invalidation whose
// message is lost is still seen within syncInterval (engine.ts states the bound).
import t from 'tap'
import { useRedis, waitFor } from '../../helpers/index.js'
import { encodeEnvelope } from '../../../lib/cache/entry.js'
import { commandCalls, instance, redisWithInstance } from './fixtures.js'

const totalCalls = async (server: { cli: (...args: string[]) => Promise<string> }): Promise<number> => {
  const info = await server.cli('INFO', 'commandstats')
  let total = 0
  for (const match of info.matchAll(/cmdstat_(\w+):calls=(\d+)/g)) {
    if (!['info', 'ping', 'client', 'subscribe', 'publish'].includes(match[1] ?? '')) total += Number(match[2])
  }
  return total
}

t.test('a Redis hit is one command: one GET, no MGET of versions (get, getOrSet, tags declared or carried)', async (t) => {
  const { server, cache } = await redisWithInstance(t, { memory: false })
  const api = cache.namespace('api', { tags: ['api'] })
  await cache.set('a', 1, { tags: ['users'] })
  await api.set('b', 2)
  // The first reads learn the versions (the tag carried by 'a' is not declared by the reader).
  t.equal(await cache.get('a'), 1)
  t.equal(await api.getOrSet('b', () => 0), 2)
  const before = await totalCalls(server)
  const getsBefore = await commandCalls(server, 'get')
  const hits = 50
  for (let i = 0; i < hits; i++) {
    t.equal(await cache.get('a'), 1)
    t.equal(await api.getOrSet('b', () => 0), 2)
    t.equal(await cache.getOrSet('a', () => 0, { tags: ['users'] }), 1)
  }
  t.equal(await commandCalls(server, 'get') - getsBefore, hits * 3, 'one GET per hit')
  t.equal(await totalCalls(server) - before, hits * 3, 'and nothing else (no MGET, no EVAL)')
})

t.test('a lost tag invalidation is seen within syncInterval, by the Redis tier and the memory tier', async (t) => {
  const server = await useRedis(t)
  const withMemory = await instance(t, server, { syncInterval: '200ms' })
  const redisOnly = await instance(t, server, { syncInterval: '200ms', memory: false })
  await withMemory.cache.set('u', 'old', { tags: ['users'] })
  t.equal(await withMemory.cache.get('u'), 'old')
  t.equal(await redisOnly.cache.get('u'), 'old')
  // An invalidateTags whose message never arrived: the version moves in Redis, nobody is told.
  await server.cli('INCR', 'cache:tag:{users}')
  await waitFor(async () => (await withMemory.cache.get('u')) === undefined, { what: 'the memory tier to drop it', timeoutMs: 5_000 })
  await waitFor(async () => (await redisOnly.cache.get('u')) === undefined, { what: 'the Redis tier to judge it stale', timeoutMs: 5_000 })
  t.ok(withMemory.events.some((e) => e.type === 'invalidation-received' && e.kind === 'tags'), 'counted as an invalidation received')
  // New entries carry the new version and are hits again.
  await redisOnly.cache.set('u', 'new', { tags: ['users'] })
  t.equal(await withMemory.cache.get('u'), 'new')
})

t.test('a lost clear() (generation bump) is seen within syncInterval', async (t) => {
  const server = await useRedis(t)
  const a = await instance(t, server, { syncInterval: '200ms' })
  const api = a.cache.namespace('api')
  await api.set('k', 1)
  t.equal(await api.get('k'), 1)
  await server.cli('INCR', 'cache:gen:{api}')
  await waitFor(async () => (await api.get('k')) === undefined, { what: 'the namespace to read as cleared', timeoutMs: 5_000 })
  t.pass('cleared')
})

t.test('a lost write message: the memory copy is checked against Redis within syncInterval', async (t) => {
  const server = await useRedis(t)
  const a = await instance(t, server, { syncInterval: '200ms' })
  await a.cache.set('k', 'old')
  t.equal(await a.cache.get('k'), 'old', 'in memory')
  // Another instance wrote a new value, and its message was lost.
  const now = Date.now()
  await server.cli('SET', 'cache:e:{}default:k', encodeEnvelope({ format: 2, value: 'new', createdAt: now, expiresAt: now + 60_000, staleUntil: now + 60_000, generation: '0', tags: {} }))
  await waitFor(async () => (await a.cache.get('k')) === 'new', { what: 'the new value', timeoutMs: 5_000 })
  t.pass('seen')
})

t.test('an invalidation message makes the receiver read the versions it names once, never take them from the message', async (t) => {
  const server = await useRedis(t)
  const a = await instance(t, server, { syncInterval: '1h' })
  const b = await instance(t, server, { syncInterval: '1h', memory: false })
  await a.cache.set('u', 1, { tags: ['users'] })
  t.equal(await b.cache.get('u'), 1)
  await a.cache.invalidateTags(['users'])
  await waitFor(() => b.events.some((e) => e.type === 'invalidation-received'), { what: 'the message' })
  const reads = async (): Promise<number> => await commandCalls(server, 'mget') + await commandCalls(server, 'get')
  const before = await reads()
  t.equal(await b.cache.get('u'), undefined, 'b judges the old entry stale')
  t.equal(await reads() - before, 2, 'the entry and, once, the version the message named (anyone may PUBLISH: see invalidation-messages.test.ts)')
  const again = await reads()
  await b.cache.get('u')
  t.equal(await reads() - again, 1, 'known again: the next lookup reads the entry alone')
})

t.test('after a reconnect the versions are read again (a bump may have been missed meanwhile)', async (t) => {
  const server = await useRedis(t)
  const a = await instance(t, server, { syncInterval: '1h', memory: false })
  await a.cache.set('u', 1, { tags: ['users'] })
  t.equal(await a.cache.get('u'), 1)
  await server.cli('INCR', 'cache:tag:{users}') // lost while "disconnected"
  a.cache.onReconnect()
  t.equal(await a.cache.get('u'), undefined, 'the first read after the reconnect sees the new version')
})

t.test('memory hits share one value, deep-frozen with freeze: a caller cannot change what others read', async (t) => {
  const { cache } = await redisWithInstance(t, { freeze: true })
  const user = { id: 1, name: 'Ada', roles: ['admin'] }
  await cache.set('user', user)
  user.name = 'changed by the writer afterwards'
  const read = await cache.get<typeof user>('user')
  t.same(read, { id: 1, name: 'Ada', roles: ['admin'] }, 'the tier kept its own copy')
  t.ok(Object.isFrozen(read) && Object.isFrozen(read?.roles), 'frozen, deeply')
  t.throws(() => { (read as typeof user).name = 'x' }, TypeError)
  t.equal(await cache.get('user'), read, 'the same object for every memory hit: no copy per hit')
})

t.test('freeze: false (the production default) shares the value unfrozen; the tier still keeps its own copy', async (t) => {
  const { cache } = await redisWithInstance(t, { freeze: false })
  const user = { id: 1, name: 'Ada' }
  await cache.set('user', user)
  user.name = 'changed by the writer afterwards'
  const read = await cache.get<typeof user>('user')
  t.same(read, { id: 1, name: 'Ada' })
  t.notOk(Object.isFrozen(read))
  t.equal(await cache.get('user'), read, 'no copy per hit')
})
