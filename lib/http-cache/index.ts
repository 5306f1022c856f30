// The HTTP response cache core, free of Fastify: plugins/http-cache.ts adapts it.
export { formatCacheControl, forbidsStoring, parseCacheControl, wantsRevalidation, type Directives, type ResponseFreshness } from './cache-control.js'
export {
  bodyOf, freshness, replayableHeaders, storageTtl, StoredResponseSchema, whyNotStorable,
  type EntryLifetime, type Freshness, type ResponseHeaders, type StoreCandidate, type StoredResponse
} from './entry.js'
export { computeEtag, matchesIfNoneMatch } from './etag.js'
export { surrogateKeyHeader, surrogateKeyOf, unsendableHeader } from './headers.js'
export { buildResponseKey, canonicalUrl, constraintsKey, hasUnlistedCookie, hashIdentity, headerValue, readCookie, type ResponseKeyParts } from './key.js'
export { readMaxmemoryPolicy, readMemory, type RedisMemory } from './maxmemory-policy.js'
export {
  CACHEABLE_METHODS, INVALIDATING_METHODS, resolveRoutePolicy, tagsFor,
  type CachedRoutePolicy, type RouteCacheOptions, type RouteDefaults, type RoutePolicy, type TagSource
} from './policy.js'
export { ResponseStore, type Fill, type HttpCacheStats, type Lookup, type ResponseStoreOptions } from './response-store.js'
export { RouteBudget } from './route-budget.js'
