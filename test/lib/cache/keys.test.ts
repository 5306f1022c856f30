import t from 'tap'
import { createCache } from '../../../lib/cache/index.js'
import { CacheKeyError, CacheNamespaceError } from '../../../lib/errors/index.js'

t.test('invalid keys are refused with CacheKeyError (a caller bug, so it is thrown)', async (t) => {
  const cache = createCache()
  t.teardown(() => cache.close())
  const bad = ['', 'a'.repeat(1025), 'é'.repeat(513), 'line\nbreak', 'nul\u0000', 'del\u007f', 'c1\u0085']
  for (const key of bad) {
    await t.rejects(cache.get(key), { name: 'CacheKeyError', code: 'FRS_CACHE_KEY_INVALID' }, `get ${JSON.stringify(key.slice(0, 12))}`)
    await t.rejects(cache.set(key, 1), CacheKeyError)
    await t.rejects(cache.getOrSet(key, () => 1), CacheKeyError)
    await t.rejects(cache.delete(key), CacheKeyError)
    await t.rejects(cache.has(key), CacheKeyError)
  }
  await t.rejects(cache.getMany(['ok', '']), CacheKeyError)
  await t.rejects(cache.getOrSetMany(['ok', 'a\tb'], () => [1, 2]), CacheKeyError)
  await t.rejects(cache.invalidateTags(['']), { code: 'FRS_CACHE_KEY_INVALID', message: /tag/ })
  await t.rejects(cache.get(42 as unknown as string), /non-empty string, got number/)
  const err = await cache.get('x'.repeat(2000)).catch((e: unknown) => e)
  t.match(err, { message: /at most 1024 bytes, got 2000 bytes/ }, 'the message says what to do')
})

t.test('the longest and oddest valid keys work', async (t) => {
  const cache = createCache()
  t.teardown(() => cache.close())
  for (const key of ['a'.repeat(1024), 'user:{1}:profile', 'ünïcødé 🔑', ' spaces ']) {
    await cache.set(key, key)
    t.equal(await cache.get(key), key)
  }
})

t.test('namespace names are checked', async (t) => {
  const cache = createCache()
  t.teardown(() => cache.close())
  t.throws(() => cache.namespace('a:b'), CacheNamespaceError)
  t.throws(() => cache.namespace(''), { code: 'FRS_CACHE_NAMESPACE_INVALID' })
  t.equal(cache.namespace('api').namespace('v2').namespaceName, 'api.v2')
  t.equal(cache.namespaceName, 'default')
})

t.test('bad durations are refused when the namespace or the call is made', async (t) => {
  const cache = createCache()
  t.teardown(() => cache.close())
  t.throws(() => cache.namespace('x', { ttl: '5 fortnights' }), /ttl must be a duration/)
  t.throws(() => cache.namespace('x', { ttl: 0 }), /ttl must be longer than 0/)
  await t.rejects(cache.set('k', 1, { ttl: -1 }), /ttl must be a duration/)
})
