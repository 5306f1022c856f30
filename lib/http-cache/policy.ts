// A route's `config.cache`, checked and resolved once when the route is registered, so a mistake
// fails at boot with the route named, and a request parses nothing.
import { didYouMean, parseDuration, type Duration } from '../config/index.js'
import { assertValidTags } from '../cache/index.js'
import { HttpCacheConfigError } from '../errors/index.js'

/** Fixed tags, or tags computed from the request (say `['users', \`user:${request.params.id}\`]`). */
export type TagSource<Request> = readonly string[] | ((request: Request) => readonly string[])

export interface RouteCacheOptions<Request = unknown> {
  /** How long the response is fresh, here and in shared caches (s-maxage). Default: CACHE_DEFAULT_TTL. */
  ttl?: Duration
  /** Tags of the stored response, for invalidation; also sent as Surrogate-Key. */
  tags?: TagSource<Request>
  /** Request headers whose values select a different response (Accept-Language, Accept…). */
  vary?: readonly string[]
  /** Cache per user (session user id, else Authorization) and send Cache-Control: private. Default false. */
  private?: boolean
  /** How long clients may reuse the response (max-age). Default: ttl. */
  maxAge?: Duration
  /** After ttl, serve the old response for this long while one background request refreshes it. Default 0. */
  staleWhileRevalidate?: Duration
  /** After ttl, serve the old response for this long when the handler fails (5xx or throws). Default 0. */
  staleIfError?: Duration
  /** On POST, PUT, PATCH and DELETE: tags to invalidate, on every instance, after a 2xx answer. */
  invalidates?: TagSource<Request>
  /**
   * Public routes: cookies that do not change the response. By default any Cookie header bypasses the
   * cache (a response computed for `Cookie: token=alice` must not reach anonymous clients); `true`
   * ignores every cookie, a list ignores those names only. Default: none.
   */
  ignoreCookies?: boolean | readonly string[]
  /** The query parameters that select the response; the others are left out of the key. Default: all. */
  query?: readonly string[]
  /**
   * Let a client's `Cache-Control: no-cache` / `max-age=0` / `Pragma: no-cache` run the handler and
   * replace the entry (collapsed: concurrent ones run it once per instance). Default false: shared
   * entries ignore request revalidation directives, as shared caches and CDNs do.
   */
  clientRevalidation?: boolean
  /** Most entries this route keeps written at once, per instance; false: no cap. Default: the plugin's maxEntriesPerRoute (10,000). */
  maxEntries?: number | false
  /** Most body bytes this route keeps written at once, per instance; false: no cap. Default: the plugin's maxBytesPerRoute (64 MiB). */
  maxBytes?: number | false
}

/** Plugin-wide defaults a route's options fall back to. */
export interface RouteDefaults {
  ttlMs: number
  maxEntries?: number | false
  maxBytes?: number | false
}

export interface CachedRoutePolicy<Request> {
  ttlMs: number
  maxAgeMs: number
  staleWhileRevalidateMs: number
  staleIfErrorMs: number
  private: boolean
  /** Lower case, sorted, no duplicates. */
  vary: string[]
  tags: TagSource<Request>
  /** 'any': every cookie bypasses; 'none': cookies never do; a set: the names that do not. */
  cookies: 'any' | 'none' | ReadonlySet<string>
  /** The query parameters in the key; undefined: all. */
  query: ReadonlySet<string> | undefined
  clientRevalidation: boolean
  /** Infinity when uncapped. */
  maxEntries: number
  maxBytes: number
}

export interface RoutePolicy<Request> {
  /** Set when the route answers GET or HEAD. */
  cache: CachedRoutePolicy<Request> | undefined
  /** Set when the route answers a write method and names tags to invalidate. */
  invalidates: TagSource<Request> | undefined
}

export const CACHEABLE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD'])
export const INVALIDATING_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])
const RESPONSE_OPTIONS = ['ttl', 'tags', 'vary', 'private', 'maxAge', 'staleWhileRevalidate', 'staleIfError', 'ignoreCookies',
  'query', 'clientRevalidation', 'maxEntries', 'maxBytes'] as const
const OPTIONS: readonly string[] = [...RESPONSE_OPTIONS, 'invalidates']
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

export function resolveRoutePolicy<Request> (options: RouteCacheOptions<Request>, methods: readonly string[], url: string,
  defaults: RouteDefaults): RoutePolicy<Request> {
  const where = `config.cache of ${methods.join(',')} ${url}`
  const fail = (message: string): never => { throw new HttpCacheConfigError(`${where}: ${message}`) }
  if (options === null || typeof options !== 'object') fail('must be an object such as { ttl: \'1m\', tags: [\'users\'] }')
  // A typo must not change what is cached: `privat: true` would otherwise make a private route public.
  for (const name of Object.keys(options)) {
    if (!OPTIONS.includes(name)) fail(`unknown option ${name}${didYouMean(name, OPTIONS) || ` (options: ${OPTIONS.join(', ')})`}`)
  }
  const reads = methods.some((m) => CACHEABLE_METHODS.has(m))
  const writes = methods.some((m) => INVALIDATING_METHODS.has(m))
  const responseOptions = RESPONSE_OPTIONS.filter((name) => options[name] !== undefined)
  if (!reads && responseOptions.length > 0) {
    fail(`${responseOptions.join(', ')} only apply to GET and HEAD routes; a write route lists the tags it changes in invalidates`)
  }
  if (options.invalidates !== undefined && !writes) fail('invalidates applies to POST, PUT, PATCH and DELETE routes')
  if (!reads && options.invalidates === undefined) fail('only GET and HEAD responses are cached; give a write route invalidates: [tags]')

  const duration = (value: Duration | undefined, name: string, fallback: number): number => {
    if (value === undefined) return fallback
    try {
      return parseDuration(value, name)
    } catch (err) {
      return fail((err as Error).message)
    }
  }
  const tagSource = (source: TagSource<Request> | undefined, name: string): TagSource<Request> => {
    if (source === undefined) return []
    if (typeof source === 'function') return source
    if (!Array.isArray(source)) return fail(`${name} must be an array of tags or a function of the request returning one`)
    try {
      assertValidTags(source)
    } catch (err) {
      fail(`${name}: ${(err as Error).message}`)
    }
    return [...new Set(source)]
  }
  const invalidates = options.invalidates === undefined ? undefined : tagSource(options.invalidates, 'invalidates')
  if (!reads) return { cache: undefined, invalidates }

  const names = (list: unknown, name: string): string[] => {
    if (!Array.isArray(list) || list.some((n) => typeof n !== 'string' || n === '')) fail(`${name} must be a list of names`)
    return list as string[]
  }
  const cap = (value: number | false | undefined, name: string): number => {
    if (value === false || value === undefined) return Infinity
    if (!Number.isInteger(value) || value <= 0) fail(`${name} must be a positive integer or false (no cap)`)
    return value
  }
  const ignoreCookies = options.ignoreCookies
  const cookies = ignoreCookies === undefined || ignoreCookies === false
    ? 'any'
    : ignoreCookies === true ? 'none' : new Set(names(ignoreCookies, 'ignoreCookies'))
  const ttlMs = duration(options.ttl, 'ttl', defaults.ttlMs)
  if (ttlMs <= 0) fail('ttl must be longer than 0 ms')
  const vary = [...new Set((options.vary ?? []).map((name) => {
    if (typeof name !== 'string' || !HEADER_NAME.test(name)) fail(`vary must list header names, got ${JSON.stringify(name)}`)
    return name.toLowerCase()
  }))].sort()
  return {
    cache: {
      ttlMs,
      maxAgeMs: duration(options.maxAge, 'maxAge', ttlMs),
      staleWhileRevalidateMs: duration(options.staleWhileRevalidate, 'staleWhileRevalidate', 0),
      staleIfErrorMs: duration(options.staleIfError, 'staleIfError', 0),
      private: options.private === true,
      vary,
      tags: tagSource(options.tags, 'tags'),
      // A route that keys on the Cookie header already stores one entry per cookie set.
      cookies: vary.includes('cookie') ? 'none' : cookies,
      query: options.query === undefined ? undefined : new Set(names(options.query, 'query')),
      clientRevalidation: options.clientRevalidation === true,
      maxEntries: cap(options.maxEntries ?? defaults.maxEntries, 'maxEntries'),
      maxBytes: cap(options.maxBytes ?? defaults.maxBytes, 'maxBytes')
    },
    invalidates
  }
}

/** The tags for one request; a function's result is checked here, since it was not at boot. */
export function tagsFor<Request> (source: TagSource<Request>, request: Request): string[] {
  if (typeof source !== 'function') return source as string[]
  const tags = [...new Set(source(request))]
  assertValidTags(tags)
  return tags
}
