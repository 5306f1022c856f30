// Rate limits: @fastify/rate-limit routes, hooks and counts, with the suite's store behind its `store`
// option (Redis, one round trip per request, the Redis-down mode from config). Requests are keyed by
// the session's user id, else by client IP (TRUST_PROXY-aware, IPv6 by /64). Answers carry the IETF
// RateLimit and RateLimit-Policy headers; a refusal is a JSON 429 with Retry-After.
import fp from 'fastify-plugin'
import fastifyRateLimit from '@fastify/rate-limit'
// Keeps @fastify/rate-limit's declaration merging (config.rateLimit) in this module's .d.ts, for apps that do not install it.
export type {} from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import { tryParseDuration } from '../lib/duration.js'
import { buildAllowList } from '../lib/rate-limit/allow-list.js'
import { fastifyRateLimitStore, type RouteLimiterOptions } from '../lib/rate-limit/fastify-store.js'
import { RateLimitExceededError, formatRateLimit, formatRateLimitPolicy } from '../lib/rate-limit/http.js'
import { clientIpKey } from '../lib/rate-limit/keys.js'
import { RateLimitStore } from '../lib/rate-limit/store.js'
import type { RateLimitDecision, RateLimitStats, RedisDownMode } from '../lib/rate-limit/types.js'

/** The suite's part of a route's `config.rateLimit`: `{ max, timeWindow, …, limiter: { … } }`. */
export interface RouteLimiter extends RouteLimiterOptions {
  /** Policy name in the RateLimit headers. Default 'route'; the global limit's is 'default'. */
  policy?: string
}

declare module '@fastify/rate-limit' {
  interface RateLimitOptions {
    /** The suite's store: algorithm, Redis-stored ban, counter scope, header policy name. */
    limiter?: RouteLimiter
  }
}

export interface RateLimits {
  readonly store: RateLimitStore
  /** What happens while Redis is down: fallback, open or closed. */
  readonly mode: RedisDownMode
  /** Where limits are counted: Redis, or this process when no Redis is configured. */
  readonly backend: 'redis' | 'memory'
  /** Decision counters since start (for metrics, read at scrape time). */
  stats: () => RateLimitStats
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The suite's rate-limit store and its counters (`app.rateLimit` is @fastify/rate-limit's hook factory). */
    rateLimits: RateLimits
  }
}

export interface RateLimitPluginOptions {
  /** Who a request counts against. Default: `user:<id>` when the session has a userId, else `ip:<client IP>`. */
  keyGenerator?: (request: FastifyRequest) => string | number | Promise<string | number>
  /** Also never limit these requests (besides RATE_LIMIT_ALLOW_LIST). */
  allowList?: (request: FastifyRequest, key: string) => boolean | Promise<boolean>
  /** IPv6 clients are grouped by this prefix length. Default 64. */
  ipv6Subnet?: number
  /**
   * URL prefixes the global limit leaves alone unless the route sets `config.rateLimit`: probes and
   * scrapers must answer whatever Redis does. Default ['/health', '/metrics'].
   */
  exemptRoutes?: string[]
  /** Called for every decision; errors it throws are ignored. */
  onDecision?: (decision: RateLimitDecision) => void
}

interface SessionLike { get?: (key: string) => unknown }

/** The session's `userId`, when @fastify/session (or anything shaped like it) loaded one. */
export function sessionUserId (request: FastifyRequest): string | undefined {
  try {
    const session = (request as unknown as { session?: SessionLike | null }).session
    const id = typeof session?.get === 'function' ? session.get('userId') : undefined
    return typeof id === 'string' || typeof id === 'number' ? String(id) : undefined
  } catch {
    return undefined // a session that cannot be read counts as anonymous
  }
}

/** The client IP key: IPv4 as is, IPv6 by its /64 (request.ip honours the trustProxy list). */
export function clientIpRateLimitKey (request: FastifyRequest, ipv6Subnet = 64): string {
  return `ip:${clientIpKey(request.ip, ipv6Subnet)}`
}

/** The default key: the signed-in user, else the client IP. */
export function rateLimitKey (request: FastifyRequest, ipv6Subnet = 64): string {
  const userId = sessionUserId(request)
  return userId === undefined ? clientIpRateLimitKey(request, ipv6Subnet) : `user:${userId}`
}

/**
 * For login, password reset and sign-up routes: 5 attempts a minute per client IP and route (the
 * session does not count: the caller is not signed in yet), sliding, and a 15-minute ban, shared by
 * every instance, after 5 refusals within 15 minutes. Use as `{ config: { rateLimit: authRateLimit } }`
 * or spread it to change a field.
 */
export const authRateLimit = Object.freeze({
  max: 5,
  timeWindow: 60_000,
  keyGenerator: (request: FastifyRequest): string => clientIpRateLimitKey(request),
  limiter: Object.freeze({ algorithm: 'sliding', policy: 'auth', ban: Object.freeze({ after: 5, duration: '15m', within: '15m' }) }) as RouteLimiter
})

const LEGACY_HEADERS = ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset'] as const

interface Policy { name: string, windowMs: number | undefined }

// @fastify/rate-limit writes x-ratelimit-*; they become the IETF fields here, so every number comes from
// the one decision the plugin made (a per-request `max` function included).
function ietfHeaders (policy: Policy, keepLegacy: boolean) {
  return function rateLimitHeaders (_request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: null, payload: unknown) => void): void {
    const limit = reply.getHeader('x-ratelimit-limit')
    if (limit !== undefined) {
      reply.header('ratelimit-policy', formatRateLimitPolicy(policy.name, Number(limit), policy.windowMs))
      reply.header('ratelimit', formatRateLimit(policy.name, Number(reply.getHeader('x-ratelimit-remaining')), Number(reply.getHeader('x-ratelimit-reset'))))
      if (!keepLegacy) for (const name of LEGACY_HEADERS) reply.removeHeader(name)
    }
    done(null, payload)
  }
}

function isUnder (url: string, prefix: string): boolean {
  return url === prefix || url.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`)
}

async function rateLimitPlugin (app: FastifyInstance, options: RateLimitPluginOptions = {}): Promise<void> {
  const config = app.config
  const redis = app.redisConnections.main
  const store = new RateLimitStore({
    redis,
    isRedisReady: redis === undefined ? undefined : () => app.redisMonitor.isReady(),
    whenRedisDown: config.RATE_LIMIT_WHEN_REDIS_DOWN,
    timeout: config.RATE_LIMIT_TIMEOUT,
    algorithm: config.RATE_LIMIT_ALGORITHM,
    ban: config.RATE_LIMIT_BAN_AFTER > 0 ? { after: config.RATE_LIMIT_BAN_AFTER, duration: config.RATE_LIMIT_BAN_DURATION } : false,
    logger: app.log.child({ plugin: 'rate-limit' }),
    onDecision: options.onDecision
  })
  app.decorate('rateLimits', { store, mode: store.mode, backend: store.backend, stats: () => store.stats() })

  const allowedIp = buildAllowList(config.RATE_LIMIT_ALLOW_LIST)
  const extraAllow = options.allowList
  const ipv6Subnet = options.ipv6Subnet ?? 64
  const exempt = options.exemptRoutes ?? ['/health', '/metrics']

  // Runs before @fastify/rate-limit's own onRoute hook (registered below), so an exemption counts.
  app.addHook('onRoute', (route) => {
    const limit = route.config?.rateLimit
    if (limit == null && exempt.some((prefix) => isUnder(route.url, prefix))) {
      route.config = { ...route.config, rateLimit: false }
      return
    }
    if (limit === false || (limit == null && !config.RATE_LIMIT_GLOBAL)) return
    const policy: Policy = limit == null
      ? { name: 'default', windowMs: config.RATE_LIMIT_WINDOW }
      : {
          name: limit.limiter?.policy ?? 'route',
          windowMs: typeof limit.timeWindow === 'function' ? undefined : tryParseDuration(limit.timeWindow ?? config.RATE_LIMIT_WINDOW)
        }
    const hook = ietfHeaders(policy, config.RATE_LIMIT_LEGACY_HEADERS) as unknown as NonNullable<RouteOptions['onSend']>
    const existing = route.onSend
    route.onSend = existing === undefined ? [hook] as never : [...(Array.isArray(existing) ? existing : [existing]), hook] as never
  })

  await app.register(fastifyRateLimit, {
    global: config.RATE_LIMIT_GLOBAL,
    max: config.RATE_LIMIT_MAX,
    timeWindow: config.RATE_LIMIT_WINDOW,
    store: fastifyRateLimitStore(store),
    keyGenerator: options.keyGenerator ?? ((request) => rateLimitKey(request, ipv6Subnet)),
    ...(allowedIp === undefined && extraAllow === undefined
      ? {}
      : { allowList: async (request: FastifyRequest, key: string) => allowedIp?.(request.ip) === true || (extraAllow !== undefined && await extraAllow(request, key)) }),
    errorResponseBuilder: (_request, context) => new RateLimitExceededError(context.ttl, context.ban),
    // Closed mode must reach the client as a 503, never be skipped.
    skipOnError: false
  })
}

export default fp(rateLimitPlugin, {
  name: 'redis-suite-rate-limit',
  fastify: '5.x',
  dependencies: ['redis-suite-config', 'redis-suite-redis']
})
