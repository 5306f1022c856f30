// Cache-Control: reading a request's directives and writing a cached response's.
// Header values are seconds (RFC 9111); every option here is milliseconds, floored to whole seconds.

export type Directives = Map<string, string | true>

/** Directive name (lower case) → its value, or true for a bare directive. Unparseable parts are skipped. */
export function parseCacheControl (header: string | readonly string[] | undefined): Directives {
  const directives: Directives = new Map()
  if (header === undefined) return directives
  const text = typeof header === 'string' ? header : header.join(',')
  for (const part of text.split(',')) {
    const [rawName = '', ...rest] = part.split('=')
    const name = rawName.trim().toLowerCase()
    if (name === '') continue
    const value = rest.join('=').trim().replace(/^"(.*)"$/, '$1')
    if (!directives.has(name)) directives.set(name, rest.length === 0 ? true : value)
  }
  return directives
}

/** True when the client asks for a fresh answer: `Cache-Control: no-cache` or `max-age=0`, or `Pragma: no-cache`. */
export function wantsRevalidation (cacheControl: string | readonly string[] | undefined, pragma: string | readonly string[] | undefined): boolean {
  const directives = parseCacheControl(cacheControl)
  if (directives.has('no-cache') || directives.get('max-age') === '0') return true
  return directives.size === 0 && pragma !== undefined && /\bno-cache\b/i.test(typeof pragma === 'string' ? pragma : pragma.join(','))
}

export interface ResponseFreshness {
  /** How long the cache serves the response as fresh (s-maxage). */
  ttlMs: number
  /** How long clients may reuse it (max-age); defaults to ttlMs. */
  maxAgeMs: number
  staleWhileRevalidateMs: number
  staleIfErrorMs: number
  /** Per user: `private`, and no s-maxage, so shared caches (CDNs, proxies) never store it. */
  private: boolean
}

export function formatCacheControl (f: ResponseFreshness): string {
  const parts = [f.private ? 'private' : 'public', `max-age=${seconds(f.maxAgeMs)}`]
  if (!f.private) parts.push(`s-maxage=${seconds(f.ttlMs)}`)
  if (f.staleWhileRevalidateMs > 0) parts.push(`stale-while-revalidate=${seconds(f.staleWhileRevalidateMs)}`)
  if (f.staleIfErrorMs > 0) parts.push(`stale-if-error=${seconds(f.staleIfErrorMs)}`)
  return parts.join(', ')
}

/** A handler's own Cache-Control that forbids storing the response here. */
export function forbidsStoring (cacheControl: string | readonly string[] | undefined, privateRoute: boolean): string | undefined {
  const directives = parseCacheControl(cacheControl)
  if (directives.has('no-store')) return 'no-store'
  if (directives.has('no-cache')) return 'no-cache'
  if (directives.has('private') && !privateRoute) return 'private'
  return undefined
}

export function seconds (ms: number): number {
  return Math.max(0, Math.floor(ms / 1000))
}
