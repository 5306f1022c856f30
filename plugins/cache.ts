// app.cache: the schema-typed two-tier cache (lib/cache) on the cache connection, which is
// REDIS_CACHE_URL's when set so entries can live on an allkeys-lru instance.
//
// Lifecycle (cachePlugin):
//   decorates  app.cache
//   at registration: the invalidation bus's subscriber (a duplicate when the cache has its own
//              connection), reconnects followed (app.redisMonitor, or the cache connection's 'ready'),
//              and, when Redis is up, a bounded wait for the subscriber before the first write
//   No request hooks.
//   onClose    drops the 'ready' listener, closes the cache, quits its own subscriber within a bound
import fp from 'fastify-plugin'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { Cluster, Redis } from 'ioredis'
import { createCache, type Cache, type CacheOptions } from '../lib/cache/index.js'
import { featureConnection, quitWithin, type RedisClient } from './redis.js'
import { suiteLogOptions } from '../lib/config/index.js'
import { stopSlotsRefreshOnClose } from '../lib/redis/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    cache: Cache
  }
}

/** Options beyond the environment: anything of CacheOptions except the clients the suite provides. */
export interface CachePluginOptions extends Omit<CacheOptions, 'redis' | 'subscriber' | 'isRedisReady'> {
  /**
   * An ioredis Redis or Cluster of the app's to keep entries on, instead of the suite's connection
   * (REDIS_CACHE_URL's or the main one); left open at close. Commands on it are bounded by
   * REDIS_COMMAND_TIMEOUT whatever its settings; invalidations travel on a duplicate of it.
   */
  client?: RedisClient
}

async function cachePlugin (app: FastifyInstance, pluginOptions: CachePluginOptions = {}): Promise<void> {
  const config = app.config
  const { client: appClient, ...options } = pluginOptions
  const given = appClient === undefined ? undefined : featureConnection(app, appClient)
  const { main } = app.redisConnections
  const client = given?.redis ?? app.redisConnections.cache
  const onMain = given === undefined && client === main
  // Invalidations travel on the instance that holds the entries: a separate cache instance needs
  // its own subscriber, not the main connection's. Without the bus (CACHE_INVALIDATION_BUS=false)
  // there is no subscriber at all: other instances see an invalidation when their memory entry is due
  // for a look at Redis and their versions are read again (the engine's syncInterval, 1 s).
  const bus = client !== undefined && config.CACHE_INVALIDATION_BUS
  const ownSubscriber = bus && !onMain ? duplicate(client) : undefined
  const subscriber = ownSubscriber ?? (bus ? app.redisConnections.subscriber() : undefined)
  const cache = createCache({
    ttl: config.CACHE_DEFAULT_TTL,
    grace: config.CACHE_GRACE,
    memory: config.CACHE_MEMORY_MAX_ENTRIES === 0 ? false : { maxEntries: config.CACHE_MEMORY_MAX_ENTRIES, maxBytes: config.CACHE_MEMORY_MAX_BYTES },
    logger: cachelog(app),
    // Frozen values catch a caller mutating a shared value in development and tests; production
    // saves the ~300 bytes per entry it costs.
    freeze: config.NODE_ENV !== 'production' && config.NODE_ENV !== 'staging',
    commandTimeout: config.REDIS_COMMAND_TIMEOUT,
    compression: config.CACHE_COMPRESSION === 'none' ? false : { codec: config.CACHE_COMPRESSION, threshold: config.CACHE_COMPRESSION_THRESHOLD },
    ...options,
    redis: client,
    subscriber,
    // On the main connection the monitor knows at once when Redis is gone; a separate cache
    // connection is judged by its own status.
    isRedisReady: client === undefined ? undefined : onMain ? () => app.redisMonitor.isReady() : () => client.status === 'ready'
  })
  app.redisMonitor.on('reconnected', () => cache.onReconnect())
  // The monitor watches the main connection, and without the bus no resubscription says that a
  // separate cache connection came back: its own 'ready' after the first does.
  if (client !== undefined && !onMain && !bus) followReconnects(app, client, cache)
  app.decorate('cache', cache)
  logStart(app, client, onMain ? '' : given !== undefined ? ' on the client passed as cache.client' : ' on REDIS_CACHE_URL')

  if (client !== undefined && client.status === 'ready') {
    // Cross-instance invalidation needs the subscriber listening before the first write; bounded.
    let timer: NodeJS.Timeout | undefined
    await Promise.race([cache.ready(), new Promise((resolve) => { timer = setTimeout(resolve, config.REDIS_CONNECT_TIMEOUT) })])
    clearTimeout(timer)
  }
  app.addHook('onClose', async () => {
    await cache.close()
    if (ownSubscriber !== undefined) await quitWithin(ownSubscriber, Math.min(config.REDIS_COMMAND_TIMEOUT, 2_000))
  })
}

/** cache.onReconnect() at each 'ready' of a separate cache connection after its first; the listener goes at onClose. */
function followReconnects (app: FastifyInstance, client: RedisClient, cache: Cache): void {
  let seenReady = client.status === 'ready'
  const onReady = (): void => {
    if (seenReady) cache.onReconnect()
    seenReady = true
  }
  client.on('ready', onReady)
  app.addHook('onClose', async () => { client.off('ready', onReady) })
}

/** One start-up line: the tiers, and where the Redis one lives. */
function logStart (app: FastifyInstance, client: RedisClient | undefined, where: string): void {
  const config = app.config
  const memoryTier = config.CACHE_MEMORY_MAX_ENTRIES === 0 ? 'no memory tier' : `memory tier (${config.CACHE_MEMORY_MAX_ENTRIES} entries, ${config.CACHE_MEMORY_MAX_BYTES} bytes)`
  const redisTier = client === undefined
    ? 'no Redis tier (no Redis configured)'
    : client.status === 'ready'
      ? `Redis tier${where}`
      : `Redis tier once Redis answers${where}: misses go to the loader until then`
  cachelog(app).info({ cache: { backend: client === undefined ? 'memory' : client.status === 'ready' ? 'redis' : 'unreachable' } }, `cache: ${memoryTier} + ${redisTier}`)
}

function duplicate (client: RedisClient): RedisClient {
  const copy = client.isCluster ? stopSlotsRefreshOnClose((client as Cluster).duplicate()) : (client as Redis).duplicate()
  copy.on('error', () => {}) // reported through the cache's own once-per-outage warnings
  copy.connect().catch(() => {})
  return copy
}

export default fp(cachePlugin, { name: 'redis-suite-cache', fastify: '5.x', dependencies: ['redis-suite-config', 'redis-suite-redis'] })

function cachelog (app: FastifyInstance): FastifyBaseLogger {
  return app.log.child({ plugin: 'cache' }, suiteLogOptions(app.config))
}
