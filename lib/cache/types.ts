// The public shape of the cache: options, the Cache interface every namespace implements, and the
// loader contract. Kept apart from the engine so a reader sees the whole surface on one screen.
import type { Static, TSchema } from 'typebox'
import type { CompressionOptions } from '../codecs/index.js'
import type { Duration } from '../config/index.js'
import type { MemoryTierOptions } from './memory-tier.js'
import type { CacheLogger, RedisClient } from './redis-tier.js'
import type { CacheEvent, CacheStats } from './stats.js'

export interface LoaderTimeouts {
  /** With a stale value at hand, wait this long for the loader, then serve stale while it finishes. Default 0. */
  soft?: Duration
  /** Without a stale value, give up after this long with a CacheTimeoutError. Default: no limit. */
  hard?: Duration
}

/** Defaults a namespace applies to every call; each call may override them. */
export interface CacheDefaults {
  /** How long a value is fresh. Default '5m'. */
  ttl?: Duration
  /** How long past its ttl a value may still be served stale (refresh in background, loader error, Redis down). Default 0. */
  grace?: Duration
  /** Tags added to every entry of the namespace. */
  tags?: readonly string[]
  timeout?: LoaderTimeouts
  /** Use the in-process tier for this namespace. Default true when the cache has one. */
  memory?: boolean
  /** Use Redis for this namespace. Default true when the cache has a client. */
  redis?: boolean
  /** How long the cross-instance stampede lock lives at most. Default: timeout.hard, else '10s'. */
  lockTtl?: Duration
  /** How long a caller waits for another instance's loader before running its own. Default: timeout.hard, else '5s'. */
  lockWait?: Duration
  /**
   * Compress entries stored in Redis whose stored text is at least `threshold` characters (default
   * 1024) with zlib, brotli or zstd (Node 22.15+). false: none (the default), or none for this namespace
   * when the parent has one. Readers read both forms whatever their own setting.
   */
  compression?: CompressionOptions | false
}

export interface CacheOptions extends Omit<CacheDefaults, 'tags' | 'memory' | 'redis'> {
  /** ioredis Redis or Cluster; undefined for a memory-only cache (development). */
  redis?: RedisClient | undefined
  /**
   * Longest one of the cache's commands waits for Redis, whatever `redis`'s own settings (a default
   * ioredis client would wait ~70 s while Redis is down): a command past it is a miss. Default: the
   * client's own commandTimeout, else '1s' (REDIS_COMMAND_TIMEOUT's default; the cache plugin passes
   * REDIS_COMMAND_TIMEOUT).
   */
  commandTimeout?: Duration
  /** A dedicated connection for invalidation messages (client.duplicate()); without it other instances are not told. */
  subscriber?: RedisClient | undefined
  /** When given, Redis is skipped while this returns false (the connection monitor's view). */
  isRedisReady?: (() => boolean) | undefined
  /** In-process tier bounds, or false for none. */
  memory?: MemoryTierOptions | false
  /** Prefix of every key, after the client's keyPrefix. Default 'cache:'. */
  prefix?: string
  /** Pub/sub channel for invalidations. Default '<client keyPrefix>cache:invalidate'. */
  channel?: string
  /**
   * The staleness bound when an invalidation message is lost: generations and tag versions are re-read
   * from Redis this often, and a memory entry is served this long before Redis is asked again.
   * Default '1s'. (Each Redis command is bounded by the client's own commandTimeout.)
   */
  syncInterval?: Duration
  /**
   * Memory-tier values are shared by every caller (no copy per hit): never mutate one. With `freeze`
   * they are deep-frozen when they enter the tier, so a mutation throws instead of silently changing
   * what the next caller reads. Costs ~300 bytes per entry. Default: true unless NODE_ENV is production or staging.
   */
  freeze?: boolean
  /** After a connection-level Redis failure, skip Redis for this long. Default '1s'. */
  retryAfter?: Duration
  logger?: CacheLogger | undefined
  onEvent?: ((event: CacheEvent) => void) | undefined
}

export interface LoaderContext {
  key: string
  namespace: string
  /** The stale value being refreshed, if any. */
  stale: unknown
  /** Aborted when every caller has given up (timeout.hard); the value is still cached if the loader finishes. */
  signal: AbortSignal
}

export type Loader<T> = (context: LoaderContext) => T | Promise<T>
/** Loads the values of the missing keys, in the same order; `undefined` for a key that has no value (not cached). */
export type ManyLoader<T> = (keys: string[], context: { namespace: string, signal: AbortSignal }) => ReadonlyArray<T | undefined> | Promise<ReadonlyArray<T | undefined>>

export interface GetOptions<S extends TSchema | undefined = undefined> {
  schema?: S
  /** Tags the entry is expected to carry: their versions are read in the same round trip as the entry. */
  tags?: readonly string[]
}

export interface SetOptions<S extends TSchema | undefined = undefined> {
  ttl?: Duration
  grace?: Duration
  tags?: readonly string[]
  schema?: S
}

export interface GetOrSetOptions<S extends TSchema | undefined = undefined> extends SetOptions<S> {
  timeout?: LoaderTimeouts
  lockTtl?: Duration
  lockWait?: Duration
}

type WithSchema<O, S extends TSchema> = O & { schema: S }
type WithoutSchema<O> = O & { schema?: undefined }

export interface Cache {
  /** The full namespace name: 'default' for the root, 'api' or 'api.v2' below it. */
  readonly namespaceName: string

  /** A fresh value, or undefined on a miss (including any Redis failure). */
  get<S extends TSchema>(key: string, options: WithSchema<GetOptions<S>, S>): Promise<Static<S> | undefined>
  get<T = unknown>(key: string, options?: WithoutSchema<GetOptions>): Promise<T | undefined>

  /**
   * The value when this process's memory tier holds a fresh copy that needs no look at Redis yet;
   * undefined otherwise (not in memory, expired, due for its check, or no memory tier). Synchronous:
   * no Redis command, no promise. For a hot path that serves memory hits at once and calls `get`
   * (or `getOrSet`) on undefined. The value is the frozen one the tier holds.
   */
  peek<S extends TSchema>(key: string, options: WithSchema<GetOptions<S>, S>): Static<S> | undefined
  peek<T = unknown>(key: string, options?: WithoutSchema<GetOptions>): T | undefined

  set<S extends TSchema>(key: string, value: Static<S>, options: WithSchema<SetOptions<S>, S>): Promise<void>
  set(key: string, value: unknown, options?: WithoutSchema<SetOptions>): Promise<void>

  /** The cached value, or the loader's (run once per key across callers and instances), typed by the schema or the loader. */
  getOrSet<S extends TSchema>(key: string, loader: Loader<Static<S>>, options: WithSchema<GetOrSetOptions<S>, S>): Promise<Static<S>>
  getOrSet<T>(key: string, loader: Loader<T>, options?: WithoutSchema<GetOrSetOptions>): Promise<T>

  /** One Redis round trip for all keys; results in the order of `keys`. */
  getMany<S extends TSchema>(keys: readonly string[], options: WithSchema<GetOptions<S>, S>): Promise<Array<Static<S> | undefined>>
  getMany<T = unknown>(keys: readonly string[], options?: WithoutSchema<GetOptions>): Promise<Array<T | undefined>>

  /** One lookup for all keys and one loader call for all misses. */
  getOrSetMany<S extends TSchema>(keys: readonly string[], loader: ManyLoader<Static<S>>, options: WithSchema<GetOrSetOptions<S>, S>): Promise<Array<Static<S> | undefined>>
  getOrSetMany<T>(keys: readonly string[], loader: ManyLoader<T>, options?: WithoutSchema<GetOrSetOptions>): Promise<Array<T | undefined>>

  /** True when a fresh value is cached. */
  has(key: string, options?: GetOptions<TSchema | undefined>): Promise<boolean>
  delete(key: string): Promise<void>
  /** Every entry carrying one of these tags, in any namespace, becomes a miss. */
  invalidateTags(tags: readonly string[]): Promise<void>
  /** Every entry of this namespace (not of its children) becomes a miss, in O(1): a generation bump, no key scan. */
  clear(): Promise<void>
  /** A child namespace: keys scoped under it, defaults merged over this one's. */
  namespace(name: string, defaults?: CacheDefaults): Cache
  stats(): CacheStats
  /** Call when Redis comes back: invalidations may have been missed, so the memory tier is flushed. */
  onReconnect(): void
  /** Resolves once the invalidation subscriber listens (or has failed to; that is logged). */
  ready(): Promise<void>
  /** Stops listening for invalidations and drops the memory tier. Does not close the Redis clients. */
  close(): Promise<void>
}
