// Rate limits: every route (or only those with config.rateLimit) gets one route hook that keys the
// request, asks the suite's store (one EVALSHA in exact mode, usually none in batched mode) and writes
// the IETF RateLimit and RateLimit-Policy headers once from that decision; a refusal is a JSON 429 with
// Retry-After. Everything about a route's limit is resolved once, when the route is added. Requests are
// keyed by the session's user id, else by client IP (TRUST_PROXY-aware, IPv6 by /64).
// @fastify/rate-limit provides `app.createRateLimit()` and `app.rateLimit()` on the same store; it is
// run inside a child context that has no routes, so it never adds a second hook to our routes.
//
// Lifecycle (rateLimitPlugin):
//   decorates  app.rateLimits (the store, its mode and counters); app.createRateLimit and app.rateLimit
//              (registerUpstream: @fastify/rate-limit on a child context, on the suite's store)
//   onRoute    RouteLimits.wireRoute resolves the route's limit (global, its own, or its policies) and
//              adds one hook: routeHook or policiesHook, at onRequest unless config.rateLimit.hook says
//   onReady    takes the HTTP cache's isRefresh, when the HTTP cache is registered (its refreshes are not counted)
//   onClose    closes the store (the duplicate connection of its time budget, when it opened one)
import fp from 'fastify-plugin'
import fastifyRateLimit from '@fastify/rate-limit'
// Keeps @fastify/rate-limit's declaration merging (config.rateLimit) in this module's .d.ts, for apps that do not install it.
export type {} from '@fastify/rate-limit'
import type { CreateRateLimitOptions, RateLimitOptions, RateLimitPluginOptions as UpstreamOptions } from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import type { Cluster } from 'ioredis'
import { parseDuration, suiteLogOptions } from '../lib/config/index.js'
import { stopSlotsRefreshOnClose } from '../lib/redis/index.js'
import { rateLimitChannel, traceRateLimit } from '../lib/tracing/index.js'
import {
  authMax, authRateLimit, boundLimitOf, buildAllowList, checkPluginOptions, checkRouteOptions, fastifyRateLimitStore, type RouteLimiterOptions,
  formatRateLimitPolicy, rateLimitFormatter, ipRateLimitKey, RateLimitStore,
  type BoundLimit, type BoundPolicies, type RateLimitAlgorithm, type RateLimitDecision, type RateLimitStats, type RedisDownMode
} from '../lib/rate-limit/index.js'
import { loadedSession } from './session.js'
import { featureConnection, type RedisClient } from './redis.js'
import { PluginConflictError, RateLimitExceededError, RateLimitUnavailableError } from '../lib/errors/index.js'

export { authRateLimit }

/** The suite's part of a route's `config.rateLimit`: `{ max, timeWindow, …, limiter: { … } }`. */
export interface RouteLimiter extends RouteLimiterOptions {
  /** Policy name in the RateLimit headers. Default 'route'; the global limit's is 'default'. */
  policy?: string
}

/** One of several limits on a route (`config.rateLimit.policies`); a request passes only when every one allows it. */
export interface RatePolicy {
  /** Name in the RateLimit and RateLimit-Policy headers; unique on the route. */
  name: string
  /** Requests (or cost units) per window. */
  max: number
  /** Milliseconds or a duration ('1s', '1d'). */
  timeWindow: number | string
  /** Who the policy counts against. Default: the plugin's (signed-in user, else client IP). */
  keyGenerator?: KeyGenerator
  /** Default: RATE_LIMIT_ALGORITHM. */
  algorithm?: RateLimitAlgorithm
  /** Units a request uses. Default 1. */
  cost?: number | ((request: FastifyRequest) => number)
  /** Count and report in the headers, never refuse (stats count what it would have refused). Default false. */
  dryRun?: boolean
  /** Names the counter; default: the route's methods and URL, '#', the policy name. */
  scope?: string
}

declare module '@fastify/rate-limit' {
  interface RateLimitOptions {
    /** The suite's store: algorithm, Redis-stored ban, counter scope, header policy name. */
    limiter?: RouteLimiter
    /** Several limits, each with its own key, window, algorithm and cost (instead of max/timeWindow/keyGenerator). */
    policies?: RatePolicy[]
  }
}

/** `reward` and `penalty` on what `app.createRateLimit()` returns. */
export interface RateLimitAdjuster {
  /** Gives `n` requests (default 1) back to `key` (the `key` createRateLimit's answer names). */
  reward: (key: string, n?: number) => Promise<void>
  /** Charges `key` `n` more requests (default 1). */
  penalty: (key: string, n?: number) => Promise<void>
}
/** What a createRateLimit() limiter answers (as @fastify/rate-limit declares it). */
export type CreateRateLimitResult =
  | { isAllowed: true, key: string }
  | { isAllowed: false, key: string, max: number, timeWindow: number, remaining: number, ttl: number, ttlInSeconds: number, isExceeded: boolean, isBanned: boolean }
/** `app.createRateLimit()`'s limiter, with the suite's reward and penalty. */
export type SuiteRateLimiter = ((request: FastifyRequest, callOptions?: { increment?: boolean }) => Promise<CreateRateLimitResult>) & RateLimitAdjuster

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
    /** @fastify/rate-limit's limiter factory, on the suite's store; its limiters also have `reward` and `penalty`. */
    createRateLimit(options?: CreateRateLimitOptions): SuiteRateLimiter
  }
}

type KeyGenerator = (request: FastifyRequest) => string | number | Promise<string | number>

/**
 * Options of the suite's rate-limit plugin. @fastify/rate-limit's names mean what they meant there;
 * one it does not take here (skipOnError, max, addHeaders…) stops registration with a line saying what
 * to use instead (lib/rate-limit/options.ts), never silently ignored.
 */
export interface RateLimitPluginOptions {
  /** Who a request counts against. Default: `user:<id>` when the session has a userId, else `ip:<client IP>`. */
  keyGenerator?: KeyGenerator
  /** Also never limit these requests (besides RATE_LIMIT_ALLOW_LIST): keys as keyGenerator makes them, or a check. */
  allowList?: string[] | ((request: FastifyRequest, key: string) => boolean | Promise<boolean>)
  /** As @fastify/rate-limit's: the error of every refusal (429, or 403 past `ban`), unless a route sets its own. */
  errorResponseBuilder?: RateLimitOptions['errorResponseBuilder']
  /** As @fastify/rate-limit's: each refused request restarts the window. Default for every route. */
  continueExceeding?: boolean
  /** As @fastify/rate-limit's: each refused request doubles the wait. Default for every route. */
  exponentialBackoff?: boolean
  /** As @fastify/rate-limit's: 403 once a client goes this many requests past max. Default for every route. */
  ban?: number
  /** IPv6 clients are grouped by this prefix length. Default 64. */
  ipv6Subnet?: number
  /**
   * URL prefixes the global limit leaves alone unless the route sets `config.rateLimit`: probes and
   * scrapers must answer whatever Redis does. Default ['/health', '/metrics'].
   */
  exemptRoutes?: string[]
  /** Called for every decision; errors it throws are ignored. */
  onDecision?: (decision: RateLimitDecision) => void
  /** An ioredis Redis or Cluster of the app's to count on instead of the suite's connection; left open at close. */
  client?: RedisClient
}

/** The loaded session's `userId`; undefined on routes without sessions or without the session plugin. Never throws. */
export function sessionUserId (request: FastifyRequest): string | undefined {
  const id = loadedSession(request)?.get('userId')
  return typeof id === 'string' || typeof id === 'number' ? String(id) : undefined
}

/** The client IP key: IPv4 as is, IPv6 by its /64 (request.ip honours the trustProxy list). */
export function clientIpRateLimitKey (request: FastifyRequest, ipv6Subnet = 64): string {
  return ipRateLimitKey(request.ip, ipv6Subnet)
}

/** The default key: the signed-in user, else the client IP. */
export function rateLimitKey (request: FastifyRequest, ipv6Subnet = 64): string {
  const userId = sessionUserId(request)
  return userId === undefined ? clientIpRateLimitKey(request, ipv6Subnet) : `user:${userId}`
}

type Done = (err?: Error) => void
type MaxSetting = number | ((request: FastifyRequest, key: string) => number | Promise<number>)
type WindowSetting = number | ((request: FastifyRequest, key: string) => number | Promise<number>)
type AllowCheck = (request: FastifyRequest, key: string) => boolean | Promise<boolean>

/** One route's limit, resolved when the route is added. */
interface RouteLimit {
  limit: BoundLimit
  max: MaxSetting
  timeWindow: WindowSetting
  keyGenerator: KeyGenerator
  allow: AllowCheck | undefined
  groupId: string
  /** RateLimit-Policy when max and window are fixed; else built per request. */
  policyHeader: string | undefined
  policyName: string
  rate: (remaining: number, resetSeconds: number) => string
  legacy: boolean
  /** @fastify/rate-limit's numeric `ban` (403 past max + ban); -1: off. */
  countBan: number
  options: RateLimitOptions
}

function isUnder (url: string, prefix: string): boolean {
  return url === prefix || url.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`)
}

function windowOf (value: RateLimitOptions['timeWindow'], fallback: number): WindowSetting {
  if (value === undefined) return fallback
  if (typeof value === 'function') return value
  return parseDuration(value, 'config.rateLimit.timeWindow')
}

// The answer to one decision: headers written once, then pass, 429/403, or 503 (closed mode).
function answer (route: RouteLimit, request: FastifyRequest, reply: FastifyReply, key: string, decision: RateLimitDecision): Error | undefined {
  if (decision.unavailable) return new RateLimitUnavailableError(decision.retryAfterMs)
  const { limit: max, allowed } = decision
  const ttlMs = allowed ? decision.resetMs : decision.retryAfterMs
  const seconds = Math.ceil(ttlMs / 1000)
  reply.header('ratelimit-policy', route.policyHeader ?? formatRateLimitPolicy(route.policyName, max, decision.timeWindow))
  reply.header('ratelimit', route.rate(allowed ? decision.remaining : 0, seconds))
  if (route.legacy) {
    reply.header('x-ratelimit-limit', max)
    reply.header('x-ratelimit-remaining', allowed ? decision.remaining : 0)
    reply.header('x-ratelimit-reset', seconds)
  }
  const { options } = route
  if (allowed) {
    options.onExceeding?.(request, key)
    return undefined
  }
  reply.header('retry-after', seconds)
  options.onExceeded?.(request, key)
  const banned = route.countBan !== -1 && decision.current - max > route.countBan
  if (banned) options.onBanReach?.(request, key)
  if (options.errorResponseBuilder !== undefined) {
    return options.errorResponseBuilder(request, { statusCode: banned ? 403 : 429, ban: banned, after: `${seconds} seconds`, max, ttl: ttlMs }) as Error
  }
  return new RateLimitExceededError(ttlMs, banned)
}

/** The HTTP cache's refresh test, once the app is ready (the HTTP cache may be registered after this plugin). */
interface RefreshCheck { isRefresh: ((request: FastifyRequest) => boolean) | undefined }

function routeHook (route: RouteLimit, refresh: RefreshCheck) {
  const { limit, keyGenerator, groupId, allow } = route
  const fixed = typeof route.max === 'number' && typeof route.timeWindow === 'number'

  async function slow (request: FastifyRequest, reply: FastifyReply, generated: string | number | Promise<string | number>, allowed?: Promise<boolean>): Promise<void> {
    const key = allowed === undefined ? String(await generated) + groupId : String(generated)
    if (allowed !== undefined ? await allowed : allow !== undefined && await allow(request, key)) return
    const max = typeof route.max === 'number' ? route.max : await route.max(request, key)
    const timeWindow = typeof route.timeWindow === 'number' ? route.timeWindow : await route.timeWindow(request, key)
    const decision = rateLimitChannel.start.hasSubscribers
      ? traceRateLimit(route.policyName, limit.batched, key, () => limit.consume(key, max, timeWindow))
      : limit.consume(key, max, timeWindow)
    const failure = answer(route, request, reply, key, await decision)
    if (failure !== undefined) throw failure
  }

  // The common case stays on one promise: a string key, fixed max and window, a synchronous allow list.
  return function rateLimitHook (request: FastifyRequest, reply: FastifyReply, done: Done): void {
    if (refresh.isRefresh?.(request) === true) {
      done() // the HTTP cache's own background refresh: the server's work, not the client's
      return
    }
    const generated = keyGenerator(request)
    if (!fixed || typeof generated !== 'string') {
      slow(request, reply, generated).then(() => { done() }, done)
      return
    }
    const key = groupId === '' ? generated : generated + groupId
    if (allow !== undefined) {
      const allowed = allow(request, key)
      if (allowed === true) {
        done()
        return
      }
      if (allowed !== false) {
        slow(request, reply, key, allowed).then(() => { done() }, done)
        return
      }
    }
    decideRequest(route, request, reply, key, done)
  }
}

// Decided in process (a batched lease in hand, no Redis, Redis known down): answered in this call,
// without a promise or a microtask; else when Redis replies. (Not a callback from inside the reply's
// handling: that ran every request of a turn to its response while the turn's list still held them
// all, and a scavenge then found them alive: garbage collection went from ~1.3 to ~8 µs a request.)
function decideRequest (route: RouteLimit, request: FastifyRequest, reply: FastifyReply, key: string, done: Done): void {
  const { limit } = route
  const decided = rateLimitChannel.start.hasSubscribers ? traceRateLimit(route.policyName, limit.batched, key, () => limit.decide(key)) : limit.decide(key)
  if (decided instanceof Promise) decided.then((decision) => { finish(route, request, reply, key, decision, done) }, done)
  else finish(route, request, reply, key, decided, done)
}

function finish (route: RouteLimit, request: FastifyRequest, reply: FastifyReply, key: string, decision: RateLimitDecision, done: Done): void {
  let failure: Error | undefined
  try {
    failure = answer(route, request, reply, key, decision)
  } catch (err) {
    failure = err instanceof Error ? err : new Error(String(err)) // a throwing onExceeding/onExceeded
  }
  done(failure)
}

/** A route's policies, resolved when the route is added. */
interface RoutePolicies {
  bound: BoundPolicies
  keyGenerators: KeyGenerator[]
  costs: Array<number | ((request: FastifyRequest) => number)>
  allow: AllowCheck | undefined
  /** RateLimit-Policy: every policy, one list item each. */
  policyHeader: string
  rates: Array<(remaining: number, resetSeconds: number) => string>
  options: RateLimitOptions
}

function policiesHook (route: RoutePolicies, refresh: RefreshCheck) {
  const { bound, keyGenerators, costs, allow, rates, options } = route
  const size = keyGenerators.length
  return async function rateLimitPoliciesHook (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (refresh.isRefresh?.(request) === true) return
    const ids: string[] = []
    const units: number[] = []
    for (let i = 0; i < size; i++) {
      const generated = keyGenerators[i]!(request)
      const key = typeof generated === 'string' ? generated : String(await generated)
      if (allow !== undefined && await allow(request, key)) return
      ids.push(key)
      const cost = costs[i]!
      units.push(typeof cost === 'number' ? cost : cost(request))
    }
    const decision = await bound.consume(ids, units)
    if (decision.unavailable) throw new RateLimitUnavailableError(decision.retryAfterMs)
    let rate = ''
    for (let i = 0; i < size; i++) {
      const one = decision.decisions[i]!
      const seconds = Math.ceil((one.allowed ? one.resetMs : one.retryAfterMs) / 1000)
      rate += (i === 0 ? '' : ', ') + rates[i]!(one.allowed ? one.remaining : 0, seconds)
    }
    reply.header('ratelimit-policy', route.policyHeader)
    reply.header('ratelimit', rate)
    const key = ids[decision.refusedBy] ?? ids[0]!
    if (decision.allowed) {
      options.onExceeding?.(request, key)
      return
    }
    const seconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000))
    reply.header('retry-after', seconds)
    options.onExceeded?.(request, key)
    const refusing = decision.decisions[decision.refusedBy]!
    if (options.errorResponseBuilder !== undefined) {
      const built: Error = options.errorResponseBuilder(request, { statusCode: 429, ban: false, after: `${seconds} seconds`, max: refusing.limit, ttl: decision.retryAfterMs }) as Error
      throw built
    }
    throw new RateLimitExceededError(decision.retryAfterMs)
  }
}

function addRouteHook (route: RouteOptions, name: NonNullable<RateLimitOptions['hook']>, hook: ReturnType<typeof routeHook> | ReturnType<typeof policiesHook>): void {
  const existing = route[name] as unknown
  route[name] = (existing === undefined ? [hook] : [...(Array.isArray(existing) ? existing : [existing]), hook]) as never
}

async function rateLimitPlugin (app: FastifyInstance, options: RateLimitPluginOptions = {}): Promise<void> {
  checkPluginOptions(options)
  // Both would read every route's config.rateLimit and count it twice, in two stores, with two headers.
  if (app.hasPlugin('@fastify/rate-limit') || app.hasDecorator('createRateLimit')) {
    throw new PluginConflictError('@fastify/rate-limit is already registered and reads every route\'s config.rateLimit: register the suite with { rateLimit: false } to keep it, or remove it to use the suite\'s limits (which provide app.rateLimit and app.createRateLimit too)')
  }
  const { store, redis } = openRateLimitStore(app, options)
  app.decorate('rateLimits', { store, mode: store.mode, backend: store.backend, stats: () => store.stats() })
  app.addHook('onClose', async () => { await store.close() })
  // Waiting for the budget connection of a Redis that did not answer boot only delays start-up.
  if (redis?.status === 'ready') await store.ready()

  const limits = new RouteLimits(store, app.config, options)
  // The HTTP cache's background refresh is the server's work, not the client's; absent when the app left the HTTP cache out.
  const refresh: RefreshCheck = { isRefresh: undefined }
  app.addHook('onReady', async () => { refresh.isRefresh = app.hasDecorator('httpCache') ? app.httpCache.isRefresh : undefined })
  app.addHook('onRoute', (route) => { limits.wireRoute(route, refresh) })
  await registerUpstream(app, store, limits)
}

function openRateLimitStore (app: FastifyInstance, options: RateLimitPluginOptions): { store: RateLimitStore, redis: RedisClient | undefined } {
  const config = app.config
  const connection = featureConnection(app, options.client)
  const redis = connection.redis
  const store = new RateLimitStore({
    redis,
    isRedisReady: connection.isReady,
    // A failover is not an outage: while REDIS_FAILOVER_WAIT is not spent, decisions wait for the connection.
    failoverWaitLeft: redis === undefined ? undefined : connection.failoverWaitLeft,
    whenRedisDown: config.RATE_LIMIT_WHEN_REDIS_DOWN,
    timeout: config.RATE_LIMIT_TIMEOUT,
    algorithm: config.RATE_LIMIT_ALGORITHM,
    sync: config.RATE_LIMIT_SYNC,
    ban: config.RATE_LIMIT_BAN_AFTER > 0 ? { after: config.RATE_LIMIT_BAN_AFTER, duration: config.RATE_LIMIT_BAN_DURATION } : false,
    logger: app.log.child({ plugin: 'rate-limit' }, suiteLogOptions(app.config)),
    onDecision: options.onDecision,
    // The suite's own Clusters stop their slots refresh on close, copies included; a copy of an app's own Cluster does so here.
    adoptCopy: (copy) => copy.isCluster ? stopSlotsRefreshOnClose(copy as Cluster) : copy
  })
  return { store, redis }
}

/** RATE_LIMIT_ALLOW_LIST and the plugin's allowList as one check, made once; undefined when neither is set. */
function suiteAllowCheck (allowList: string[], extraList: RateLimitPluginOptions['allowList']): AllowCheck | undefined {
  const allowedIp = buildAllowList(allowList)
  const extraAllow: AllowCheck | undefined = Array.isArray(extraList) ? (_request, key) => extraList.includes(key) : extraList
  return allowedIp === undefined && extraAllow === undefined
    ? undefined
    : (request, key) => allowedIp?.(request.ip) === true || (extraAllow !== undefined && extraAllow(request, key))
}

/**
 * The plugin's settings, and each route's limit resolved from them when the route is added (onRoute):
 * its bound limit, key, allow list and headers, then its one route hook (routeHook, policiesHook).
 */
class RouteLimits {
  /** @fastify/rate-limit's plugin-wide settings, which its routes inherit unless they set their own. */
  readonly defaults: RateLimitOptions = {}
  readonly suiteAllow: AllowCheck | undefined
  readonly keyGenerator: KeyGenerator
  private readonly exempt: string[]
  private globalLimit: RouteLimit | undefined
  private readonly store: RateLimitStore
  readonly config: FastifyInstance['config']

  constructor (store: RateLimitStore, config: FastifyInstance['config'], options: RateLimitPluginOptions) {
    this.store = store
    this.config = config
    if (options.errorResponseBuilder !== undefined) this.defaults.errorResponseBuilder = options.errorResponseBuilder
    if (options.continueExceeding !== undefined) this.defaults.continueExceeding = options.continueExceeding
    if (options.exponentialBackoff !== undefined) this.defaults.exponentialBackoff = options.exponentialBackoff
    if (options.ban !== undefined) this.defaults.ban = options.ban
    this.suiteAllow = suiteAllowCheck(config.RATE_LIMIT_ALLOW_LIST, options.allowList)
    const ipv6Subnet = options.ipv6Subnet ?? 64
    this.keyGenerator = options.keyGenerator ?? ((request) => rateLimitKey(request, ipv6Subnet))
    this.exempt = options.exemptRoutes ?? ['/health', '/metrics']
  }

  /** onRoute: the global limit, the route's own, or its policies; none on `rateLimit: false` and exempt routes. */
  wireRoute (route: RouteOptions, refresh: RefreshCheck): void {
    const limit = route.config?.rateLimit
    if (limit === false) return
    if (limit == null) {
      if (!this.config.RATE_LIMIT_GLOBAL || this.exempt.some((prefix) => isUnder(route.url, prefix))) return
      this.globalLimit ??= this.resolve({}, undefined)
      addRouteHook(route, 'onRequest', routeHook(this.globalLimit, refresh))
      return
    }
    const policies = limit.policies
    if (policies !== undefined) {
      checkRouteOptions(limit, `${[route.method].flat().join(',')} ${route.url}`)
      addRouteHook(route, limit.hook ?? 'onRequest', policiesHook(this.resolvePolicies(limit, route, policies), refresh))
      return
    }
    addRouteHook(route, limit.hook ?? 'onRequest', routeHook(this.resolve(limit, route), refresh))
  }

  private allowOf (allowList: RateLimitOptions['allowList']): AllowCheck | undefined {
    return allowList === undefined ? this.suiteAllow : Array.isArray(allowList) ? (_request, key) => allowList.includes(key) : allowList
  }

  private resolve (routeLimit: RateLimitOptions, route: RouteOptions | undefined): RouteLimit {
    const config = this.config
    if (route !== undefined) checkRouteOptions(routeLimit, `${[route.method].flat().join(',')} ${route.url}`)
    const limit: RateLimitOptions = { ...this.defaults, ...routeLimit }
    // The auth preset's max on a route is the configured one, fixed now (so its headers are built once too).
    const max: MaxSetting = limit.max === authMax ? config.RATE_LIMIT_AUTH_MAX : limit.max ?? config.RATE_LIMIT_MAX
    const timeWindow = windowOf(limit.timeWindow, config.RATE_LIMIT_WINDOW)
    const limiter = limit.limiter
    const policyName = route === undefined ? 'default' : limiter?.policy ?? 'route'
    const methods = route === undefined ? '' : scopeMethods(route.method)
    const bound = this.store.limit({
      max: typeof max === 'number' ? max : 0,
      timeWindow: typeof timeWindow === 'number' ? timeWindow : 60_000,
      scope: limiter?.scope ?? (route === undefined ? 'global' : `${methods}${route.url}`),
      algorithm: limiter?.algorithm,
      ban: limiter?.ban,
      continueExceeding: limit.continueExceeding,
      exponentialBackoff: limit.exponentialBackoff
    })
    return {
      limit: bound,
      max,
      timeWindow,
      keyGenerator: limit.keyGenerator ?? this.keyGenerator,
      allow: this.allowOf(limit.allowList),
      groupId: limit.groupId ?? '',
      policyHeader: typeof max === 'number' && typeof timeWindow === 'number' ? formatRateLimitPolicy(policyName, max, timeWindow) : undefined,
      policyName,
      rate: rateLimitFormatter(policyName),
      legacy: config.RATE_LIMIT_LEGACY_HEADERS,
      countBan: typeof limit.ban === 'number' && limit.ban >= 0 ? Math.trunc(limit.ban) : -1,
      options: limit
    }
  }

  private resolvePolicies (routeLimit: RateLimitOptions, route: RouteOptions, policies: RatePolicy[]): RoutePolicies {
    const where = `${[route.method].flat().join(',')} ${route.url}`
    const methods = scopeMethods(route.method)
    const limit: RateLimitOptions = { ...this.defaults, ...routeLimit }
    return {
      bound: this.store.policies(policies.map((policy) => ({
        max: policy.max,
        timeWindow: parseDuration(policy.timeWindow, `config.rateLimit.policies "${policy.name}".timeWindow of ${where}`),
        scope: policy.scope ?? `${methods}${route.url}#${policy.name}`,
        algorithm: policy.algorithm,
        dryRun: policy.dryRun
      }))),
      keyGenerators: policies.map((policy) => policy.keyGenerator ?? this.keyGenerator),
      costs: policies.map((policy) => policy.cost ?? 1),
      allow: this.allowOf(limit.allowList),
      policyHeader: policies.map((policy) => formatRateLimitPolicy(policy.name, policy.max, parseDuration(policy.timeWindow, 'timeWindow'))).join(', '),
      rates: policies.map((policy) => rateLimitFormatter(policy.name)),
      options: limit
    }
  }
}

/**
 * app.createRateLimit() and app.rateLimit(), on the same store. Called directly on a child context
 * (not registered, which fastify-plugin would hoist to ours), its onRoute hook sees no route of ours.
 */
async function registerUpstream (app: FastifyInstance, store: RateLimitStore, { config, defaults, keyGenerator, suiteAllow }: RouteLimits): Promise<void> {
  const upstream: UpstreamOptions = {
    global: false,
    max: config.RATE_LIMIT_MAX,
    timeWindow: config.RATE_LIMIT_WINDOW,
    store: fastifyRateLimitStore(store),
    keyGenerator,
    ...(suiteAllow === undefined ? {} : { allowList: suiteAllow }),
    ...defaults,
    errorResponseBuilder: defaults.errorResponseBuilder ?? ((_request, context) => new RateLimitExceededError(context.ttl, context.ban)),
    // Closed mode must reach the client as a 503, never be skipped.
    skipOnError: false
  }
  let api: FastifyInstance | undefined
  await app.register(async (child) => {
    await (fastifyRateLimit as unknown as (instance: FastifyInstance, settings: UpstreamOptions) => Promise<void>)(child, upstream)
    api = child
  })
  if (api === undefined) return
  const create = api.createRateLimit
  // reward/penalty on each limiter: the same counter as @fastify/rate-limit's store child counts on.
  app.decorate('createRateLimit', function createRateLimit (limitOptions?: Parameters<FastifyInstance['createRateLimit']>[0]): SuiteRateLimiter {
    const check = create(limitOptions) as SuiteRateLimiter
    const given = (limitOptions ?? {}) as RateLimitOptions
    const bound = boundLimitOf(store, {
      ...defaults,
      max: config.RATE_LIMIT_MAX,
      timeWindow: config.RATE_LIMIT_WINDOW,
      ...given,
      ...(typeof given.timeWindow === 'string' ? { timeWindow: parseDuration(given.timeWindow, 'createRateLimit timeWindow') } : {}),
      routeInfo: {}
    })
    check.reward = async (key, n = 1) => { await bound.adjust(key, -n) }
    check.penalty = async (key, n = 1) => { await bound.adjust(key, n) }
    return check
  } as FastifyInstance['createRateLimit'])
  app.decorate('rateLimit', api.rateLimit)
}

/**
 * The methods in a route's counter scope. HEAD counts as GET: Fastify adds a HEAD route beside every
 * GET route, running the GET handler, and a separate counter would double the attempts (and split
 * the ban) of a limited GET route.
 */
function scopeMethods (method: RouteOptions['method']): string {
  const methods = (Array.isArray(method) ? method : [method]).map((m) => m.toUpperCase() === 'HEAD' ? 'GET' : m)
  return [...new Set(methods)].join(',')
}

export default fp(rateLimitPlugin, {
  name: 'redis-suite-rate-limit',
  fastify: '5.x',
  dependencies: ['redis-suite-config', 'redis-suite-redis']
})
