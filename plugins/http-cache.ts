// Route-level HTTP response caching over app.cache: `config: { cache: { ttl, tags, vary, private } }`
// on a GET route stores its serialised responses; `config: { cache: { invalidates: [tags] } }` on a
// write route drops them on every instance after a 2xx. The rules (key, what may be stored,
// freshness, collapse) live in lib/http-cache; this file wires them into Fastify's lifecycle:
//
//   preParsing (route-level) a hit is answered here, before body parsing, validation and the
//              handler; a miss joins or starts the one handler run for its key (see
//              lib/http-cache/response-store.ts). Not onRequest: the rate limiter, session loading
//              and an app's auth hooks are onRequest hooks, some added per route by plugins
//              registered after this one, and every one of them must run before a hit is served.
//   onSend     (route-level, before HEAD's body stripping) the serialised response is stored,
//              ETag/Cache-Control/Age/Surrogate-Key/x-cache are set, If-None-Match answers 304
//   onResponse settles whatever the request left open (a fill, a refresh in progress)
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import { parseDuration, type Duration } from '../lib/duration.js'
import {
  bodyOf, buildResponseKey, CACHEABLE_METHODS, computeEtag, formatCacheControl, freshness, hashIdentity, headerValue,
  INVALIDATING_METHODS, matchesIfNoneMatch, readCookie, replayableHeaders, resolveRoutePolicy, ResponseStore, storageTtl,
  tagsFor, wantsRevalidation, whyNotStorable,
  type CachedRoutePolicy, type Fill, type HttpCacheStats, type RouteCacheOptions, type StoredResponse, type TagSource
} from '../lib/http-cache/index.js'

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
  stats: () => HttpCacheStats
  /** Every stored response carrying one of these tags becomes a miss, on every instance. */
  invalidate: (tags: readonly string[]) => Promise<void>
}

export interface HttpCachePluginOptions {
  /** Namespace of app.cache holding responses. Default 'http'. */
  namespace?: string
  /** Longest an identical request waits for the one handler run before running its own. Default '5s'. */
  collapseWait?: Duration
  /** Larger bodies are not stored. Default 1 MiB. */
  maxBodyBytes?: number
  /** Response headers never replayed from the cache, besides the built-in per-response ones. */
  omitHeaders?: readonly string[]
  /** Whether a request is a user's own: not cached unless the route is private. Default: an Authorization header or the session cookie. */
  isAuthenticated?: (request: FastifyRequest) => boolean
  /** Who a private response belongs to (HMAC-hashed into the key); undefined skips the cache. Default: the session's userId, else the Authorization header, else the session cookie. */
  userKey?: (request: FastifyRequest) => string | undefined
}

type Verdict = 'HIT' | 'STALE' | 'MISS' | 'BYPASS'

/** What a request that runs its handler must do with the response. */
interface Exchange {
  policy: CachedRoutePolicy<FastifyRequest>
  key: string
  tags: string[]
  /** The one handler run others wait on. */
  fill?: Fill | undefined
  /** A stale entry to answer with if the handler fails (stale-if-error). */
  stale?: StoredResponse | undefined
  /** This request is the one refreshing its key in this process. */
  refreshing?: boolean
}

async function httpCachePlugin (app: FastifyInstance, options: HttpCachePluginOptions = {}): Promise<void> {
  const config = app.config
  const store = new ResponseStore({
    cache: app.cache.namespace(options.namespace ?? 'http', { grace: 0 }),
    collapseWaitMs: parseDuration(options.collapseWait ?? '5s', 'collapseWait'),
    fillTimeoutMs: 2 * 60_000
  })
  const maxBodyBytes = options.maxBodyBytes ?? 1_048_576
  const omit = new Set((options.omitHeaders ?? []).map((h) => h.toLowerCase()))
  const cookieName = config.SESSION_COOKIE_NAME
  const secret = config.SESSION_SECRET[0]
  const isAuthenticated = options.isAuthenticated ??
    ((request) => request.headers.authorization !== undefined || readCookie(request.headers.cookie, cookieName) !== undefined)
  const userKey = options.userKey ?? ((request) => defaultUserKey(request, cookieName))
  const exchanges = new WeakMap<FastifyRequest, Exchange>()
  const refreshing = new Set<string>()
  let closing = false

  app.decorate('httpCache', { stats: () => ({ ...store.stats }), invalidate: (tags: readonly string[]) => store.invalidate(tags) })
  app.addHook('preClose', async () => { closing = true })

  app.addHook('onRoute', (route) => {
    const options = route.config?.cache
    if (options === undefined) return
    const methods = [route.method].flat().map((m) => m.toUpperCase())
    const policy = resolveRoutePolicy(options, methods, route.url, config.CACHE_DEFAULT_TTL)
    if (policy.cache !== undefined) {
      const cached = policy.cache
      addHook(route, 'preParsing', (request: FastifyRequest, reply: FastifyReply, _payload: unknown) => lookup(request, reply, cached))
      // Before HEAD's own onSend, which drops the body: a HEAD miss can fill GET's entry too.
      addHook(route, 'onSend', (request: FastifyRequest, reply: FastifyReply, payload: unknown) => storeResponse(request, reply, payload),
        (hook) => hook.name === 'headRouteOnSendHandler')
      const finish = async (request: FastifyRequest): Promise<void> => settle(request)
      addHook(route, 'onResponse', finish)
      addHook(route, 'onRequestAbort', finish)
      addHook(route, 'onTimeout', finish)
    }
    if (policy.invalidates !== undefined) {
      const tags = policy.invalidates
      addHook(route, 'onSend', (request: FastifyRequest, reply: FastifyReply, payload: unknown) => invalidate(request, reply, payload, tags))
    }
  })

  async function lookup (request: FastifyRequest, reply: FastifyReply, policy: CachedRoutePolicy<FastifyRequest>): Promise<FastifyReply | undefined> {
    if (!CACHEABLE_METHODS.has(request.method)) return
    if (!policy.private && isAuthenticated(request)) return bypass(reply)
    let key: string
    let tags: string[]
    try {
      const identity = policy.private ? userKey(request) : undefined
      if (policy.private && identity === undefined) return bypass(reply)
      const user = identity === undefined ? undefined : hashIdentity(identity, secret)
      tags = tagsFor(policy.tags, request)
      const vary = policy.vary.map((name) => [name, headerValue(request.headers[name])] as const)
      key = buildResponseKey({ method: request.method, url: request.url, vary, user })
    } catch (err) {
      request.log.warn({ err }, 'http cache: cannot key this request (tags or user); answered without the cache')
      return bypass(reply)
    }
    const exchange: Exchange = { policy, key, tags }
    if (wantsRevalidation(request.headers['cache-control'], request.headers.pragma)) {
      store.stats.revalidations++
      exchanges.set(request, exchange)
      return
    }
    const found = await store.lookup(key, storageTtl(policy), tags)
    if (found.kind !== 'found') {
      exchanges.set(request, { ...exchange, fill: found.kind === 'fill' ? found.fill : undefined })
      return
    }
    const entry = found.entry
    switch (freshness(entry.storedAt, policy)) {
      case 'fresh':
        return serve(request, reply, entry, exchange, 'HIT')
      case 'stale-while-revalidate':
        refreshInBackground(request, key)
        return serve(request, reply, entry, exchange, 'STALE')
      case 'stale-if-error':
        // Past stale-while-revalidate this request refreshes in line, keeping the entry in case the
        // handler fails; while it does, identical requests get the stale copy rather than a second run.
        if (refreshing.has(key)) return serve(request, reply, entry, exchange, 'STALE')
        refreshing.add(key)
        exchanges.set(request, { ...exchange, stale: entry, refreshing: true })
        return
      case 'expired':
        exchanges.set(request, exchange)
    }
  }

  async function storeResponse (request: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> {
    const exchange = exchanges.get(request)
    if (exchange === undefined) return payload
    const { policy, key, tags } = exchange
    const status = reply.statusCode
    const headers = reply.getHeaders()
    const notStorable = whyNotStorable({ status, headers, payload, vary: policy.vary, privateRoute: policy.private, maxBodyBytes })
    if (notStorable === undefined) {
      const body = typeof payload === 'string' || Buffer.isBuffer(payload) ? payload : ''
      const entry: StoredResponse = {
        status,
        headers: replayableHeaders(headers, omit),
        body: typeof body === 'string' ? body : body.toString('base64'),
        encoding: typeof body === 'string' ? 'utf8' : 'base64',
        // A handler that sets its own validator knows the resource better than a hash does.
        etag: typeof headers.etag === 'string' ? headers.etag : computeEtag(body),
        storedAt: Date.now()
      }
      if (exchange.fill !== undefined) {
        exchange.fill.complete(entry)
      } else {
        store.store(key, entry, storageTtl(policy), tags)
          .catch((err: unknown) => request.log.warn({ err }, 'http cache: response not stored'))
      }
      store.stats.misses++
      return respond(request, reply, entry, exchange, 'MISS', payload)
    }
    exchange.fill?.abandon()
    const stale = exchange.stale
    if (stale !== undefined && status >= 500 && freshness(stale.storedAt, policy) !== 'expired') {
      request.log.warn({ statusCode: status }, 'http cache: the handler failed; answered with the stale response (stale-if-error)')
      reply.removeHeader('content-type')
      reply.removeHeader('content-length')
      reply.code(stale.status).headers(stale.headers)
      store.stats.staleHits++
      return respond(request, reply, stale, exchange, 'STALE', bodyOf(stale))
    }
    if (notStorable.bypass) {
      store.stats.bypasses++
      request.log.debug({ reason: notStorable.reason }, 'http cache: response not stored')
    } else {
      store.stats.misses++
    }
    reply.header('x-cache', notStorable.bypass ? 'BYPASS' : 'MISS')
    return payload
  }

  function settle (request: FastifyRequest): void {
    const exchange = exchanges.get(request)
    if (exchange === undefined) return
    exchanges.delete(request)
    exchange.fill?.abandon() // a no-op once completed; else waiters stop waiting for a request that is gone
    if (exchange.refreshing === true) refreshing.delete(exchange.key)
  }

  function serve (request: FastifyRequest, reply: FastifyReply, entry: StoredResponse, exchange: Exchange, verdict: 'HIT' | 'STALE'): FastifyReply {
    if (verdict === 'HIT') store.stats.hits++
    else store.stats.staleHits++
    reply.code(entry.status).headers(entry.headers)
    return reply.send(respond(request, reply, entry, exchange, verdict, bodyOf(entry)) ?? undefined)
  }

  /** Sets the cache headers; answers 304 (returning no body) when the client's copy is current. */
  function respond (request: FastifyRequest, reply: FastifyReply, entry: StoredResponse, { policy, tags }: Exchange,
    verdict: Verdict, body: unknown): unknown {
    const ageS = Math.max(0, Math.floor((Date.now() - entry.storedAt) / 1000))
    reply.header('etag', entry.etag)
    reply.header('cache-control', formatCacheControl(policy))
    reply.header('age', String(ageS))
    if (policy.vary.length > 0) reply.header('vary', policy.vary.join(', '))
    if (tags.length > 0) reply.header('surrogate-key', tags.join(' '))
    reply.header('x-cache', verdict)
    if (!matchesIfNoneMatch(request.headers['if-none-match'], entry.etag)) return body
    store.stats.notModified++
    reply.code(304)
    reply.removeHeader('content-type')
    reply.removeHeader('content-length')
    // HEAD's own onSend runs after this one and cannot take a null body.
    return request.method === 'HEAD' ? '' : null
  }

  function bypass (reply: FastifyReply): undefined {
    store.stats.bypasses++
    reply.header('x-cache', 'BYPASS')
    return undefined
  }

  /** Stale-while-revalidate: one background GET per key and process, through the whole route (auth included). */
  function refreshInBackground (request: FastifyRequest, key: string): void {
    if (refreshing.has(key) || closing) return
    refreshing.add(key)
    const headers: Record<string, string | string[] | undefined> = { ...request.headers, 'cache-control': 'no-cache' }
    for (const name of ['if-none-match', 'if-modified-since', 'content-length', 'transfer-encoding', 'connection', 'expect']) {
      delete headers[name]
    }
    app.inject({ method: 'GET', url: request.url, headers, remoteAddress: request.ip })
      .then((response) => {
        if (response.statusCode >= 400) request.log.warn({ statusCode: response.statusCode }, 'http cache: background refresh failed; the stale response stays')
      }, (err: unknown) => request.log.warn({ err }, 'http cache: background refresh failed; the stale response stays'))
      .finally(() => refreshing.delete(key))
  }

  async function invalidate (request: FastifyRequest, reply: FastifyReply, payload: unknown, source: TagSource<FastifyRequest>): Promise<unknown> {
    if (!INVALIDATING_METHODS.has(request.method) || reply.statusCode < 200 || reply.statusCode > 299) return payload
    let tags: string[]
    try {
      tags = tagsFor(source, request)
    } catch (err) {
      request.log.warn({ err }, 'http cache: invalidates returned invalid tags; nothing invalidated')
      return payload
    }
    // Awaited (bounded by the cache's Redis timeout) so a client that got its 2xx reads the new data.
    await store.invalidate(tags)
    return payload
  }
}

function defaultUserKey (request: FastifyRequest, cookieName: string): string {
  // request.session exists only on routes that load sessions (elsewhere the getter throws).
  let session: { userId?: unknown, get?: (key: string) => unknown } | undefined
  try {
    session = (request as { session?: typeof session }).session ?? undefined
  } catch {
    session = undefined
  }
  const userId = typeof session?.get === 'function' ? session.get('userId') : session?.userId
  if (typeof userId === 'string' || typeof userId === 'number') return `user:${userId}`
  const authorization = headerValue(request.headers.authorization)
  if (authorization !== undefined && authorization !== '') return `authorization:${authorization}`
  const sessionId = readCookie(request.headers.cookie, cookieName)
  if (sessionId !== undefined && sessionId !== '') return `session:${sessionId}`
  return 'anonymous'
}

type HookName = 'preParsing' | 'onSend' | 'onResponse' | 'onRequestAbort' | 'onTimeout'
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
