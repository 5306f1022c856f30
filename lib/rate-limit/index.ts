// The rate-limit store library: Redis limiter, in-process limiter, Redis-down modes, key helpers,
// the adapter for @fastify/rate-limit's `store` option, the allow list and the HTTP face (429, IETF headers).
export { clientIpKey, buildLimitKeys, type LimitKeyOptions } from './keys.js'
export { buildAllowList, AllowListError } from './allow-list.js'
export { RateLimitExceededError, formatRateLimit, formatRateLimitPolicy } from './http.js'
export { MemoryLimiter, type MemoryLimiterOptions } from './memory-limiter.js'
export { RedisLimiter, RateLimitRedisError, type RedisClient, type RedisLimiterOptions } from './redis-limiter.js'
export { RateLimitStore, resolveBan, type ConsumeOptions, type RateLimitStoreOptions } from './store.js'
export {
  fastifyRateLimitStore, RateLimitUnavailableError,
  type FastifyRateLimitStoreAdapter, type FastifyRateLimitStoreClass, type RouteLimiterOptions
} from './fastify-store.js'
export { FIXED_WINDOW_LUA, SLIDING_WINDOW_LUA } from './scripts.js'
export type {
  BanOptions, DecisionSource, Limiter, LimiterResult, LimitKeys, LimitParams, RateLimitAlgorithm,
  RateLimitDecision, RateLimitLogger, RateLimitStats, RedisDownMode, ResolvedBan
} from './types.js'
