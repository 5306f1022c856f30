// The per-session part of a session cookie, as the store keeps it: a max age (a rolling cookie) or a
// fixed expiry. Everything else about the cookie (SameSite, Domain, Secure, HttpOnly, Path) comes from
// the current config whenever it is sent, so it is never stored.
import type { SessionLike } from './types.js'

/**
 * `chosen`: the max age was chosen for this session (remember-me, regenerate({ lifetime })) rather than
 * given by SESSION_TTL: it is then also the session's idle timeout, and SESSION_MAX_LIFETIME caps it
 * instead of SESSION_TTL.
 */
export interface CookieLifetime { maxAge?: number, expires?: number, chosen?: true }

/** One JSON string per payload field; `cookie` is the session's own, undefined fields are absent. */
export function serialisePayload (session: SessionLike): Record<string, string> {
  const fields: Record<string, string> = {}
  for (const field in session) {
    const value = session[field]
    if (field === 'cookie' || value === undefined || typeof value === 'function') continue
    fields[field] = JSON.stringify(value)
  }
  return fields
}

/** The cookie as its owner serialises it (express-session's and @fastify/session's Cookie have toJSON). */
export function cookieJson (cookie: SessionLike['cookie']): Record<string, unknown> {
  if (cookie === undefined || cookie === null) return {}
  return typeof cookie.toJSON === 'function' ? (cookie.toJSON as () => Record<string, unknown>)() : { ...cookie }
}

/**
 * The per-session lifetime of a cookie: its max age when it has one (a rolling cookie), else its
 * fixed expiry (express-session stores set only `expires` this way), else nothing (the default TTL).
 */
export function cookieLifetime (cookie: SessionLike['cookie']): CookieLifetime {
  const json = cookieJson(cookie)
  const maxAge = json['originalMaxAge']
  if (typeof maxAge === 'number' && maxAge > 0) return { maxAge }
  const at = expiresOf(json)
  return at !== undefined ? { expires: at } : {}
}

/** The cookie's `expires` as epoch ms, whether or not it also has a max age; undefined when it has none. */
export function cookieExpiresAt (cookie: SessionLike['cookie']): number | undefined {
  return expiresOf(cookieJson(cookie))
}

function expiresOf (json: Record<string, unknown>): number | undefined {
  const expires = json['expires']
  const at = expires instanceof Date ? expires.getTime() : typeof expires === 'string' || typeof expires === 'number' ? new Date(expires).getTime() : NaN
  return Number.isFinite(at) ? at : undefined
}

/**
 * The stored lifetime. Sessions written before only the lifetime was stored hold the whole cookie
 * JSON: its flags are ignored (they come from the current config), its max age is kept.
 */
export function parseLifetime (json: string): CookieLifetime {
  try {
    const parsed = JSON.parse(json) as Record<string, unknown> | null
    if (parsed === null || typeof parsed !== 'object') return {}
    if (typeof parsed['maxAge'] === 'number') return parsed['chosen'] === true ? { maxAge: parsed['maxAge'], chosen: true } : { maxAge: parsed['maxAge'] }
    if (typeof parsed['expires'] === 'number') return { expires: parsed['expires'] }
    if (typeof parsed['originalMaxAge'] === 'number') return { maxAge: parsed['originalMaxAge'] }
    // A cookie kept as given (keepCookie) with a fixed expiry: JSON holds the date as a string.
    const expires = typeof parsed['expires'] === 'string' ? Date.parse(parsed['expires']) : NaN
    return Number.isFinite(expires) ? { expires } : {}
  } catch {
    return {}
  }
}
