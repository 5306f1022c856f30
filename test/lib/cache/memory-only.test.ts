// No Redis configured (development): the same API over the memory tier alone.
import t from 'tap'
import Type from 'typebox'
import { createCache } from '../../../lib/cache/index.js'
import { sleep } from '../../helpers/index.js'

const User = Type.Object({ id: Type.Number(), name: Type.String() })

t.test('the whole API works without Redis', async (t) => {
  const cache = createCache({ ttl: '1m' })
  t.teardown(() => cache.close())
  t.equal(await cache.get('user:1'), undefined)
  await cache.set('user:1', { id: 1, name: 'Ada' }, { schema: User, tags: ['users'] })
  t.same(await cache.get('user:1', { schema: User }), { id: 1, name: 'Ada' })
  t.equal(await cache.has('user:1'), true)
  t.same(await cache.getMany(['user:1', 'user:2']), [{ id: 1, name: 'Ada' }, undefined])
  await cache.invalidateTags(['users'])
  t.equal(await cache.has('user:1'), false, 'tag invalidation evicts from memory')

  let loads = 0
  const load = async (): Promise<number> => { loads++; return 42 }
  t.equal(await cache.getOrSet('answer', load), 42)
  t.equal(await cache.getOrSet('answer', load), 42)
  t.equal(loads, 1, 'the second call is a memory hit')
  await cache.delete('answer')
  t.equal(await cache.get('answer'), undefined)

  const stats = cache.stats()
  t.ok(stats.namespaces['default'] !== undefined && stats.namespaces['default'].memory.hits >= 3)
  t.equal(stats.namespaces['default']?.redis.hits, 0)
  t.equal(stats.memory?.entries, 0)
})

t.test('TTL expiry in memory', async (t) => {
  const cache = createCache()
  t.teardown(() => cache.close())
  await cache.set('short', 'v', { ttl: '60ms' })
  t.equal(await cache.get('short'), 'v')
  await sleep(120)
  t.equal(await cache.get('short'), undefined)
})

t.test('the memory tier is bounded by entries and by bytes', async (t) => {
  const byCount = createCache({ memory: { maxEntries: 3 } })
  const bySize = createCache({ memory: { maxBytes: 2_000 } })
  t.teardown(() => byCount.close())
  t.teardown(() => bySize.close())
  for (let i = 0; i < 10; i++) await byCount.set(`k${i}`, i)
  t.equal(byCount.stats().memory?.entries, 3)
  t.same(await byCount.getMany(['k0', 'k9']), [undefined, 9], 'least recently used went first')
  for (let i = 0; i < 10; i++) await bySize.set(`k${i}`, 'x'.repeat(400))
  t.ok((bySize.stats().memory?.bytes ?? Infinity) <= 2_000)
  await bySize.set('huge', 'x'.repeat(5_000))
  t.equal(await bySize.get('huge'), undefined, 'an entry larger than the tier is not kept')
})

t.test('namespaces scope keys, defaults and clear()', async (t) => {
  const cache = createCache({ ttl: '1h' })
  t.teardown(() => cache.close())
  const api = cache.namespace('api', { ttl: '50ms', tags: ['api'] })
  await cache.set('k', 'root')
  await api.set('k', 'api')
  t.equal(await cache.get('k'), 'root')
  t.equal(await api.get('k'), 'api')
  await sleep(100)
  t.equal(await api.get('k'), undefined, 'the namespace ttl applied')
  t.equal(await cache.get('k'), 'root')
  await api.set('k2', 'api')
  await cache.invalidateTags(['api'])
  t.equal(await api.get('k2'), undefined, 'namespace default tags are on every entry')
  await api.set('k3', 'api')
  await api.clear()
  t.equal(await api.get('k3'), undefined)
  t.equal(await cache.get('k'), 'root', 'clear() leaves other namespaces alone')
  t.ok(cache.stats().namespaces['api'], 'stats are per namespace')
})

t.test('getOrSetMany: one loader call for all misses, results in order', async (t) => {
  const cache = createCache()
  t.teardown(() => cache.close())
  await cache.set('b', 'B')
  const calls: string[][] = []
  const values = await cache.getOrSetMany(['a', 'b', 'c', 'a'], (keys) => {
    calls.push(keys)
    return keys.map((k) => k === 'c' ? undefined : k.toUpperCase())
  })
  t.same(values, ['A', 'B', undefined, 'A'])
  t.same(calls, [['a', 'c']])
  t.equal(await cache.get('a'), 'A')
  t.equal(await cache.has('c'), false, 'undefined is not cached')
})

t.test('per-namespace tiers: memory: false with no Redis stores nothing', async (t) => {
  const cache = createCache()
  t.teardown(() => cache.close())
  const none = cache.namespace('none', { memory: false })
  await none.set('k', 1)
  t.equal(await none.get('k'), undefined)
  let loads = 0
  await none.getOrSet('k', () => ++loads)
  await none.getOrSet('k', () => ++loads)
  t.equal(loads, 2)
})

t.test('memory: false and no Redis: a cache that never hits but never fails', async (t) => {
  const cache = createCache({ memory: false })
  t.teardown(() => cache.close())
  await cache.set('k', 1)
  t.equal(await cache.get('k'), undefined)
  t.equal(await cache.getOrSet('k', () => 2), 2)
  t.equal(cache.stats().memory, undefined)
})

t.test('more keys than the full-key memo holds: every key still reads its own value, and a bad key is still refused', async (t) => {
  const cache = createCache({ ttl: '1m' })
  t.teardown(() => cache.close())
  const keys = Array.from({ length: 10_050 }, (_, i) => `item:${i}`)
  // getOrSet: a key the memory tier evicted (it holds 10,000 entries too) loads again, its own value.
  const wrong: string[] = []
  for (const round of [1, 2]) {
    for (const key of keys) if (await cache.getOrSet(key, () => key) !== key) wrong.push(`${key} (round ${round})`)
  }
  t.same(wrong, [], 'each of 10,050 keys, past the memo\'s 10,000')
  await t.rejects(cache.get('bad\nkey'), { code: 'FRS_CACHE_KEY_INVALID' }, 'checked on first sight, memo or not')
  await t.rejects(cache.get('bad\nkey'), { code: 'FRS_CACHE_KEY_INVALID' }, 'and never remembered')
})
