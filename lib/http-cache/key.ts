// The key of a stored response: method + scheme and authority (RFC 9111 keys on the full target URI)
// + path + the query parameters that select the response, names sorted + the values of the route's
// `vary` headers (+ the user, on private routes). Two requests with the same key get the same bytes,
// so anything that changes the answer must be in it.
//
//   GET https://app.example/users?page=2&sort=name     a public route without vary
//   GET https://app.example/users?page=2 vary=Xq3…      vary headers, hashed (values may be long or odd)
//   GET https://app.example/me user=k9P…                private: an HMAC of the user's identity
//   GET https://app.example/v route=Hq2…                a route with constraints (version, host…)
//
// HEAD shares GET's entries: a HEAD is answered with GET's headers and no body (RFC 9110 §9.3.2).
import { createHash, createHmac } from 'node:crypto'

// The cache refuses keys over 1 KB or with control characters; such URLs are keyed by their hash.
const MAX_READABLE_KEY_BYTES = 900
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/ // eslint-disable-line no-control-regex

export interface ResponseKeyParts {
  method: string
  /** Scheme and authority, as `https://app.example` (the Host as Fastify resolved it, behind trusted proxies). */
  origin: string
  /** The request URL as received: path and query string. */
  url: string
  /** The query parameters in the key; undefined: all of them. */
  query?: ReadonlySet<string> | undefined
  /** Fastify's `useSemicolonDelimiter` may be on: a `;` in the path cannot be keyed (undefined). */
  semicolon?: boolean | undefined
  /** The route's vary headers (lower case, sorted) with the request's value, undefined when absent. */
  vary?: ReadonlyArray<readonly [string, string | undefined]>
  /** Private routes: an opaque identity of the user (see hashIdentity). */
  user?: string | undefined
  /** The matched route's constraints (see constraintsKey), when it has any. */
  route?: string | undefined
}

export function buildResponseKey ({ method, origin, url, query, semicolon, vary = [], user, route }: ResponseKeyParts): string | undefined {
  const target = canonicalUrl(url, query, semicolon)
  if (target === undefined) return undefined
  const verb = method === 'HEAD' ? 'GET' : method
  let key = `${verb} ${origin.toLowerCase()}${target}`
  if (Buffer.byteLength(key) > MAX_READABLE_KEY_BYTES || CONTROL_CHARS.test(key)) key = `${verb} #${digest(key, 32)}`
  if (vary.length > 0) key += ` vary=${digest(JSON.stringify(vary), 22)}`
  if (route !== undefined) key += ` route=${route}`
  if (user !== undefined) key += ` user=${user}`
  return key
}

/**
 * What tells a route apart from others at the same URL: its constraints (`version`, `host`, custom
 * strategies), names sorted; undefined without any. Routes that differ only by a constraint answer
 * differently, and a `host` constraint routes on the Host header while the key's authority may come
 * from X-Forwarded-Host behind a trusted proxy: the constraints make each route's entries its own.
 */
export function constraintsKey (constraints: Record<string, unknown> | undefined): string | undefined {
  if (constraints === undefined || constraints === null) return undefined
  const names = Object.keys(constraints).sort()
  if (names.length === 0) return undefined
  const text = JSON.stringify(names.map((name) => [name, constraintText(constraints[name])]))
  return digest(text, 22)
}

function constraintText (value: unknown): string {
  return value instanceof RegExp ? `regexp:${String(value)}` : `value:${typeof value === 'string' ? value : JSON.stringify(value) ?? String(value)}`
}

/**
 * The path as received and the query parameters (only those in `only`, when given) sorted by name,
 * decoded and re-encoded one way; undefined when the URL cannot be keyed safely. Sorting is stable
 * and by name only: `?q=a&q=b` and `?q=b&q=a` are different requests to a handler that reads the
 * values in order.
 *
 * The split and the decoding are Fastify's own (find-my-way, fast-querystring), so that two URLs
 * share a key only when the handler sees the same path and query: the query starts at the first `?`
 * or `#` (`GET /users#&page=99` hands the handler `{ page: '99' }`; a fragment never reaches a
 * server from a browser), and a selecting parameter that does not decode (`%FF`) reaches the handler
 * as its raw text, which no decoded key can stand for: undefined. With `semicolon` (the app may have set
 * Fastify's `useSemicolonDelimiter`) a `;` in the path is undefined too, whichever way it splits.
 */
export function canonicalUrl (url: string, only?: ReadonlySet<string>, semicolon = false): string | undefined {
  const mark = queryStart(url)
  const path = mark === -1 ? url : url.slice(0, mark)
  if (semicolon && path.includes(';')) return undefined
  if (mark === -1) return url
  const params: Array<[string, string]> = []
  for (const pair of url.slice(mark + 1).split('&')) {
    if (pair === '') continue
    const eq = pair.indexOf('=')
    const rawName = eq === -1 ? pair : pair.slice(0, eq)
    const name = decodeQueryPart(rawName)
    // What the handler sees as the name (the raw text when it does not decode); a parameter the
    // route ignores costs nothing, however odd.
    if (only !== undefined && !only.has(name ?? rawName.replaceAll('+', ' '))) continue
    const value = eq === -1 ? '' : decodeQueryPart(pair.slice(eq + 1))
    if (name === undefined || value === undefined) return undefined
    params.push([name, value])
  }
  if (params.length === 0) return path
  params.sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
  let query = ''
  for (const [name, value] of params) query += `${query === '' ? '?' : '&'}${encodeURIComponent(name)}=${encodeURIComponent(value)}`
  return path + query
}

/** Where find-my-way ends the path: the first `?` or `#` after the first character. */
function queryStart (url: string): number {
  const question = url.indexOf('?', 1)
  const hash = url.indexOf('#', 1)
  return question === -1 ? hash : hash === -1 ? question : Math.min(question, hash)
}

/** As fast-querystring decodes a name or value (`+` is a space); undefined where it would keep the raw text. */
function decodeQueryPart (raw: string): string | undefined {
  const text = raw.includes('+') ? raw.replaceAll('+', ' ') : raw
  if (!text.includes('%')) return text
  try {
    return decodeURIComponent(text)
  } catch {
    return undefined
  }
}

/** True when a Cookie header carries a cookie whose name is not in `ignored`. */
export function hasUnlistedCookie (header: string, ignored: ReadonlySet<string>): boolean {
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=')
    const name = (eq === -1 ? pair : pair.slice(0, eq)).trim()
    if (name !== '' && !ignored.has(name)) return true
  }
  return false
}

/** A header's value as one string (repeated headers joined as HTTP would), undefined when absent. */
export function headerValue (value: string | readonly string[] | undefined): string | undefined {
  if (value === undefined) return undefined
  return typeof value === 'string' ? value.trim() : value.map((v) => v.trim()).join(', ')
}

/**
 * A user's identity for a key: never the raw token, session id or user id (keys are visible in
 * Redis), but stable across instances. Keyed with the app's secret when it has one.
 */
export function hashIdentity (identity: string, secret?: string): string {
  const mac = secret === undefined || secret === '' ? createHash('sha256') : createHmac('sha256', secret)
  return mac.update(identity).digest('base64url').slice(0, 27)
}

/** The value of one cookie in a Cookie header, without decoding or verifying it. */
export function readCookie (header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=')
    if (eq !== -1 && pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim()
  }
  return undefined
}

function digest (text: string, length: number): string {
  return createHash('sha256').update(text).digest('base64url').slice(0, length)
}
