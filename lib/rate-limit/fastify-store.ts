// The adapter behind @fastify/rate-limit's `store` option. The plugin constructs the class itself with
// its own options (`new Store(globalParams)`), so our RateLimitStore is bound in a closure, and per-route
// settings reach us through `child(routeOptions)` (the merged `config.rateLimit` of the route).
import type { BoundLimit, RateLimitStore } from './store.js'
import type { BanOptions, RateLimitAlgorithm, RateLimitDecision } from './types.js'
import { RateLimitUnavailableError } from '../errors/index.js'

/** Per-route settings read from `config.rateLimit.limiter` (a name the plugin itself leaves alone). */
export interface RouteLimiterOptions {
  algorithm?: RateLimitAlgorithm
  /** Our Redis-stored ban; the plugin's own numeric `ban` option is a different thing (403 by count). */
  ban?: BanOptions | false
  /** Names the counter; default: method and URL of the route, so each route counts on its own. */
  scope?: string
}

/** What @fastify/rate-limit hands to the constructor and to child(); only the fields we read. */
interface PluginParams {
  continueExceeding?: boolean
  exponentialBackoff?: boolean
  limiter?: RouteLimiterOptions
  routeInfo?: { method?: string | string[], url?: string }
}

type IncrCallback = (error: Error | null, result?: { current: number, ttl: number }) => void

/** The instance shape @fastify/rate-limit calls (FastifyRateLimitStore, with `child` as it really is called). */
export interface FastifyRateLimitStoreAdapter {
  incr: (key: string, callback: IncrCallback, timeWindow: number, max: number) => void
  /** The `{ increment: false }` peek: the count so far, nothing counted. */
  read: (key: string, callback: IncrCallback, timeWindow: number, max: number) => void
  child: (routeOptions: unknown) => FastifyRateLimitStoreAdapter
}

export type FastifyRateLimitStoreClass = new (options: unknown) => FastifyRateLimitStoreAdapter

/**
 * The counter's scope: `limiter.scope` when given; the route's method and URL for a route; 'global'
 * for the plugin-wide limit (no routeInfo). A `createRateLimit(options)` limiter (routeInfo without a
 * URL) counts on its own scope named by its settings, never on the global counter of the route it runs in.
 */
function scopeOf (params: PluginParams & { max?: unknown, timeWindow?: unknown }): string {
  if (params.limiter?.scope !== undefined) return params.limiter.scope
  const info = params.routeInfo
  if (info === undefined) return 'global'
  if (info.url === undefined) {
    const setting = (value: unknown): string => typeof value === 'number' ? String(value) : 'fn'
    return `limiter:${setting(params.max)}/${setting(params.timeWindow)}/${params.limiter?.algorithm ?? 'default'}`
  }
  const method = info.method
  return `${Array.isArray(method) ? method.join(',') : method ?? ''}${info.url}`
}

function settle (callback: IncrCallback): (decision: RateLimitDecision) => void {
  return (decision) => {
    if (decision.unavailable) {
      callback(new RateLimitUnavailableError(decision.retryAfterMs))
      return
    }
    callback(null, { current: decision.current, ttl: decision.allowed ? decision.resetMs : decision.retryAfterMs })
  }
}

/** The limit @fastify/rate-limit's (merged) options count on; also how createRateLimit()'s reward/penalty find it. */
export function boundLimitOf (store: RateLimitStore, options: unknown): BoundLimit {
  const params = (options ?? {}) as PluginParams & { max?: unknown, timeWindow?: unknown }
  const { limiter } = params
  return store.limit({
    max: typeof params.max === 'number' ? params.max : 0,
    timeWindow: typeof params.timeWindow === 'number' ? params.timeWindow : 60_000,
    scope: scopeOf(params),
    algorithm: limiter?.algorithm,
    ban: limiter?.ban,
    continueExceeding: params.continueExceeding,
    exponentialBackoff: params.exponentialBackoff
  })
}

/**
 * A class for `fastify.register(rateLimit, { store: fastifyRateLimitStore(store) })`.
 * `ttl` is what the plugin turns into `x-ratelimit-reset` (allowed: ms until the quota is whole)
 * and `Retry-After` (refused: ms until a request would pass). Each route's limit is resolved once,
 * in child(); `max` and `timeWindow` still come per call (they may be functions of the request).
 */
export function fastifyRateLimitStore (store: RateLimitStore): FastifyRateLimitStoreClass {
  return class RedisSuiteRateLimitStore implements FastifyRateLimitStoreAdapter {
    readonly #limit: BoundLimit

    constructor (options: unknown) {
      this.#limit = boundLimitOf(store, options)
    }

    incr (key: string, callback: IncrCallback, timeWindow: number, max: number): void {
      // The bound limit never rejects (Redis failures become the Redis-down mode).
      this.#limit.consume(key, max, timeWindow).then(settle(callback), callback)
    }

    read (key: string, callback: IncrCallback, timeWindow: number, max: number): void {
      this.#limit.peek(key, max, timeWindow).then(settle(callback), callback)
    }

    child (routeOptions: unknown): FastifyRateLimitStoreAdapter {
      return new RedisSuiteRateLimitStore(routeOptions)
    }
  }
}
