// Options an app switching from @fastify/rate-limit already passes: each one either works as it did
// there or stops registration with a line saying what to use instead. None is silently ignored, and
// a typo (`timeWindo`, `limiter: { algorithim }`) is named with the option meant, since it would
// otherwise leave a route on the defaults.
import { didYouMean } from '../config/index.js'
import { RateLimitOptionError } from '../errors/index.js'

/** The suite's plugin options, and @fastify/rate-limit's that mean the same here. */
const ACCEPTED = new Set([
  'keyGenerator', 'allowList', 'ipv6Subnet', 'exemptRoutes', 'onDecision', 'client',
  'errorResponseBuilder', 'continueExceeding', 'exponentialBackoff', 'ban'
])

const SKIP_ON_ERROR = 'skipOnError is not supported: while Redis is down RATE_LIMIT_WHEN_REDIS_DOWN decides (fallback, the default: in-process limits; open: requests pass unchecked, as skipOnError: true did; closed: 503 with Retry-After)'

/** Fastify's own registration options, which every plugin receives. */
const REGISTRATION = new Set(['prefix', 'logLevel', 'logSerializers'])

/** @fastify/rate-limit's plugin options that have another home in the suite. */
const ELSEWHERE: Record<string, string> = {
  skipOnError: SKIP_ON_ERROR,
  max: 'max is set by RATE_LIMIT_MAX (or per route in config.rateLimit)',
  timeWindow: 'timeWindow is set by RATE_LIMIT_WINDOW (or per route in config.rateLimit)',
  global: 'global is set by RATE_LIMIT_GLOBAL',
  redis: 'redis is not needed: limits are counted on the suite\'s connection (REDIS_URL), or pass an ioredis client of yours as client',
  store: 'store is not needed: limits are counted by the suite\'s store (REDIS_URL; RATE_LIMIT_WHEN_REDIS_DOWN while it is down)',
  nameSpace: 'nameSpace is not needed: the suite keeps limits under its own prefix (after REDIS_KEY_PREFIX)',
  cache: 'cache is not needed: the in-process fallback is bounded by the suite',
  addHeaders: 'addHeaders is not supported: the suite sends RateLimit and RateLimit-Policy, and x-ratelimit-* with RATE_LIMIT_LEGACY_HEADERS=true',
  addHeadersOnExceeding: 'addHeadersOnExceeding is not supported: the suite sends RateLimit and RateLimit-Policy, and x-ratelimit-* with RATE_LIMIT_LEGACY_HEADERS=true',
  enableDraftSpec: 'enableDraftSpec is not needed: the suite always sends the IETF RateLimit and RateLimit-Policy headers (RATE_LIMIT_LEGACY_HEADERS=true adds x-ratelimit-*)',
  hook: 'hook is set per route in config.rateLimit',
  groupId: 'groupId is set per route in config.rateLimit',
  onExceeding: 'onExceeding is set per route in config.rateLimit (or use onDecision for every decision)',
  onExceeded: 'onExceeded is set per route in config.rateLimit (or use onDecision for every decision)',
  onBanReach: 'onBanReach is set per route in config.rateLimit (or use onDecision for every decision)'
}

/** What a route's config.rateLimit may hold: @fastify/rate-limit's route options the suite honours, and its `limiter`. */
const ROUTE_ACCEPTED = [
  'max', 'timeWindow', 'allowList', 'keyGenerator', 'ban', 'hook', 'continueExceeding', 'exponentialBackoff', 'groupId',
  'errorResponseBuilder', 'onExceeding', 'onExceeded', 'onBanReach', 'limiter', 'policies'
]
/** Beside `policies`: the route-wide options; the rest belong to each policy. */
const POLICIES_ROUTE_ACCEPTED = ['policies', 'hook', 'allowList', 'errorResponseBuilder', 'onExceeding', 'onExceeded']
const POLICY_ACCEPTED = ['name', 'max', 'timeWindow', 'keyGenerator', 'algorithm', 'cost', 'dryRun', 'scope']
const LIMITER_ACCEPTED = ['algorithm', 'ban', 'scope', 'policy']

/** @fastify/rate-limit's plugin-wide options, which a route's config.rateLimit cannot change here. */
const ROUTE_ELSEWHERE: Record<string, string> = {
  skipOnError: SKIP_ON_ERROR,
  global: 'global is set by RATE_LIMIT_GLOBAL; a route opts out with rateLimit: false',
  ipv6Subnet: 'ipv6Subnet is a plugin option (register the suite with rateLimit: { ipv6Subnet })',
  ...Object.fromEntries(['redis', 'store', 'nameSpace', 'cache', 'addHeaders', 'addHeadersOnExceeding', 'enableDraftSpec']
    .map((name) => [name, ELSEWHERE[name] as string]))
}

/** Throws RateLimitOptionError for the first option the suite's rate-limit plugin would not honour. */
export function checkPluginOptions (options: object): void {
  for (const name of Object.keys(options)) {
    if (ACCEPTED.has(name) || REGISTRATION.has(name)) continue
    const hint = ELSEWHERE[name]
    throw new RateLimitOptionError(`rate-limit option ${hint ?? `${name} is unknown${didYouMean(name, ACCEPTED) || ` (accepted: ${[...ACCEPTED].join(', ')})`}`}`)
  }
}

/**
 * Throws for a route's `config.rateLimit` (`where`: the route) holding an option that would otherwise be
 * ignored: one @fastify/rate-limit takes plugin-wide only, or a name neither it nor the suite reads.
 */
export function checkRouteOptions (options: object, where: string): void {
  const problems: string[] = []
  const unknown = (name: string, known: readonly string[], path: string): string =>
    `unknown option ${path}${name}${didYouMean(name, known) || ` (options: ${known.join(', ')})`}`
  const policies = (options as { policies?: unknown }).policies
  if (policies !== undefined) {
    checkPolicies(options, policies, problems, unknown)
    if (problems.length > 0) throw new RateLimitOptionError(`config.rateLimit of ${where}: ${problems.join('; ')}`)
    return
  }
  for (const name of Object.keys(options)) {
    if (ROUTE_ACCEPTED.includes(name)) continue
    problems.push(ROUTE_ELSEWHERE[name] ?? unknown(name, ROUTE_ACCEPTED, ''))
  }
  const limiter = (options as { limiter?: unknown }).limiter
  if (limiter !== null && typeof limiter === 'object') {
    for (const name of Object.keys(limiter)) if (!LIMITER_ACCEPTED.includes(name)) problems.push(unknown(name, LIMITER_ACCEPTED, 'limiter.'))
  }
  if (problems.length > 0) throw new RateLimitOptionError(`config.rateLimit of ${where}: ${problems.join('; ')}`)
}

function checkPolicies (options: object, policies: unknown, problems: string[], unknown: (name: string, known: readonly string[], path: string) => string): void {
  for (const name of Object.keys(options)) {
    if (POLICIES_ROUTE_ACCEPTED.includes(name)) continue
    if (POLICY_ACCEPTED.includes(name) || ROUTE_ACCEPTED.includes(name)) {
      problems.push(`${name} cannot sit beside policies: set it in each policy (policy options: ${POLICY_ACCEPTED.join(', ')}; beside policies: ${POLICIES_ROUTE_ACCEPTED.join(', ')})`)
    } else {
      problems.push(ROUTE_ELSEWHERE[name] ?? unknown(name, POLICIES_ROUTE_ACCEPTED, ''))
    }
  }
  if (!Array.isArray(policies) || policies.length === 0) {
    problems.push('policies must be a non-empty list of { name, max, timeWindow, … }')
    return
  }
  const names = new Set<string>()
  policies.forEach((policy: unknown, i) => {
    const path = `policies[${i}].`
    if (policy === null || typeof policy !== 'object') {
      problems.push(`${path.slice(0, -1)} must be an object`)
      return
    }
    for (const name of Object.keys(policy)) if (!POLICY_ACCEPTED.includes(name)) problems.push(unknown(name, POLICY_ACCEPTED, path))
    const { name, max, timeWindow, cost, algorithm } = policy as Record<string, unknown>
    if (typeof name !== 'string' || name === '') problems.push(`${path}name must be a non-empty string (it names the policy in the RateLimit headers)`)
    else if (names.has(name)) problems.push(`${path}name ${JSON.stringify(name)} is used twice on this route`)
    else names.add(name)
    if (typeof max !== 'number' || !Number.isFinite(max) || max < 0) problems.push(`${path}max must be a number of at least 0 (a function is not supported in a policy)`)
    if (typeof timeWindow !== 'number' && typeof timeWindow !== 'string') problems.push(`${path}timeWindow must be milliseconds or a duration such as '1s'`)
    if (cost !== undefined && typeof cost !== 'function' && (typeof cost !== 'number' || !Number.isInteger(cost) || cost < 0)) problems.push(`${path}cost must be a whole number of at least 0 or a function of the request`)
    if (algorithm !== undefined && algorithm !== 'fixed' && algorithm !== 'sliding') problems.push(`${path}algorithm must be fixed or sliding`)
  })
}
