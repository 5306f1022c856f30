// The adapter behind @fastify/rate-limit's `store` option. The plugin constructs the class itself with
// its own options (`new Store(globalParams)`), so our RateLimitStore is bound in a closure, and per-route
// settings reach us through `child(routeOptions)` (the merged `config.rateLimit` of the route).
import type { RateLimitStore } from './store.js'
import type { BanOptions, RateLimitAlgorithm } from './types.js'

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

/**
 * Refusal because Redis is down and the mode is `closed`. Fastify's default error handler answers it
 * with 503 and its `headers` (Retry-After). With `skipOnError: true` the plugin would swallow it and
 * allow the request, so do not combine `skipOnError` with the closed mode.
 */
export class RateLimitUnavailableError extends Error {
  override name = 'RateLimitUnavailableError'
  readonly code = 'FRS_RATE_LIMIT_UNAVAILABLE'
  readonly statusCode = 503
  readonly headers: Record<string, string>

  constructor (retryAfterMs: number) {
    super('Rate limiting is unavailable; try again shortly')
    this.headers = { 'retry-after': String(Math.max(1, Math.ceil(retryAfterMs / 1000))) }
  }
}

/** The instance shape @fastify/rate-limit calls (FastifyRateLimitStore, with `child` as it really is called). */
export interface FastifyRateLimitStoreAdapter {
  incr: (key: string, callback: IncrCallback, timeWindow: number, max: number) => void
  child: (routeOptions: unknown) => FastifyRateLimitStoreAdapter
}

export type FastifyRateLimitStoreClass = new (options: unknown) => FastifyRateLimitStoreAdapter

function scopeOf (params: PluginParams): string {
  if (params.limiter?.scope !== undefined) return params.limiter.scope
  const method = params.routeInfo?.method
  const url = params.routeInfo?.url
  if (url === undefined) return 'global'
  return `${Array.isArray(method) ? method.join(',') : method ?? ''}${url}`
}

/**
 * A class for `fastify.register(rateLimit, { store: fastifyRateLimitStore(store) })`.
 * `ttl` is what the plugin turns into `x-ratelimit-reset` (allowed: ms until the quota is whole)
 * and `Retry-After` (refused: ms until a request would pass).
 */
export function fastifyRateLimitStore (store: RateLimitStore): FastifyRateLimitStoreClass {
  return class RedisSuiteRateLimitStore implements FastifyRateLimitStoreAdapter {
    readonly #params: PluginParams
    readonly #scope: string

    constructor (options: unknown) {
      this.#params = (options ?? {}) as PluginParams
      this.#scope = scopeOf(this.#params)
    }

    incr (key: string, callback: IncrCallback, timeWindow: number, max: number): void {
      const { limiter, continueExceeding, exponentialBackoff } = this.#params
      store.consume(key, {
        max,
        timeWindow,
        scope: this.#scope,
        algorithm: limiter?.algorithm,
        ban: limiter?.ban,
        continueExceeding,
        exponentialBackoff
      }).then((decision) => {
        if (decision.unavailable) {
          callback(new RateLimitUnavailableError(decision.retryAfterMs))
          return
        }
        callback(null, { current: decision.current, ttl: decision.allowed ? decision.resetMs : decision.retryAfterMs })
      }, (err: unknown) => {
        // consume() does not reject; this is for a bad option (e.g. a malformed ban), a programming error.
        callback(err instanceof Error ? err : new Error(String(err)))
      })
    }

    child (routeOptions: unknown): FastifyRateLimitStoreAdapter {
      return new RedisSuiteRateLimitStore(routeOptions)
    }
  }
}
