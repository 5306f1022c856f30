// The names a route's `config.rateLimit` may use, checked when the route is added: a typo
// (`timeWindo`, `limiter: { algorithim }`) would otherwise leave the route on defaults, silently.
import { didYouMean } from '../config/index.js'

/** A route's config.rateLimit with a name that neither @fastify/rate-limit nor the suite reads; thrown at start-up. */
export class RateLimitConfigError extends TypeError {
  override name = 'RateLimitConfigError'
  readonly code = 'FRS_RATE_LIMIT_CONFIG_INVALID'
}

// @fastify/rate-limit's route options (RateLimitOptions, with the plugin-wide ones it also merges per
// route), and the suite's `limiter`.
const OPTIONS: readonly string[] = [
  'max', 'timeWindow', 'store', 'skipOnError', 'allowList', 'keyGenerator', 'ipv6Subnet', 'ban', 'hook', 'cache',
  'continueExceeding', 'onBanReach', 'groupId', 'errorResponseBuilder', 'enableDraftSpec', 'onExceeding', 'onExceeded',
  'exponentialBackoff', 'global', 'redis', 'nameSpace', 'addHeaders', 'addHeadersOnExceeding', 'limiter'
]
const LIMITER_OPTIONS: readonly string[] = ['algorithm', 'ban', 'scope', 'policy']

/** Throws RateLimitConfigError naming `where` (the route) and the option meant, for any unknown name. */
export function assertRouteLimitOptions (options: object, where: string): void {
  const problems: string[] = []
  const check = (value: object, known: readonly string[], path: string): void => {
    for (const name of Object.keys(value)) {
      if (!known.includes(name)) problems.push(`unknown option ${path}${name}${didYouMean(name, known) || ` (options: ${known.join(', ')})`}`)
    }
  }
  check(options, OPTIONS, '')
  const limiter = (options as { limiter?: unknown }).limiter
  if (limiter !== null && typeof limiter === 'object') check(limiter, LIMITER_OPTIONS, 'limiter.')
  if (problems.length > 0) throw new RateLimitConfigError(`config.rateLimit of ${where}: ${problems.join('; ')}`)
}
