// app.cache through the suite: the plugin wiring; the engine's own behaviour is in test/lib/cache/.
import t from 'tap'
import Type from 'typebox'
import { useRedis } from '../helpers/index.js'
import { buildTestApp, timeUntil } from '../helper.js'
import { sample } from '../monitoring/prom.js'

const User = Type.Object({ id: Type.Number(), name: Type.String() })

t.test('typed values round-trip through Redis and are shared by two app instances', async (t) => {
  const redis = await useRedis(t)
  const env = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'app:' }
  const a = (await buildTestApp(t, env)).app
  const b = (await buildTestApp(t, env)).app

  await a.cache.set('user:1', { id: 1, name: 'Ada' }, { ttl: '5m', tags: ['users'], schema: User })
  t.same(await b.cache.get('user:1', { schema: User }), { id: 1, name: 'Ada' }, 'the other instance reads it from Redis')
  t.match(await redis.cli('--scan', '--pattern', 'app:cache:*'), /app:cache:e:{}default:user:1/, 'keys carry the app prefix')

  let loads = 0
  const loader = async () => { loads++; return { id: 2, name: 'Grace' } }
  const results = await Promise.all([
    ...Array.from({ length: 10 }, () => a.cache.getOrSet('user:2', loader, { schema: User })),
    ...Array.from({ length: 10 }, () => b.cache.getOrSet('user:2', loader, { schema: User }))
  ])
  t.equal(loads, 1, '20 concurrent misses across two instances run the loader once')
  t.ok(results.every((user) => user.name === 'Grace'))

  await b.cache.get('user:1', { schema: User }) // now in b's memory tier
  await a.cache.invalidateTags(['users'])
  await timeUntil(async () => (await b.cache.get('user:1', { schema: User })) === undefined, 2_000, 'invalidation reached the other instance')
  t.pass('a tag invalidation on one instance is a miss on the other')
})

t.test('Redis killed: the cache answers from memory or the loader, never throws', async (t) => {
  const redis = await useRedis(t)
  const { app } = await buildTestApp(t, { REDIS_URL: redis.url })
  await app.cache.set('hot', { id: 1, name: 'Ada' }, { schema: User })
  await redis.kill()
  await timeUntil(() => app.redisState.status === 'disconnected', 1_000, 'disconnected')
  t.same(await app.cache.get('hot', { schema: User }), { id: 1, name: 'Ada' }, 'memory tier still serves')
  t.equal(await app.cache.getOrSet('cold', async () => 'loaded'), 'loaded', 'a miss runs the loader')
  await t.resolves(app.cache.set('x', 1))
  await t.resolves(app.cache.invalidateTags(['users']))
  await redis.restart()
  await timeUntil(() => app.redisState.status === 'connected', 3_000, 'connected again')
  t.equal(await app.cache.get('hot', { schema: User }), undefined, 'the memory tier is flushed after a reconnect: invalidations may have been missed')
})

t.test('after SIGKILL and restart of Redis, invalidations published after recovery reach the other instance', async (t) => {
  const redis = await useRedis(t)
  const env = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'app:' }
  const a = (await buildTestApp(t, env)).app
  const b = (await buildTestApp(t, env)).app
  await redis.kill()
  await redis.restart()
  await timeUntil(() => a.redisState.status === 'connected' && b.redisState.status === 'connected', 5_000, 'both connected again')
  // The suite's subscriber has ioredis' autoResubscribe off: the bus subscribes again on 'ready'.
  await timeUntil(async () => await redis.cli('PUBSUB', 'NUMSUB', 'app:cache:invalidate') === 'app:cache:invalidate\n2', 5_000, 'both instances subscribed again')
  await a.cache.set('k', 'one')
  t.equal(await b.cache.get('k'), 'one', 'in b\'s memory tier')
  await a.cache.set('k', 'two')
  await timeUntil(async () => (await b.cache.get('k')) === 'two', 2_000, 'a\'s write after the restart reached b')
  t.pass('invalidations flow again after the restart')
})

t.test('no Redis configured: the same API on the memory tier', async (t) => {
  const { app } = await buildTestApp(t, {})
  t.equal(app.redisState.mode, 'memory')
  await app.cache.set('k', { id: 1, name: 'Ada' }, { schema: User })
  t.same(await app.cache.get('k', { schema: User }), { id: 1, name: 'Ada' })
  const api = app.cache.namespace('api', { ttl: '5m' })
  t.equal(await api.getOrSet('k', async () => 42), 42)
  t.equal(await app.cache.get('k'), await app.cache.get('k'), 'namespaces are separate')
})

t.test('REDIS_CACHE_URL puts the cache on its own instance', async (t) => {
  const main = await useRedis(t)
  const cacheRedis = await useRedis(t, { maxmemoryPolicy: 'allkeys-lru', maxmemory: '20mb' })
  const env = { REDIS_URL: main.url, REDIS_CACHE_URL: cacheRedis.url }
  const { app } = await buildTestApp(t, env)
  const other = (await buildTestApp(t, env)).app
  await app.cache.set('k', 'v')
  t.equal(await main.cli('DBSIZE'), '0', 'nothing cached on the main instance')
  t.not(await cacheRedis.cli('DBSIZE'), '0', 'entries live on the cache instance')
  t.equal(await other.cache.get('k'), 'v')
  await app.cache.delete('k')
  await timeUntil(async () => (await other.cache.get('k')) === undefined, 2_000, 'invalidation reached the other instance through the cache instance')
  t.pass('invalidations travel on the cache instance')
})

t.test('a normal start with Redis up logs no cache warning, and invalidations are subscribed from the start', async (t) => {
  const redis = await useRedis(t)
  const env = { REDIS_URL: redis.url }
  const a = await buildTestApp(t, env)
  const b = (await buildTestApp(t, env)).app
  const warnings = a.logs().filter((line) => line.level >= 40 && /cache/.test(String(line.msg)))
  t.same(warnings.map((line) => line.msg), [], 'no "could not subscribe" warning')
  await a.app.cache.set('k', 1)
  t.equal(await a.app.cache.get('k'), 1, 'now in a\'s memory tier')
  await b.cache.set('k', 2)
  await timeUntil(async () => (await a.app.cache.get('k')) === 2, 2_000, 'b\'s write reached a')
  t.pass('the first write after start is seen by the other instance')
})

t.test('CACHE_COMPRESSION compresses large entries; a namespace can opt out; an instance without it reads them', async (t) => {
  const redis = await useRedis(t)
  const env = { REDIS_URL: redis.url, CACHE_MEMORY_MAX_ENTRIES: '0' }
  const a = (await buildTestApp(t, { ...env, CACHE_COMPRESSION: 'brotli', CACHE_COMPRESSION_THRESHOLD: '200' })).app
  const b = (await buildTestApp(t, env)).app
  const big = { rows: Array.from({ length: 50 }, (_, i) => ({ id: i, name: `row ${i % 5}` })) }
  await a.cache.set('big', big)
  await a.cache.namespace('raw', { compression: false }).set('big', big)
  t.match(await redis.cli('GET', 'cache:e:{}default:big'), /^zb\n/)
  t.match(await redis.cli('GET', 'cache:e:{}raw:big'), /^2\n/)
  t.same(await b.cache.get('big'), big)
  // An entry that does not decompress is a miss, and /metrics has what the CacheDecompressionFailures alert reads.
  await redis.cli('SET', 'cache:e:{}default:big', 'zd\nbm90IGRlZmxhdGUgYXQgYWxs', 'PX', '60000')
  t.equal(await b.cache.get('big'), undefined, 'a corrupt compressed entry: a miss')
  t.equal(sample((await b.inject('/metrics')).body, 'cache_decompression_failures_total'), 1)
})
