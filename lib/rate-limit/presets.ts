// Route presets: plain objects a route's `config.rateLimit` takes. Typed on the request fields they
// read (structurally), so lib/ stays free of Fastify; any FastifyRequest has them.
import { ipRateLimitKey } from './keys.js'
import type { RouteLimiterOptions } from './fastify-store.js'

const AUTH_WINDOW_MS = 60_000

/** The auth preset's max: RATE_LIMIT_AUTH_MAX of the app serving the request (5 without the suite's config). */
export function authMax (request: { server: unknown }): number {
  return (request.server as { config?: { RATE_LIMIT_AUTH_MAX?: number } }).config?.RATE_LIMIT_AUTH_MAX ?? 5
}

/**
 * For login, password reset and sign-up routes: RATE_LIMIT_AUTH_MAX attempts (default 5) a minute per
 * client IP and route (the session does not count: the caller is not signed in yet), sliding, and a
 * 15-minute ban, shared by every instance, after 5 refusals within 15 minutes. Use as
 * `{ config: { rateLimit: authRateLimit } }`, or spread it to change a field (`max: 3` pins a number).
 * On a route, the configured maximum is read once when the route is added; elsewhere (createRateLimit)
 * per request from `request.server.config`.
 */
export const authRateLimit = Object.freeze({
  max: authMax,
  timeWindow: AUTH_WINDOW_MS,
  keyGenerator: (request: { ip: string }): string => ipRateLimitKey(request.ip),
  limiter: Object.freeze({ algorithm: 'sliding', policy: 'auth', ban: Object.freeze({ after: 5, duration: '15m', within: '15m' }) }) as RouteLimiterOptions & { policy?: string }
})
