// The rate-limit store library: Redis limiter, in-process limiter, Redis-down modes, key helpers,
// the adapter for @fastify/rate-limit's `store` option, the allow list and the HTTP face (429, IETF headers).
export { clientIpKey, ipRateLimitKey, buildLimitKeys, limitKeyPrefix, type LimitKeyOptions } from './keys.js'
export { buildAllowList } from './allow-list.js'
export { checkPluginOptions, checkRouteOptions } from './options.js'
export { formatRateLimit, formatRateLimitPolicy, rateLimitFormatter } from './http.js'
export { MemoryLimiter, type MemoryLimiterOptions } from './memory-limiter.js'
export { RedisLimiter, type RedisClient } from './redis-limiter.js'
export { BatchedLimiter, defaultLeaseSize, type BatchedLimiterOptions } from './batched-limiter.js'
export { RateLimitStore, resolveBan, type BoundLimit, type BoundPolicies, type PoliciesDecision, type PolicyDefinition, type ConsumeOptions, type LimitDefinition, type RateLimitStoreOptions, type RateLimitSync } from './store.js'
export {
  boundLimitOf, fastifyRateLimitStore,
  type FastifyRateLimitStoreAdapter, type FastifyRateLimitStoreClass, type RouteLimiterOptions
} from './fastify-store.js'
export { FIXED_WINDOW_LUA, SLIDING_WINDOW_LUA } from './scripts.js'
export { authRateLimit, authMax } from './presets.js'
export type {
  BanOptions, DecisionSource, Limiter, LimiterResult, LimitKeys, LimitParams, RateLimitAlgorithm,
  RateLimitDecision, RateLimitLogger, RateLimitStats, RedisDownMode, ResolvedBan
} from './types.js'
