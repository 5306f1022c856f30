// Behaviour Redis decides: what is stored, when it expires, versions, generations, round trips.
import t from 'tap'
import Type from 'typebox'
import { useRedis, waitFor } from '../../helpers/index.js'
import { decodeEnvelope, encodeEnvelope, type Envelope } from '../../../lib/cache/entry.js'
import { commandCalls, instance, redisWithInstance } from './fixtures.js'

const stored = async (server: { cli: (...args: string[]) => Promise<string> }, key: string): Promise<Envelope> => {
  const envelope = decodeEnvelope(await server.cli('GET', key))
  if (envelope === undefined) throw new Error(`no readable entry at ${key}`)
  return envelope
}

const User = Type.Object({ id: Type.Number(), name: Type.String() })
const UserV2 = Type.Object({ id: Type.Number(), name: Type.String(), email: Type.String() })

t.test('tiers: a value written by one instance is read from Redis by another, then from its memory', async (t) => {
  const server = await useRedis(t)
  const a = await instance(t, server)
  const b = await instance(t, server)
  await a.cache.set('user:1', { id: 1, name: 'Ada' }, { ttl: '5m', tags: ['users'], schema: User })
  // b hears about a's write; a read racing that message would rightly not fill b's memory.
  await waitFor(() => b.events.some((e) => e.type === 'invalidation-received'), { what: 'the write message' })
  t.same(await b.cache.get('user:1', { schema: User }), { id: 1, name: 'Ada' })
  t.same(await b.cache.get('user:1', { schema: User }), { id: 1, name: 'Ada' })
  const stats = b.cache.stats().namespaces['default']
  t.match(stats, { redis: { hits: 1 }, memory: { hits: 1, misses: 1 } })

  const entry = await stored(server, 'cache:e:{}default:user:1')
  t.match(entry, { format: 2, value: { id: 1, name: 'Ada' }, generation: '0', tags: { users: '0' }, schemaHash: /^[\w-]{16}$/ })
  t.ok(entry.expiresAt - entry.createdAt === 300_000, 'logical expiry in the envelope')
  t.match(await server.cli('GET', 'cache:e:{}default:user:1'), /^2\n[0-9a-z]+\n/, 'a lean header, then the value\'s JSON')
  const pttl = Number(await server.cli('PTTL', 'cache:e:{}default:user:1'))
  t.ok(pttl > 290_000 && pttl <= 300_000, 'Redis expires it at ttl + grace')
})

t.test('the client keyPrefix is honoured and the channel follows it', async (t) => {
  const server = await useRedis(t)
  const a = await instance(t, server, {}, { keyPrefix: 'app1:' })
  await a.cache.set('k', 'v')
  t.equal((await stored(server, 'app1:cache:e:{}default:k')).value, 'v')
  await a.cache.invalidateTags(['t'])
  t.equal(await server.cli('GET', 'app1:cache:tag:{t}'), '1')
})

t.test('TTL: Redis drops the entry; a ttl shorter than grace keeps it as stale only', async (t) => {
  const { server, cache } = await redisWithInstance(t, { memory: false })
  await cache.set('short', 'v', { ttl: '100ms' })
  t.equal(await cache.get('short'), 'v')
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal(await server.cli('EXISTS', 'cache:e:{}default:short'), '0', 'gone from Redis')
  t.equal(await cache.get('short'), undefined)
})

t.test('schema: an entry failing its schema is a miss, deleted, and reloaded by getOrSet', async (t) => {
  const { server, cache } = await redisWithInstance(t, { memory: false })
  await cache.set('user:2', { id: 2, name: 'Bob' }, { schema: User })
  // Corrupt the stored value behind the cache's back, keeping the schema hash.
  const envelope = await stored(server, 'cache:e:{}default:user:2')
  envelope.value = { id: 'two' }
  await server.cli('SET', 'cache:e:{}default:user:2', encodeEnvelope(envelope))
  t.equal(await cache.get('user:2', { schema: User }), undefined, 'a miss')
  t.equal(await server.cli('EXISTS', 'cache:e:{}default:user:2'), '0', 'deleted')
  await server.cli('SET', 'cache:e:{}default:user:2', encodeEnvelope(envelope))
  let loads = 0
  const user = await cache.getOrSet('user:2', async () => { loads++; return { id: 2, name: 'Bob' } }, { schema: User })
  t.same(user, { id: 2, name: 'Bob' })
  t.equal(loads, 1, 'reloaded')
  await t.rejects(cache.getOrSet('user:3', async () => ({ id: 3 }) as never, { schema: User }), { code: 'FRS_CACHE_VALUE_INVALID' },
    'a loader value failing its schema is an error, not a cache entry')
  t.equal(await server.cli('EXISTS', 'cache:e:{}default:user:3'), '0')
  await t.rejects(cache.set('user:4', { id: 4 } as never, { schema: User }), { code: 'FRS_CACHE_VALUE_INVALID', errors: [/name/] })
})

t.test('schema hash change (a deploy changed the shape) is a miss, not a crash', async (t) => {
  const server = await useRedis(t)
  const before = await instance(t, server)
  const after = await instance(t, server)
  await before.cache.set('user:1', { id: 1, name: 'Ada' }, { schema: User })
  t.equal(await after.cache.get('user:1', { schema: UserV2 }), undefined)
  const user = await after.cache.getOrSet('user:1', () => ({ id: 1, name: 'Ada', email: 'ada@example.com' }), { schema: UserV2 })
  t.equal(user.email, 'ada@example.com')
})

t.test('getMany and getOrSetMany: one MGET for the entries and one loader call for the misses', async (t) => {
  const { server, cache } = await redisWithInstance(t, { memory: false })
  await cache.set('a', 1)
  await cache.set('c', 3)
  const mgetBefore = await commandCalls(server, 'mget')
  const getBefore = await commandCalls(server, 'get')
  t.same(await cache.getMany(['a', 'b', 'c']), [1, undefined, 3])
  t.equal(await commandCalls(server, 'mget') - mgetBefore, 1, 'one MGET of entries; the versions are known in process')
  t.equal(await commandCalls(server, 'get') - getBefore, 0)
  const calls: string[][] = []
  const values = await cache.getOrSetMany(['a', 'b', 'c', 'd'], async (keys) => { calls.push(keys); return keys.map((k) => k.charCodeAt(0)) })
  t.same(values, [1, 98, 3, 100])
  t.same(calls, [['b', 'd']])
  t.same(await cache.getMany(['b', 'd']), [98, 100], 'the loaded values were written')
})

t.test('clear(): O(1) by generation; other namespaces and instances see it', async (t) => {
  const server = await useRedis(t)
  const a = await instance(t, server)
  const b = await instance(t, server)
  const apiA = a.cache.namespace('api')
  const apiB = b.cache.namespace('api')
  await apiA.set('x', 1)
  await a.cache.set('x', 'root')
  t.equal(await apiB.get('x'), 1)
  const keysBefore = await server.cli('DBSIZE')
  await apiA.clear()
  t.equal(await server.cli('GET', 'cache:gen:{api}'), '1', 'a generation bump')
  t.equal(Number(await server.cli('DBSIZE')), Number(keysBefore) + 1, 'no key was deleted: only the generation key was added')
  t.equal(await apiA.get('x'), undefined)
  t.equal(await apiB.get('x'), undefined, 'the other instance misses too')
  t.equal(await b.cache.get('x'), 'root')
  await apiB.set('x', 2)
  t.equal(await apiA.get('x'), 2, 'new entries carry the new generation')
  t.equal(await commandCalls(server, 'keys') + await commandCalls(server, 'scan') + await commandCalls(server, 'flushdb'), 0)
})

t.test('namespace defaults: ttl, grace and tags', async (t) => {
  const { server, cache } = await redisWithInstance(t)
  const presence = cache.namespace('presence', { ttl: '5m', grace: '1m', tags: ['presence'] })
  await presence.set('u1', 'online')
  const u1 = await stored(server, 'cache:e:{}presence:u1')
  t.equal(u1.expiresAt - u1.createdAt, 300_000)
  t.equal(u1.staleUntil - u1.expiresAt, 60_000)
  t.same({ ...u1.tags }, { presence: '0' })
  await presence.set('u2', 'away', { ttl: '1h', tags: ['extra'] })
  const u2 = await stored(server, 'cache:e:{}presence:u2')
  t.equal(u2.expiresAt - u2.createdAt, 3_600_000, 'a call overrides the default')
  t.same({ ...u2.tags }, { presence: '0', extra: '0' }, 'call tags add to default tags')
})

t.test('tags: invalidateTags makes tagged entries a miss everywhere, in any namespace', async (t) => {
  const server = await useRedis(t)
  const a = await instance(t, server)
  const b = await instance(t, server)
  await a.cache.set('user:1', 'Ada', { tags: ['users', 'team:1'] })
  await a.cache.namespace('api').set('/users', ['Ada'], { tags: ['users'] })
  await a.cache.set('post:1', 'Hello', { tags: ['posts'] })
  t.equal(await b.cache.get('user:1'), 'Ada', 'b has it in memory now')
  const heard = a.events.filter((e) => e.type === 'invalidation-received' && e.kind === 'tags').length
  await b.cache.invalidateTags(['users'])
  t.equal(await b.cache.get('user:1'), undefined, 'b: evicted locally at once')
  await waitFor(() => a.events.filter((e) => e.type === 'invalidation-received' && e.kind === 'tags').length > heard, { what: 'the tag message' })
  t.equal(await a.cache.get('user:1'), undefined, 'a: memory evicted by message, Redis entry outdated')
  t.equal(await a.cache.namespace('api').get('/users'), undefined)
  t.equal(await a.cache.get('post:1'), 'Hello')
  // A fresh instance without memory: the version check alone decides.
  const c = await instance(t, server, { memory: false })
  t.equal(await c.cache.get('user:1', { tags: ['users'] }), undefined, 'declared tag, one round trip')
  t.equal(await c.cache.get('user:1'), undefined, 'undeclared tag: versions read after the entry')
  await c.cache.set('user:1', 'Ada 2', { tags: ['users'] })
  t.equal(await a.cache.get('user:1'), 'Ada 2', 'written after the bump: valid')
})
