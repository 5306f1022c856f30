// The cache core, free of Fastify: plugins/cache.ts adapts it.
export { createCache } from './cache.js'
export { MAX_KEY_BYTES, ROOT_NAMESPACE, assertValidTags } from './keys.js'
export type { MemoryTierOptions } from './memory-tier.js'
export type { CacheLogger, RedisClient } from './redis-tier.js'
export type { CacheEvent, CacheStats, CacheTier, NamespaceStats, TierCounters } from './stats.js'
export type {
  Cache, CacheDefaults, CacheOptions, GetOptions, GetOrSetOptions, Loader, LoaderContext, LoaderTimeouts, ManyLoader, SetOptions
} from './types.js'
