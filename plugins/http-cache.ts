// Route-level HTTP response caching over app.cache: `config: { cache: { ttl, tags, vary, private } }`
// on a GET route stores its serialised responses; `config: { cache: { invalidates: [tags] } }` on a
// write route drops them on every instance after a 2xx. The rules (key, what may be stored,
// freshness, collapse) live in lib/http-cache; this file wires them into Fastify's lifecycle.
//
// Lifecycle (httpCachePlugin; the hooks are methods of HttpCacheHooks, built once at registration):
//   decorates  app.httpCache (stats, invalidate, isRefresh); request slots kExchange, kRefresh (null/false)
//   onRoute    wireRoute: a cached route gets the lookup and store hooks below, a write route an
//              onSend that invalidates its tags after a 2xx
//   preParsing (route-level, public routes) lookup: a hit is answered here, before body parsing,
//              validation and the handler; a miss joins or starts the one handler run for its key (see
//              lib/http-cache/response-store.ts). Not onRequest: the rate limiter, session loading
//              and an app's auth hooks are onRequest hooks, some added per route by plugins
//              registered after this one, and every one of them must run before a hit is served.
//   preHandler (route-level, appended, private routes) the same lookup, after the app's preHandler
//              hooks: a private entry is keyed by the user, shared by all of the user's sessions and
//              tokens, so the app's per-request checks (second factor, revoked token) run on hits too.
//   onSend     (route-level, before HEAD's body stripping) storeResponse: the serialised response is
//              stored, ETag/Cache-Control/Age/Surrogate-Key/x-cache are set, If-None-Match answers 304
//   a miss's response 'close' settles whatever the request left open (a fill, a refresh, a
//              revalidation), whether it was sent, aborted or timed out; a hit adds no listener
//   onReady    warns when uncapped routes share a noeviction Redis with sessions and rate limits
//   preClose   no background refresh starts any more
//   onClose    none: it opens nothing of its own (its entries live in app.cache, the cache plugin's)
import { createHash, randomBytes } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import { parseDuration, type Duration, suiteLogOptions } from '../lib/config/index.js'
import { httpCacheChannel, noteHttpCacheBypass, traceHttpCacheLookup, traceHttpCacheStore } from '../lib/tracing/index.js'
import {
  bodyOf, buildResponseKey, CACHEABLE_METHODS, constraintsKey, computeEtag, formatCacheControl, freshness, hashIdentity, hasUnlistedCookie, headerValue,
  INVALIDATING_METHODS, matchesIfNoneMatch, readCookie, readMemory, replayableHeaders, resolveRoutePolicy, ResponseStore, RouteBudget, storageTtl,
  surrogateKeyHeader, tagsFor, unsendableHeader, wantsRevalidation, whyNotStorable,
  type CachedRoutePolicy, type Fill, type HttpCacheStats, type RouteCacheOptions, type RouteDefaults, type StoredResponse, type TagSource
} from '../lib/http-cache/index.js'
import { loadedSession } from './session.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Response caching (GET/HEAD) or the tags a write invalidates (POST/PUT/PATCH/DELETE). */
    cache?: RouteCacheOptions<FastifyRequest>
  }
  interface FastifyInstance {
    httpCache: HttpCache
  }
}

export interface HttpCache {
  /** Counters since start, for metrics. */
  stats: () => HttpCacheStats & { capped: number }
  /** Every stored response carrying one of these tags becomes a miss, on every instance. */
  invalidate: (tags: readonly string[]) => Promise<void>
  /**
   * Whether this request is the cache's own stale-while-revalidate refresh (the server's work, not
   * the client's): the suite's rate limiter does not count it against the client.
   */
  isRefresh: (request: FastifyRequest) => boolean
}

export interface HttpCachePluginOptions {
  /** Namespace of app.cache holding responses. Default 'http'. */
  namespace?: string
  /** Longest an identical request waits for the one handler run before running its own. Default '5s'. */
  collapseWait?: Duration
  /** Larger bodies are not stored. Default 1 MiB. */
  maxBodyBytes?: number
  /** Default of each route's maxEntries: live entries one route may write, per instance; false: no cap. Default 10,000. */
  maxEntriesPerRoute?: number | false
  /** Default of each route's maxBytes: bytes one route may keep written (stored entries: base64 bodies, headers), per instance; false: no cap. Default 64 MiB. */
  maxBytesPerRoute?: number | false
  /**
   * Bytes all cached routes together may keep written, per instance (counted like maxBytes); false:
   * no such cap, only the per-route ones. Default false.
   */
  maxBytesTotal?: number | false
  /** Response headers never replayed from the cache, besides the built-in per-response ones. */
  omitHeaders?: readonly string[]
  /**
   * Whether a request is a user's own: not cached unless the route is private. Default: an
   * Authorization header, or the session cookie on a route that loads the session or does not list
   * that cookie in `ignoreCookies` (a route that never reads the session answers signed-in users alike).
   */
  isAuthenticated?: (request: FastifyRequest) => boolean
  /**
   * Who a private response belongs to (HMAC-hashed into the key); undefined bypasses the cache.
   * Default: the loaded session's userId, else a hash of the Authorization header, else undefined
   * (never the session cookie's unverified text); an app that authenticates its own way supplies it.
   */
  userKey?: (request: FastifyRequest) => string | undefined
}

type Verdict = 'HIT' | 'STALE' | 'MISS' | 'BYPASS'

/** A cached route, resolved at registration. */
interface CachedRoute {
  policy: CachedRoutePolicy<FastifyRequest>
  budget: RouteBudget
  /** `GET /users`, for logs. */
  name: string
  /** Whether the last write was refused by the budget (logged once per change). */
  atCap: boolean
  /** The Cache-Control this route sends, formatted once. */
  cacheControl: string
  /** The route's constraints in the key (routes at one URL that differ by version or host). */
  constraints: string | undefined
  /**
   * Whether a HEAD request's response may fill GET's entry: not on a HEAD route with a handler of its
   * own, whose empty body would then be served to GETs. Fastify's automatic HEAD route runs the GET
   * handler, and this route's onSend sees the body before HEAD's own hook drops it.
   */
  headFills: boolean
  /**
   * The session cookie does not make a request personal here: the route lists it in ignoreCookies
   * and does not load the session, so its answer cannot depend on it.
   */
  sessionCookieIgnored: boolean
}

/** What a hit sends, computed once per stored entry (per instance). */
interface PreparedHit {
  headers: Record<string, string | string[]>
  body: string | Buffer
}

// Keyed by the entry object the cache's memory tier hands back on every hit.
const prepared = new WeakMap<StoredResponse, PreparedHit>()

function prepare (entry: StoredResponse, route: CachedRoute, tags: readonly string[]): PreparedHit {
  const headers: PreparedHit['headers'] = { ...entry.headers, etag: entry.etag, 'cache-control': route.cacheControl }
  if (route.policy.vary.length > 0) headers.vary = route.policy.vary.join(', ')
  if (tags.length > 0) headers['surrogate-key'] = surrogateKeyHeader(tags)
  return { headers, body: bodyOf(entry) }
}

/** A revalidation in progress in this process; identical ones wait for its response. */
interface Revalidation {
  done: Promise<StoredResponse | undefined>
  settle: (entry: StoredResponse | undefined) => void
}

/** What a request that runs its handler must do with the response. */
interface Exchange {
  route: CachedRoute
  key: string
  tags: string[]
  /** The one handler run others wait on. */
  fill?: Fill | undefined
  /** A stale entry to answer with if the handler fails (stale-if-error). */
  stale?: StoredResponse | undefined
  /** This request is the one refreshing its key in this process. */
  refreshing?: boolean
  /** This request is the one revalidating its key for clients that asked (clientRevalidation). */
  revalidation?: Revalidation | undefined
}

// The request's exchange, declared at boot (one hidden class for every request); null outside a miss.
const kExchange = Symbol('redis-suite.httpCacheExchange')
// Set when the request was recognised as our own background refresh (its marker is gone by then).
const kRefresh = Symbol('redis-suite.httpCacheRefresh')
type Carrier = FastifyRequest & { [kExchange]: Exchange | null, [kRefresh]: boolean }

/** A request the cache looks up: its key and tags, and whether the client asked to revalidate. */
interface Opened {
  route: CachedRoute
  key: string
  tags: string[]
  revalidate: boolean
}

const NO_VARY: ReadonlyArray<readonly [string, string | undefined]> = []
const HEAD_HANDLER = { reason: 'a HEAD handler of its own (its body is not GET\'s)', bypass: false }

// The background refresh of stale-while-revalidate marks its request with this header and a
// one-time random value mapped to the exchange it refreshes. The value names the entry's key, so the
// refresh (app.inject: plain HTTP from the client's address, where trusted-proxy headers no longer
// count) fills the entry the client read, https and forwarded host included. One-time: onRequest
// hooks and logs see it before lookup deletes it, and it is worth nothing by then.
const REFRESH_HEADER = 'x-redis-suite-refresh'

async function httpCachePlugin (app: FastifyInstance, options: HttpCachePluginOptions = {}): Promise<void> {
  const hooks = new HttpCacheHooks(app, options)
  app.decorateRequest(kExchange, null)
  app.decorateRequest(kRefresh, false)
  app.decorate('httpCache', httpCacheDecorator(hooks))
  app.addHook('preClose', async () => { hooks.closing = true })
  app.addHook('onReady', async () => { await hooks.warnIfUncappedOnNoeviction() })
  app.addHook('onRoute', (route) => { hooks.wireRoute(route) })
}

/** app.httpCache: closures made once, over what they read (isRefresh runs in the rate limiter per request). */
function httpCacheDecorator (hooks: HttpCacheHooks): HttpCache {
  const { store, pendingRefreshes } = hooks
  return {
    stats: () => ({ ...store.stats, capped: hooks.capped }),
    invalidate: (tags: readonly string[]) => store.invalidate(tags),
    isRefresh: (request: FastifyRequest) => {
      if ((request as Carrier)[kRefresh]) return true // recognised already: a hook after the lookup asks
      const marker = request.headers[REFRESH_HEADER]
      return typeof marker === 'string' && pendingRefreshes.has(marker)
    }
  }
}

/** A cached route's settings, resolved once at onRoute. */
function cachedRoute (route: RouteOptions, methods: string[], policy: CachedRoutePolicy<FastifyRequest>, cookieName: string): CachedRoute {
  return {
    policy,
    budget: new RouteBudget(policy.maxEntries, policy.maxBytes),
    name: `${methods.join(',')} ${route.url}`,
    atCap: false,
    cacheControl: formatCacheControl(policy),
    constraints: constraintsKey(route.constraints as Record<string, unknown> | undefined),
    sessionCookieIgnored: route.config?.session !== true &&
      (policy.cookies === 'none' || (policy.cookies !== 'any' && policy.cookies.has(cookieName))),
    headFills: methods.includes('GET') || [route.onSend ?? []].flat().some((hook) => (hook as AnyHook).name === 'headRouteOnSendHandler')
  }
}

/**
 * One registration's state (the response store, budgets, refreshes and revalidations in flight) and
 * the hooks over it: built once at registration; the route hooks added at onRoute call its methods.
 */
class HttpCacheHooks {
  readonly store: ResponseStore
  readonly stats: HttpCacheStats
  readonly pendingRefreshes = new Map<string, Exchange>()
  /** Set in preClose: no background refresh starts once the app is closing. */
  closing = false
  /** Responses served but not stored because a budget was full. */
  capped = 0
  private readonly app: FastifyInstance
  private readonly log: FastifyBaseLogger
  private readonly collapseWaitMs: number
  private readonly maxBodyBytes: number
  private readonly defaults: RouteDefaults
  // Routes' TTLs differ, so this budget frees an entry only once those written before it expired:
  // it may refuse early, never late.
  private readonly total: RouteBudget
  private readonly omit: Set<string>
  private readonly cookieName: string
  private readonly secret: string | undefined
  private readonly customAuthenticated: ((request: FastifyRequest) => boolean) | undefined
  private readonly userKey: (request: FastifyRequest) => string | undefined
  /** The router's own split of path and query (the key must see the URL as the handler does). */
  private readonly semicolon: boolean
  private readonly refreshing = new Set<string>()
  private readonly revalidations = new Map<string, Revalidation>()
  private readonly uncapped: string[] = []
  /** What the capped routes may keep written together, per instance (bounded by maxBytesTotal below). */
  private cappedBytes = 0

  constructor (app: FastifyInstance, options: HttpCachePluginOptions) {
    const config = app.config
    this.app = app
    this.log = app.log.child({ plugin: 'http-cache' }, suiteLogOptions(app.config))
    this.collapseWaitMs = parseDuration(options.collapseWait ?? '5s', 'collapseWait')
    this.store = new ResponseStore({
      cache: app.cache.namespace(options.namespace ?? 'http', { grace: 0 }),
      collapseWaitMs: this.collapseWaitMs,
      fillTimeoutMs: 2 * 60_000
    })
    this.stats = this.store.stats
    this.maxBodyBytes = options.maxBodyBytes ?? 1_048_576
    this.defaults = {
      ttlMs: config.CACHE_DEFAULT_TTL,
      maxEntries: options.maxEntriesPerRoute ?? 10_000,
      maxBytes: options.maxBytesPerRoute ?? 64 * 1_048_576
    }
    this.total = new RouteBudget(Infinity, options.maxBytesTotal === undefined || options.maxBytesTotal === false ? Infinity : options.maxBytesTotal)
    this.omit = new Set((options.omitHeaders ?? []).map((h) => h.toLowerCase()))
    this.cookieName = config.SESSION_COOKIE_NAME
    this.secret = config.SESSION_SECRET[0]
    this.customAuthenticated = options.isAuthenticated
    this.userKey = options.userKey ?? defaultUserKey
    const routerConfig = app.initialConfig as { useSemicolonDelimiter?: boolean, routerOptions?: { useSemicolonDelimiter?: boolean } }
    this.semicolon = routerConfig.useSemicolonDelimiter === true || routerConfig.routerOptions?.useSemicolonDelimiter === true
  }

  /** onRoute: a cached route gets its lookup and store hooks, a write route its invalidation. */
  wireRoute (route: RouteOptions): void {
    const options = route.config?.cache
    if (options === undefined) return
    const methods = [route.method].flat().map((m) => m.toUpperCase())
    const policy = resolveRoutePolicy(options, methods, route.url, this.defaults)
    if (policy.cache !== undefined) {
      const cached = cachedRoute(route, methods, policy.cache, this.cookieName)
      if (!cached.budget.capped && !this.total.capped) this.uncapped.push(cached.name)
      else this.cappedBytes += cached.budget.maxBytes
      this.addLookupHook(route, cached)
      // Before HEAD's own onSend, which drops the body: a HEAD miss can fill GET's entry too.
      // Callback hooks: a hit (no exchange) passes through without a promise or a microtask.
      addHook(route, 'onSend', (request: FastifyRequest, reply: FastifyReply, payload: unknown, done: Done) => {
        if ((request as Carrier)[kExchange] === null) return done(null, payload)
        const stored = httpCacheChannel.start.hasSubscribers ? traceHttpCacheStore(reply, () => this.storeResponse(request, reply, payload)) : this.storeResponse(request, reply, payload)
        settleHook(stored, done, (sent) => { done(null, sent) })
      }, (hook) => hook.name === 'headRouteOnSendHandler')
      // No onResponse/onRequestAbort/onTimeout hooks: Fastify would add listeners to every request,
      // hits included; a request that opens an exchange listens for its own end (see track()).
    }
    if (policy.invalidates !== undefined) {
      const tags = policy.invalidates
      addHook(route, 'onSend', (request: FastifyRequest, reply: FastifyReply, payload: unknown) => this.invalidate(request, reply, payload, tags))
    }
  }

  /**
   * Callback hooks: a memory-tier hit is answered synchronously (no promise, no microtask) and
   * the chain ends there, without `done`; the rest (Redis, collapse, revalidation) goes on
   * asynchronously and calls `done` only when it did not answer. A public route answers in
   * preParsing, before body parsing and validation. A private entry belongs to a user, whom all
   * of that user's sessions and tokens share: its hit waits until the route's preHandler hooks
   * ran, so a check the app makes per request (a second factor, a revoked token) runs on it too.
   */
  private addLookupHook (route: RouteOptions, cached: CachedRoute): void {
    if (cached.policy.private) {
      addHook(route, 'preHandler', (request: FastifyRequest, reply: FastifyReply, done: Done) => {
        const answered = httpCacheChannel.start.hasSubscribers ? traceHttpCacheLookup(request.method, reply, () => this.lookup(request, reply, cached)) : this.lookup(request, reply, cached)
        if (answered === false) done(null)
        else if (answered !== true) settleHook(answered, done, (served) => { if (!served) done(null) })
      })
    } else {
      addHook(route, 'preParsing', (request: FastifyRequest, reply: FastifyReply, payload: unknown, done: Done) => {
        const answered = httpCacheChannel.start.hasSubscribers ? traceHttpCacheLookup(request.method, reply, () => this.lookup(request, reply, cached)) : this.lookup(request, reply, cached)
        if (answered === false) done(null, payload)
        else if (answered !== true) settleHook(answered, done, (served) => { if (!served) done(null, payload) })
      })
    }
  }

  /**
   * A cached route's lookup: true when a fresh memory-tier copy was served in this call, false when
   * the cache stays out of the request, else the asynchronous rest (true once it answered).
   */
  lookup (request: FastifyRequest, reply: FastifyReply, route: CachedRoute): boolean | Promise<boolean> {
    const exchange = this.open(request, reply, route)
    if (exchange === undefined) return false
    const inMemory = exchange.revalidate ? undefined : this.store.peekMemory(exchange.key)
    if (inMemory !== undefined && freshness(inMemory.storedAt, route.policy) === 'fresh') {
      this.serve(request, reply, inMemory, exchange, 'HIT')
      return true
    }
    return this.answer(request as Carrier, reply, exchange, inMemory)
  }

  /** Whether this request carries credentials or cookies that may change a public route's response. */
  private personal (request: FastifyRequest, route: CachedRoute): boolean {
    const { policy } = route
    const customAuthenticated = this.customAuthenticated
    if (customAuthenticated !== undefined
      ? customAuthenticated(request)
      : request.headers.authorization !== undefined || (!route.sessionCookieIgnored && readCookie(request.headers.cookie, this.cookieName) !== undefined)) {
      return true
    }
    const cookie = request.headers.cookie
    if (cookie === undefined || cookie === '' || policy.cookies === 'none') return false
    return policy.cookies === 'any' || hasUnlistedCookie(cookie, policy.cookies)
  }

  /**
   * What a request is to the cache, decided synchronously: undefined when the cache stays out of it
   * (not a cacheable method, a personal request bypassing a public route, no key, or our own
   * background refresh, which is tracked here); otherwise its exchange, with the key.
   */
  private open (request: FastifyRequest, reply: FastifyReply, route: CachedRoute): Opened | undefined {
    if (!CACHEABLE_METHODS.has(request.method)) return undefined
    const { policy } = route
    const refreshValue = request.headers[REFRESH_HEADER]
    if (refreshValue !== undefined && this.openRefresh(request, reply, route, refreshValue)) return undefined
    if (!policy.private && this.personal(request, route)) return this.bypass(reply, 'credentials')
    let key: string
    let tags: string[]
    try {
      const identity = policy.private ? this.userKey(request) : undefined
      // No identity, no private entry: a constant would share one user's response with everyone.
      if (policy.private && (identity === undefined || identity === '')) return this.bypass(reply, 'no_identity')
      const user = identity === undefined ? undefined : hashIdentity(identity, this.secret)
      tags = tagsFor(policy.tags, request)
      const vary = policy.vary.length === 0 ? NO_VARY : policy.vary.map((name) => [name, headerValue(request.headers[name])] as const)
      const built = buildResponseKey({ method: request.method, origin: `${request.protocol}://${request.host}`, url: request.url, query: policy.query, semicolon: this.semicolon, vary, user, route: route.constraints })
      // A query parameter that does not decode reaches the handler raw: no decoded key stands for it.
      if (built === undefined) return this.bypass(reply, 'undecodable_query')
      key = built
    } catch (err) {
      request.log.warn({ err }, 'http cache: cannot key this request (tags or user); answered without the cache')
      return this.bypass(reply, 'key_error')
    }
    const revalidate = policy.clientRevalidation && wantsRevalidation(request.headers['cache-control'], request.headers.pragma)
    return { route, key, tags, revalidate }
  }

  /**
   * The refresh marker is deleted whatever it holds; true when it is our own stale-while-revalidate
   * refresh (one per key and process) of this route, now tracked for the key it was started for.
   */
  private openRefresh (request: FastifyRequest, reply: FastifyReply, route: CachedRoute, refreshValue: string | string[]): boolean {
    delete request.headers[REFRESH_HEADER]
    const refresh = typeof refreshValue === 'string' ? this.pendingRefreshes.get(refreshValue) : undefined
    if (refresh === undefined || refresh.route !== route) return false
    this.pendingRefreshes.delete(refreshValue as string)
    ;(request as Carrier)[kRefresh] = true
    this.stats.revalidations++
    this.track(request as Carrier, reply, refresh)
    return true
  }

  /**
   * The asynchronous rest of a lookup: a client's revalidation, then the entry (`inMemory`, when the
   * memory tier had it but not fresh enough to answer at once, else read from Redis), collapse on a
   * miss. Resolves to true when it answered, false when the handler is to run (a flag, not
   * the reply: an async function returning a reply would wait for the reply's own then, the response's end).
   */
  private async answer (request: Carrier, reply: FastifyReply, opened: Opened, inMemory: StoredResponse | undefined): Promise<boolean> {
    const { route, key, tags } = opened
    const exchange: Exchange = { route, key, tags }
    if (opened.revalidate) return this.revalidate(request, reply, exchange)
    const { policy } = route
    // The hit path reads the entry alone; only a miss pays for collapse (getOrSet, its lock and timers).
    let entry = inMemory ?? await this.store.peek(key)
    if (entry === undefined) {
      const found = await this.store.lookup(key, storageTtl(policy), tags)
      if (found.kind !== 'found') {
        this.track(request, reply, found.kind === 'fill' ? { ...exchange, fill: found.fill } : exchange)
        return false
      }
      entry = found.entry
    }
    switch (freshness(entry.storedAt, policy)) {
      case 'fresh':
        this.serve(request, reply, entry, exchange, 'HIT')
        return true
      case 'stale-while-revalidate':
        this.refreshInBackground(request, exchange)
        this.serve(request, reply, entry, exchange, 'STALE')
        return true
      case 'stale-if-error':
        // Past stale-while-revalidate this request refreshes in line, keeping the entry in case the
        // handler fails; while it does, identical requests get the stale copy rather than a second run.
        if (this.refreshing.has(key)) {
          this.serve(request, reply, entry, exchange, 'STALE')
          return true
        }
        this.refreshing.add(key)
        this.track(request, reply, { ...exchange, stale: entry, refreshing: true })
        return false
      case 'expired':
        this.track(request, reply, exchange)
        return false
    }
  }

  /** A client asked for a fresh answer on a route that allows it: one handler run per key in this process. */
  private async revalidate (request: Carrier, reply: FastifyReply, exchange: Exchange): Promise<boolean> {
    this.stats.revalidations++
    const running = this.revalidations.get(exchange.key)
    if (running !== undefined) {
      let timer: ReturnType<typeof setTimeout> | undefined
      const entry = await Promise.race([running.done, new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), this.collapseWaitMs) })])
      clearTimeout(timer)
      if (entry !== undefined) {
        this.stats.collapsed++
        this.serve(request, reply, entry, exchange, 'HIT')
        return true
      }
      this.track(request, reply, exchange) // the revalidation failed or stalled: run our own handler
      return false
    }
    let settle!: (entry: StoredResponse | undefined) => void
    const done = new Promise<StoredResponse | undefined>((resolve) => { settle = resolve })
    const revalidation: Revalidation = { done, settle }
    this.revalidations.set(exchange.key, revalidation)
    this.track(request, reply, { ...exchange, revalidation })
    return false
  }

  /** onSend of a miss: stores the response when it may be (within the budgets), then its cache headers. */
  async storeResponse (request: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> {
    const exchange = (request as Carrier)[kExchange]
    if (exchange === null) return payload
    const { route: { policy }, key, tags } = exchange
    const status = reply.statusCode
    const headers = reply.getHeaders()
    const notStorable = whyNotStorable({ status, headers, payload, vary: policy.vary, privateRoute: policy.private, maxBodyBytes: this.maxBodyBytes }) ??
      unsendable(headers) ?? (request.method === 'HEAD' && !exchange.route.headFills ? HEAD_HANDLER : undefined)
    if (notStorable !== undefined) return this.answerUnstored(request, reply, payload, exchange, notStorable)
    const entry = storedResponseOf(status, headers, payload, this.omit)
    // What Redis will hold, not the raw body: a Buffer is stored as base64, with headers and ETag.
    if (this.admit(exchange, entry, Buffer.byteLength(key) + Buffer.byteLength(JSON.stringify(entry)))) {
      if (exchange.fill !== undefined) {
        exchange.fill.complete(entry)
      } else {
        const stored = this.store.store(key, entry, storageTtl(policy), tags)
          .catch((err: unknown) => request.log.warn({ err }, 'http cache: response not stored'))
        // A client that asked for a fresh answer reads its own write on the next request.
        if (exchange.revalidation !== undefined) await stored
      }
    } else {
      exchange.fill?.abandon()
    }
    exchange.revalidation?.settle(entry)
    this.stats.misses++
    return this.respond(request, reply, entry, exchange, 'MISS', payload)
  }

  /** A response not stored: the stale entry instead of a failure (stale-if-error), else a MISS or BYPASS. */
  private answerUnstored (request: FastifyRequest, reply: FastifyReply, payload: unknown, exchange: Exchange, notStorable: { reason: string, bypass: boolean }): unknown {
    exchange.fill?.abandon()
    const status = reply.statusCode
    const stale = exchange.stale
    if (stale !== undefined && status >= 500 && freshness(stale.storedAt, exchange.route.policy) !== 'expired') {
      request.log.warn({ statusCode: status }, 'http cache: the handler failed; answered with the stale response (stale-if-error)')
      reply.removeHeader('content-type')
      reply.removeHeader('content-length')
      reply.code(stale.status).headers(stale.headers)
      this.stats.staleHits++
      return this.respond(request, reply, stale, exchange, 'STALE', bodyOf(stale))
    }
    if (notStorable.bypass) {
      this.stats.bypasses++
      request.log.debug({ reason: notStorable.reason }, 'http cache: response not stored')
      if (httpCacheChannel.start.hasSubscribers) noteHttpCacheBypass(notStorable.reason)
    } else {
      this.stats.misses++
    }
    reply.header('x-cache', notStorable.bypass ? 'BYPASS' : 'MISS')
    return payload
  }

  /** The route's write budget: past it the response is served but not stored (warned once per change). */
  private admit ({ route, key }: Exchange, entry: StoredResponse, bytes: number): boolean {
    const ttlMs = storageTtl(route.policy)
    let admitted = route.budget.admit(key, bytes, ttlMs, entry.storedAt)
    if (admitted && !this.total.admit(key, bytes, ttlMs, entry.storedAt)) {
      route.budget.release(key)
      admitted = false
    }
    if (!admitted) this.capped++
    if (admitted === route.atCap) {
      route.atCap = !admitted
      if (!admitted) {
        this.log.warn({ route: route.name, maxEntries: route.budget.maxEntries, maxBytes: route.budget.maxBytes, maxBytesTotal: this.total.maxBytes },
          `http cache: ${route.name} reached its cap (maxEntries/maxBytes/maxBytesTotal); further responses are served but not stored until entries expire`)
      }
    }
    return admitted
  }

  /**
   * Opens the request's exchange, settled when the response ends however it ends: sent, aborted by
   * the client, or timed out (the response's 'close' follows each). Only misses pay for the listener.
   */
  private track (request: Carrier, reply: FastifyReply, exchange: Exchange): void {
    request[kExchange] = exchange
    reply.raw.once('close', () => { this.settle(request) })
  }

  private settle (request: FastifyRequest): void {
    const carrier = request as Carrier
    const exchange = carrier[kExchange]
    if (exchange === null) return
    carrier[kExchange] = null
    exchange.fill?.abandon() // a no-op once completed; else waiters stop waiting for a request that is gone
    if (exchange.refreshing === true) this.refreshing.delete(exchange.key)
    if (exchange.revalidation !== undefined) {
      exchange.revalidation.settle(undefined) // a no-op once settled with the response
      if (this.revalidations.get(exchange.key) === exchange.revalidation) this.revalidations.delete(exchange.key)
    }
  }

  /**
   * A hit: the stored bytes and the headers computed once per entry (replayed ones, ETag,
   * Cache-Control, Vary, Surrogate-Key); only Age and x-cache are per request.
   */
  private serve (request: FastifyRequest, reply: FastifyReply, entry: StoredResponse, { route, tags }: Exchange, verdict: 'HIT' | 'STALE'): void {
    if (verdict === 'HIT') this.stats.hits++
    else this.stats.staleHits++
    let ready = prepared.get(entry)
    if (ready === undefined) {
      ready = prepare(entry, route, tags)
      prepared.set(entry, ready)
    }
    reply.code(entry.status).headers(ready.headers)
    reply.header('age', String(Math.max(0, Math.floor((Date.now() - entry.storedAt) / 1000))))
    reply.header('x-cache', verdict)
    const ifNoneMatch = request.headers['if-none-match']
    if (ifNoneMatch === undefined || !matchesIfNoneMatch(ifNoneMatch, entry.etag)) {
      reply.send(ready.body)
      return
    }
    this.stats.notModified++
    reply.code(304)
    reply.removeHeader('content-type')
    reply.send(request.method === 'HEAD' ? '' : undefined)
  }

  /** Sets the cache headers; answers 304 (returning no body) when the client's copy is current. */
  private respond (request: FastifyRequest, reply: FastifyReply, entry: StoredResponse, { route, tags }: Exchange,
    verdict: Verdict, body: unknown): unknown {
    const { policy } = route
    const ageS = Math.max(0, Math.floor((Date.now() - entry.storedAt) / 1000))
    reply.header('etag', entry.etag)
    reply.header('cache-control', route.cacheControl)
    reply.header('age', String(ageS))
    if (policy.vary.length > 0) reply.header('vary', policy.vary.join(', '))
    if (tags.length > 0) reply.header('surrogate-key', surrogateKeyHeader(tags))
    reply.header('x-cache', verdict)
    if (!matchesIfNoneMatch(request.headers['if-none-match'], entry.etag)) return body
    this.stats.notModified++
    reply.code(304)
    reply.removeHeader('content-type')
    reply.removeHeader('content-length')
    // HEAD's own onSend runs after this one and cannot take a null body.
    return request.method === 'HEAD' ? '' : null
  }

  private bypass (reply: FastifyReply, reason: string): undefined {
    this.stats.bypasses++
    if (httpCacheChannel.start.hasSubscribers) noteHttpCacheBypass(reason)
    reply.header('x-cache', 'BYPASS')
    return undefined
  }

  /** Stale-while-revalidate: one background GET per key and process, through the whole route (auth included). */
  private refreshInBackground (request: FastifyRequest, exchange: Exchange): void {
    const { key } = exchange
    if (this.refreshing.has(key) || this.closing) return
    this.refreshing.add(key)
    const once = randomBytes(18).toString('base64url')
    this.pendingRefreshes.set(once, exchange)
    const headers: Record<string, string | string[] | undefined> = { ...request.headers, [REFRESH_HEADER]: once }
    for (const name of ['if-none-match', 'if-modified-since', 'content-length', 'transfer-encoding', 'connection', 'expect']) {
      delete headers[name]
    }
    // From the peer the client's request came from (its proxy, when there is one) with the same
    // X-Forwarded-* headers: the handler resolves the same ip, protocol and host as the client's did.
    this.app.inject({ method: 'GET', url: request.url, headers, remoteAddress: request.raw.socket?.remoteAddress ?? request.ip })
      .then((response) => {
        if (response.statusCode >= 400) request.log.warn({ statusCode: response.statusCode }, 'http cache: background refresh failed; the stale response stays')
      }, (err: unknown) => request.log.warn({ err }, 'http cache: background refresh failed; the stale response stays'))
      .finally(() => {
        this.pendingRefreshes.delete(once) // answered before reaching lookup (auth, rate limit): never valid again
        this.refreshing.delete(key)
      })
  }

  /** onSend of a write route: after a 2xx, every stored response carrying one of its tags becomes a miss. */
  async invalidate (request: FastifyRequest, reply: FastifyReply, payload: unknown, source: TagSource<FastifyRequest>): Promise<unknown> {
    if (!INVALIDATING_METHODS.has(request.method) || reply.statusCode < 200 || reply.statusCode > 299) return payload
    let tags: string[]
    try {
      tags = tagsFor(source, request)
    } catch (err) {
      request.log.warn({ err }, 'http cache: invalidates returned invalid tags; nothing invalidated')
      return payload
    }
    // Awaited (bounded by the cache's Redis timeout) so a client that got its 2xx reads the new data.
    await this.store.invalidate(tags)
    return payload
  }

  /**
   * Sessions and rate limits on a noeviction Redis fail their writes once it is full; an uncapped
   * route lets a crawler fill it with random query strings. Checked once the routes are known.
   */
  async warnIfUncappedOnNoeviction (): Promise<void> {
    const { main, cache } = this.app.redisConnections
    if ((this.uncapped.length === 0 && this.cappedBytes === 0) || main === undefined || cache !== main) return
    if (main.status === 'ready') await this.checkNoeviction(main)
    else main.once('ready', () => { this.checkNoeviction(main).catch(() => {}) })
  }

  private async checkNoeviction (main: Parameters<typeof readMemory>[0]): Promise<void> {
    const { uncapped, log } = this
    // INFO, not CONFIG GET: the least-privilege ACL and managed Redis refuse CONFIG.
    const memory = await readMemory(main)
    if (memory?.policy !== 'noeviction') return
    if (uncapped.length > 0) {
      log.warn({ routes: uncapped },
        `http cache: ${uncapped.join('; ')} ${uncapped.length === 1 ? 'has' : 'have'} no maxEntries/maxBytes cap and share the noeviction Redis that holds sessions and rate limits: a client sending random query strings can fill it until session writes fail. Set a cap, or put the cache on its own allkeys-lru instance (REDIS_CACHE_URL)`)
      return
    }
    // Caps that never engage before a small Redis is full protect nothing: it refuses writes (OOM) first.
    const mayWrite = Math.min(this.cappedBytes, this.total.maxBytes)
    const room = memory.maxBytes - memory.usedBytes
    if (memory.maxBytes > 0 && mayWrite > room) {
      log.warn({ httpCache: { mayWriteBytes: mayWrite, maxmemoryBytes: memory.maxBytes, usedBytes: memory.usedBytes } },
        `http cache: its caps let it write ${mib(mayWrite)} to Redis (per route maxBytes, maxBytesTotal), more than the ${mib(Math.max(0, room))} that maxmemory ${mib(memory.maxBytes)} leaves under noeviction: Redis would refuse writes (OOM) before the caps engage, and sessions and rate limits would fail. Lower maxBytesPerRoute or maxBytesTotal, raise maxmemory, or put the cache on its own allkeys-lru instance (REDIS_CACHE_URL)`)
    }
  }
}

/** The entry a response is stored as: replayable headers, the body as text or base64, its ETag. */
function storedResponseOf (status: number, headers: ReturnType<FastifyReply['getHeaders']>, payload: unknown, omit: ReadonlySet<string>): StoredResponse {
  const body = typeof payload === 'string' || Buffer.isBuffer(payload) ? payload : ''
  return {
    status,
    headers: replayableHeaders(headers, omit),
    body: typeof body === 'string' ? body : body.toString('base64'),
    encoding: typeof body === 'string' ? 'utf8' : 'base64',
    // A handler that sets its own validator knows the resource better than a hash does.
    etag: typeof headers.etag === 'string' ? headers.etag : computeEtag(body),
    storedAt: Date.now()
  }
}

/** A response Node will refuse to send fails as this request's 500; stored, every hit would fail too. */
function unsendable (headers: ReturnType<FastifyReply['getHeaders']>): { reason: string, bypass: boolean } | undefined {
  const name = unsendableHeader(headers)
  return name === undefined ? undefined : { reason: `header ${name} cannot be sent`, bypass: true }
}

/**
 * Only an identity someone verified: the loaded session's user, or the Authorization credential
 * (hashed here too: the raw token never sits in a key or a string that may be logged). Never the
 * session cookie's raw text: a cookie an attacker plants in a victim's browser would make the
 * victim's private responses readable by anyone sending the same cookie. Else undefined: bypass.
 */
function defaultUserKey (request: FastifyRequest): string | undefined {
  const userId = loadedSession(request)?.get('userId')
  if (typeof userId === 'string' || typeof userId === 'number') return `user:${userId}`
  const authorization = headerValue(request.headers.authorization)
  if (authorization !== undefined && authorization !== '') return `authorization:${createHash('sha256').update(authorization).digest('base64url')}`
  // No identity the suite can vouch for (the app may authenticate its own way): the caller bypasses.
  return undefined
}

type Done = (err: Error | null, payload?: unknown) => void

/**
 * Ends a callback hook with its asynchronous work, on every path, as Fastify's own runner ends an
 * async hook: a throw from the rest of the chain (a header Node refuses to send) goes back to `done`
 * as this request's error, instead of escaping as an unhandled rejection that ends the process.
 */
function settleHook<T> (work: Promise<T>, done: Done, next: (value: T) => void): void {
  work.then((value) => {
    try {
      next(value)
    } catch (err) {
      done(err as Error)
    }
  }, (err: unknown) => { done(err instanceof Error ? err : new Error(String(err))) })
}
type HookName = 'preParsing' | 'preHandler' | 'onSend'
type AnyHook = (...args: never[]) => unknown

/** Appends a route-level hook (or inserts it before the first one `before` picks). */
function addHook (route: RouteOptions, name: HookName, hook: AnyHook, before?: (hook: AnyHook) => boolean): void {
  const existing = route[name] as AnyHook | AnyHook[] | undefined
  const list: AnyHook[] = existing === undefined ? [] : Array.isArray(existing) ? [...existing] : [existing]
  const at = before === undefined ? -1 : list.findIndex(before)
  if (at === -1) list.push(hook)
  else list.splice(at, 0, hook)
  ;(route as unknown as Record<HookName, AnyHook[]>)[name] = list
}

export default fp(httpCachePlugin, {
  name: 'redis-suite-http-cache',
  fastify: '5.x',
  dependencies: ['redis-suite-config', 'redis-suite-redis', 'redis-suite-cache']
})

function mib (bytes: number): string {
  return `${(bytes / 1_048_576).toFixed(1)} MiB`
}
