// The suite: one registration gives config, Redis, and the features built on it, in dependency order.
// onClose runs in reverse, so Redis closes after everything that uses it.
// Order: config → redis → cache → http-cache → session → rate-limit → pubsub/presence/locks → health → metrics
// (metrics last: it reads every feature's stats at scrape time, so no feature depends on it).
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import configPlugin, { type ConfigPluginOptions } from './plugins/config.js'
import redisPlugin, { type RedisPluginOptions } from './plugins/redis.js'
import cachePlugin, { type CachePluginOptions } from './plugins/cache.js'
import httpCachePlugin, { type HttpCachePluginOptions } from './plugins/http-cache.js'
import sessionPlugin, { type RegenerateOptions, type SessionPluginOptions } from './plugins/session.js'
import rateLimitPlugin, { type RateLimitPluginOptions } from './plugins/rate-limit.js'
import pubsubPlugin from './plugins/pubsub.js'
import presencePlugin from './plugins/presence.js'
import locksPlugin from './plugins/locks.js'
import healthRoutes, { healthPrefix, type HealthRoutesOptions } from './routes/health.js'
import metricsPlugin, { type MetricsPluginOptions } from './plugins/metrics.js'

/**
 * Every feature but config, Redis and the cache can be left out with `false`: a feature left out opens
 * no connection and adds no decorator, hook or route (an app that has its own sessions, limiter,
 * metrics or /health keeps them).
 */
export interface RedisSuiteOptions extends ConfigPluginOptions {
  /** The connection: an existing ioredis client to use instead of one built from the config. */
  redis?: RedisPluginOptions
  /** Cache options beyond the environment (an onEvent hook, timeouts, lock bounds). */
  cache?: CachePluginOptions
  /** HTTP response cache options (namespace, collapse wait, body limit, who is authenticated, private user key); false: no response cache. */
  httpCache?: HttpCachePluginOptions | false
  /** Session options beyond the environment (the payload schema, the user id field); false: no cookie, session or app.sessions. */
  session?: SessionPluginOptions | false
  /** Rate-limit options beyond the environment (a custom key, an extra allow list, exempt routes); false: no limits at all. */
  rateLimit?: RateLimitPluginOptions | false
  /** false: no app.pubsub. */
  pubsub?: boolean
  /** false: no app.presence. */
  presence?: boolean
  /** false: no app.locks. */
  locks?: boolean
  /** Metrics options beyond the environment (path, Redis command timing, process series); false: no /metrics and no timing hooks. */
  metrics?: MetricsPluginOptions | false
  /** Health routes' prefix (default '/health'); false: no health routes. */
  health?: HealthRoutesOptions | false
}

async function redisSuite (app: FastifyInstance, options: RedisSuiteOptions): Promise<void> {
  const { redis, cache, httpCache, session, rateLimit, pubsub, presence, locks, metrics, health, ...configOptions } = options
  await app.register(configPlugin, configOptions)
  await app.register(redisPlugin, redis ?? {})
  await app.register(cachePlugin, cache ?? {})
  if (httpCache !== false) await app.register(httpCachePlugin, httpCache ?? {})
  if (session !== false) await app.register(sessionPlugin, session ?? {})
  if (rateLimit !== false) {
    // The global limit leaves the probes and the scraper alone wherever they are mounted.
    const exemptRoutes = [
      ...(health === false ? [] : [healthPrefix(health)]),
      ...(metrics === false ? [] : [metrics?.path ?? '/metrics'])
    ]
    await app.register(rateLimitPlugin, { exemptRoutes, ...rateLimit })
  }
  if (pubsub !== false) await app.register(pubsubPlugin)
  if (presence !== false) await app.register(presencePlugin)
  if (locks !== false) await app.register(locksPlugin)
  // Metrics before the health routes (DESIGN §1), so its per-route timing sees them.
  if (metrics !== false) await app.register(metricsPlugin, metrics ?? {})
  if (health !== false) await app.register(healthRoutes, health ?? {})
}

export default fp(redisSuite, { name: 'fastify-redis-suite', fastify: '5.x' })
// The declarations of the packages the suite registers travel with its own: `request.session`
// (@fastify/session, @fastify/cookie), `app.redis` (@fastify/redis) and a route's `config.rateLimit`
// (@fastify/rate-limit) then type-check in an app that
// never installed them itself (pnpm's isolated layout included). `import type {}` would be dropped from
// the emitted .d.ts; `export type {} from` is kept. test/package.test.ts checks it on the packed package.
export type {} from '@fastify/session'
export type {} from '@fastify/redis'
export type {} from '@fastify/rate-limit'
export { configPlugin, redisPlugin, cachePlugin, healthRoutes, type HealthRoutesOptions }
export type { CachePluginOptions } from './plugins/cache.js'
export { httpCachePlugin, type HttpCachePluginOptions }
export type { HttpCache } from './plugins/http-cache.js'
export type { RouteCacheOptions, HttpCacheStats } from './lib/http-cache/index.js'
export { createCache } from './lib/cache/index.js'
export type { Cache, CacheDefaults, CacheOptions, CacheStats, GetOptions, GetOrSetOptions, SetOptions, Loader } from './lib/cache/index.js'
export { quitWithin, type RedisClient, type RedisConnections, type RedisPluginOptions } from './plugins/redis.js'
export { buildConnectionPlan, boundedOptions, retryStrategy, type RedisMode } from './lib/redis/index.js'
export { RedisMonitor, type RedisState, type RedisStatus, type RedisServerInfo } from './lib/redis/index.js'
export { HealthRegistry, type HealthCheckOptions, type CheckStatus, type CheckResult } from './lib/health/index.js'
export { loadConfig, redactConfig, redactUrl, isRedisConfigured } from './lib/config/index.js'
export { ConfigSchema, type Config } from './lib/config/index.js'
export { parseDuration, type Duration } from './lib/config/index.js'
export { parseEncryptionKeys, zstdAvailable, type CompressionCodec, type CompressionOptions, type EncryptionKey } from './lib/codecs/index.js'
export type { PayloadCodecOptions } from './lib/session/index.js'
export { rateLimitPlugin }
export { authRateLimit, rateLimitKey, clientIpRateLimitKey, sessionUserId, type RateLimitPluginOptions, type RateLimits, type RouteLimiter, type RatePolicy, type RateLimitAdjuster, type SuiteRateLimiter, type CreateRateLimitResult } from './plugins/rate-limit.js'
export { RateLimitStore, fastifyRateLimitStore, clientIpKey, type RateLimitStats, type RateLimitDecision, type RedisDownMode, type RateLimitAlgorithm, type BanOptions } from './lib/rate-limit/index.js'
export { metricsPlugin }
export { SuiteMetrics, bearerTokenMatches, type MetricSources } from './lib/metrics/index.js'
export type { MetricsPluginOptions } from './plugins/metrics.js'
export { pubsubPlugin, presencePlugin, locksPlugin }
export type { PubSubPluginOptions } from './plugins/pubsub.js'
export type { PresencePluginOptions } from './plugins/presence.js'
export type { LocksPluginOptions } from './plugins/locks.js'
export { PubSub, type PubSubStats, type MessageHandler, type MessageMeta, type TypedChannel, type Unsubscribe } from './lib/realtime/index.js'
export type { TypedStream, StreamConsumer, StreamHandler, StreamMeta, StreamOptions, ConsumeOptions, DeadLetter } from './lib/realtime/index.js'
export { Presence, type PresenceMember, type PresenceStats, type JoinResult } from './lib/realtime/index.js'
export { Locks, Lock, tryLock, tryFencedLock, releaseLock, extendLock, type LockStats, type AcquireOptions, type WithLockOptions } from './lib/locks/index.js'
export { sessionPlugin, type SessionPluginOptions, type RegenerateOptions }
export {
  SessionStore, UserSessions, RedisSessionBackend, MemorySessionBackend, type SessionInfo, type SessionStats, type SessionStoreOptions,
  type SessionEvent, type SessionEventName, type SessionEventHandler, type SessionEventReasons, type SessionEventStats
} from './lib/session/index.js'
export { enableTracing, CHANNEL_NAMES as TRACING_CHANNELS, type Tracing, type TracingOptions, type SuiteTraceContext } from './lib/tracing/index.js'
// The errors, declared once with their codes; `errors` lists every FRS_ code with its class, HTTP
// status and when it is raised (README.md "Errors").
export {
  errors, PluginConflictError, HttpCacheConfigError, CacheKeyError, CacheNamespaceError, CacheTimeoutError, CacheValueError, RedisUnavailableError, RedisSetupError,
  ConfigError, RateLimitUnavailableError, RateLimitExceededError, RateLimitOptionError, PubSubMessageError, LockBusyError, LockLostError, RedisCommandError, SessionUnavailableError, SessionDataError, SessionNotEnabledError
} from './lib/errors/index.js'
