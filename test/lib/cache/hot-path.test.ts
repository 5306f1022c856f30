// The hit path does no per-call work it can avoid (STYLE.md points 7 and 9): options resolved once,
// no timer of ours per Redis command, plain counters.
import t from 'tap'
import Type from 'typebox'
import { resolveDefaults, resolveOptions } from '../../../lib/cache/options.js'
import { redisWithInstance } from './fixtures.js'

t.test('resolveOptions returns one shared object for calls without options or with a schema alone', async (t) => {
  const defaults = resolveDefaults({ ttl: '5m', tags: ['a'] })
  const User = Type.Object({ id: Type.Number() })
  const plain = resolveOptions(defaults, undefined)
  t.equal(resolveOptions(defaults, undefined), plain, 'no options: the same object every call')
  t.equal(resolveOptions(defaults, {}), plain, 'empty options too')
  t.match(plain, { ttl: 300_000, tags: ['a'], schema: undefined })
  t.ok(Object.isFrozen(plain), 'shared, so frozen')
  const typed = resolveOptions(defaults, { schema: User })
  t.equal(resolveOptions(defaults, { schema: User }), typed, 'a schema alone: one object per schema')
  t.equal(typed.schema?.check({ id: 1 }), true)
  const custom = resolveOptions(defaults, { ttl: '1m', schema: User })
  t.not(custom, typed)
  t.equal(custom.ttl, 60_000, 'other options are still honoured')
  t.equal(plain.ttl, 300_000, 'without touching the shared object')
})

t.test('a Redis hit adds no timer of its own: the client\'s commandTimeout is the only one', async (t) => {
  const { cache } = await redisWithInstance(t, { memory: false })
  await cache.set('k', 'v')
  t.equal(await cache.get('k'), 'v')
  const original = globalThis.setTimeout
  let timers = 0
  globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => { timers++; return original(...args) }) as typeof setTimeout
  const hits = 100
  try {
    for (let i = 0; i < hits; i++) {
      t.equal(await cache.get('k'), 'v')
      t.equal(await cache.getOrSet('k', () => 'loaded'), 'v')
    }
  } finally {
    globalThis.setTimeout = original
  }
  // ioredis arms one timer per command for commandTimeout; before, the cache armed a second.
  t.equal(timers, hits * 2, 'one timer per command, the client\'s')
})
