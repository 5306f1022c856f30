// The hit path does no per-call work it can avoid (STYLE.md points 7 and 9): options resolved once,
// no timer of ours per Redis command, plain counters.
import t from 'tap'
import Type from 'typebox'
import { resolveDefaults, resolveOptions } from '../../../lib/cache/options.js'
import { commandCalls, redisWithInstance } from './fixtures.js'

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
  // The version sweep (every syncInterval) sends a command of its own, which arms a timer too: on a
  // loaded machine the loop below can outlast one interval, so the sweep is put out of its way.
  const { cache } = await redisWithInstance(t, { memory: false, syncInterval: '1h' })
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

t.test('concurrent hits of different keys leave as one MGET (one socket write), each still answered alone', async (t) => {
  const { server, cache } = await redisWithInstance(t, { memory: false })
  const keys = Array.from({ length: 20 }, (_, i) => `k${i}`)
  for (const key of keys) await cache.set(key, key)
  t.equal(await cache.get('k0'), 'k0') // versions known from here on
  const mgets = await commandCalls(server, 'mget')
  const gets = await commandCalls(server, 'get')
  t.same(await Promise.all([...keys.map((key) => cache.get(key)), cache.get('absent')]), [...keys, undefined])
  t.equal(await commandCalls(server, 'mget') - mgets, 1, 'one MGET for the 21 reads of one tick')
  t.equal(await commandCalls(server, 'get') - gets, 0)
})

t.test('peek answers a fresh memory-tier copy synchronously, with no Redis command; undefined otherwise', async (t) => {
  const User = Type.Object({ id: Type.Number() })
  const { server, cache } = await redisWithInstance(t, { syncInterval: '300ms' })
  t.equal(cache.peek('k'), undefined, 'nothing cached: undefined')
  await cache.set('k', { id: 1 }, { schema: User })
  // GETs only: the version sweep (every syncInterval) sends MGETs, and may fall between the two reads.
  const gets = await commandCalls(server, 'get')
  const value = cache.peek('k', { schema: User })
  t.same(value, { id: 1 }, 'the value set, typed by the schema')
  t.ok(Object.isFrozen(value), 'the tier\'s frozen copy: no parse, no clone')
  t.equal(cache.peek('k', { schema: User }), value, 'the same object every time')
  t.equal(await commandCalls(server, 'get'), gets, 'no Redis read')
  t.equal(cache.peek('k', { schema: Type.Object({ id: Type.String() }) }), undefined, 'checked with another schema: not answered here')
  const redisOnly = cache.namespace('redis-only', { memory: false })
  await redisOnly.set('k', { id: 2 }, { schema: User })
  t.equal(redisOnly.peek('k', { schema: User }), undefined, 'a namespace without the memory tier: undefined')
  t.same(await redisOnly.get('k', { schema: User }), { id: 2 }, 'which get reads from Redis')
  // Past syncInterval the copy is due for a look at Redis: peek leaves that to get().
  await new Promise((resolve) => setTimeout(resolve, 400))
  t.equal(cache.peek('k', { schema: User }), undefined, 'due for its check: undefined')
  t.same(await cache.get('k', { schema: User }), { id: 1 }, 'get checks Redis and answers')
  t.same(cache.peek('k', { schema: User }), { id: 1 }, 'and the copy is fresh again')
  await cache.delete('k')
  t.equal(cache.peek('k'), undefined, 'deleted: undefined')
})
