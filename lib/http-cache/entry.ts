// A stored response: status, the headers worth replaying, the serialised body and its ETag. Also
// the rules for what may be stored and for how old an entry may be and still be served.
import Type, { type Static } from 'typebox'
import { forbidsStoring } from './cache-control.js'

/** Checked by the cache when an entry arrives from Redis; its hash changes with the shape (a deploy is a miss). */
export const StoredResponseSchema = Type.Object({
  status: Type.Integer({ minimum: 200, maximum: 299 }),
  headers: Type.Record(Type.String(), Type.Union([Type.String(), Type.Array(Type.String())])),
  body: Type.String(),
  /** utf8: the string payload as sent; base64: a Buffer payload. */
  encoding: Type.Union([Type.Literal('utf8'), Type.Literal('base64')]),
  etag: Type.String(),
  /** ms since the epoch; Age and freshness are counted from it. */
  storedAt: Type.Number()
})

export type StoredResponse = Static<typeof StoredResponseSchema>
export type ResponseHeaders = Record<string, number | string | string[] | undefined>

// Headers that describe this one exchange, not the resource, or that the cache writes itself.
const NOT_REPLAYED = new Set([
  'age', 'cache-control', 'connection', 'content-length', 'date', 'etag', 'expires', 'keep-alive',
  'retry-after', 'set-cookie', 'surrogate-key', 'trailer', 'transfer-encoding', 'upgrade', 'vary',
  'x-cache', 'x-request-id', 'server-timing', 'ratelimit', 'ratelimit-policy'
])
const NOT_REPLAYED_PREFIXES = ['x-ratelimit-']

/** The response headers to replay on a hit, as strings; `omit` adds the app's own per-response headers. */
export function replayableHeaders (headers: ResponseHeaders, omit: ReadonlySet<string> = new Set()): StoredResponse['headers'] {
  const kept: StoredResponse['headers'] = {}
  for (const [rawName, value] of Object.entries(headers)) {
    const name = rawName.toLowerCase()
    if (value === undefined || NOT_REPLAYED.has(name) || omit.has(name) || NOT_REPLAYED_PREFIXES.some((p) => name.startsWith(p))) continue
    kept[name] = Array.isArray(value) ? value.map(String) : String(value)
  }
  return kept
}

export interface StoreCandidate {
  status: number
  headers: ResponseHeaders
  payload: unknown
  /** The route's vary headers, lower case. */
  vary: readonly string[]
  privateRoute: boolean
  maxBodyBytes: number
}

/**
 * Why this response must not be stored, or undefined when it may. `bypass` marks the reasons that
 * are about the response itself (a cookie, a stream, the handler's no-store) rather than a miss.
 */
export function whyNotStorable (c: StoreCandidate): { reason: string, bypass: boolean } | undefined {
  // 206 answers one range of the resource, not the resource.
  if (c.status < 200 || c.status > 299 || c.status === 206) return { reason: `status ${c.status}`, bypass: false }
  if (c.headers['set-cookie'] !== undefined) return { reason: 'sets a cookie', bypass: true }
  if (typeof c.payload !== 'string' && !Buffer.isBuffer(c.payload) && c.payload !== null && c.payload !== undefined) {
    return { reason: 'streamed body', bypass: true }
  }
  const forbidden = forbidsStoring(headerText(c.headers['cache-control']), c.privateRoute)
  if (forbidden !== undefined) return { reason: `handler sent Cache-Control: ${forbidden}`, bypass: true }
  const varied = headerText(c.headers.vary)
  if (varied !== undefined) {
    // The response says it differs by a header the key ignores: storing it would serve it to the wrong client.
    const unkeyed = varied.split(',').map((h) => h.trim().toLowerCase()).filter((h) => h !== '' && !c.vary.includes(h))
    if (unkeyed.length > 0) return { reason: `response varies on ${unkeyed.join(', ')}, which config.cache.vary does not list`, bypass: true }
  }
  if (c.headers['content-encoding'] !== undefined && !c.vary.includes('accept-encoding')) {
    return { reason: 'encoded body without accept-encoding in config.cache.vary', bypass: true }
  }
  const size = c.payload === null || c.payload === undefined ? 0 : Buffer.byteLength(c.payload as string | Buffer)
  if (size > c.maxBodyBytes) return { reason: `body of ${size} bytes exceeds maxBodyBytes`, bypass: false }
  return undefined
}

export interface EntryLifetime {
  ttlMs: number
  staleWhileRevalidateMs: number
  staleIfErrorMs: number
}

export type Freshness = 'fresh' | 'stale-while-revalidate' | 'stale-if-error' | 'expired'

/** How an entry of this age may be used under the route's current policy. */
export function freshness (storedAt: number, lifetime: EntryLifetime, now = Date.now()): Freshness {
  const age = Math.max(0, now - storedAt)
  if (age < lifetime.ttlMs) return 'fresh'
  if (age < lifetime.ttlMs + lifetime.staleWhileRevalidateMs) return 'stale-while-revalidate'
  if (age < lifetime.ttlMs + lifetime.staleIfErrorMs) return 'stale-if-error'
  return 'expired'
}

/** How long the cache keeps an entry: fresh, then as long as either stale window allows. */
export function storageTtl (lifetime: EntryLifetime): number {
  return lifetime.ttlMs + Math.max(lifetime.staleWhileRevalidateMs, lifetime.staleIfErrorMs)
}

const decoded = new WeakMap<StoredResponse, Buffer>()

/** The body to send; a Buffer body is decoded once per in-memory entry, not once per hit. */
export function bodyOf (entry: StoredResponse): string | Buffer {
  if (entry.encoding === 'utf8') return entry.body
  let buffer = decoded.get(entry)
  if (buffer === undefined) {
    buffer = Buffer.from(entry.body, 'base64')
    decoded.set(entry, buffer)
  }
  return buffer
}

function headerText (value: ResponseHeaders[string]): string | undefined {
  if (value === undefined) return undefined
  return Array.isArray(value) ? value.join(', ') : String(value)
}
