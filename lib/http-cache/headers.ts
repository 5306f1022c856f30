// What the cache writes into response headers. Tags may hold request text (`'q:' + request.query.q`),
// and Node refuses a header value with a character above U+00FF or a control character: such a
// response would fail after its handler ran. So tags are sent percent-encoded, and a response whose
// own headers cannot be sent is never stored (every later hit would fail the same way).
import { validateHeaderName, validateHeaderValue } from 'node:http'
import type { ResponseHeaders } from './entry.js'

// Visible ASCII but `%` (the escape itself) stays as written: `users`, `user:1`, `a/b` read the same.
const PLAIN = /^[\x21-\x24\x26-\x7e]*$/
const ESCAPED = /[^\x21-\x24\x26-\x7e]/gu

/**
 * A tag as it appears in Surrogate-Key: UTF-8 percent-encoded outside visible ASCII (space and `%`
 * included, so one tag is one space-separated key). A CDN purge names the tag in this form.
 */
export function surrogateKeyOf (tag: string): string {
  return PLAIN.test(tag) ? tag : tag.replace(ESCAPED, percentEncode)
}

// Through Buffer, not encodeURIComponent: a lone surrogate becomes U+FFFD's bytes instead of a throw.
function percentEncode (char: string): string {
  let out = ''
  for (const byte of Buffer.from(char, 'utf8')) out += '%' + (byte < 16 ? '0' : '') + byte.toString(16).toUpperCase()
  return out
}

/** The Surrogate-Key header of these tags. */
export function surrogateKeyHeader (tags: readonly string[]): string {
  let header = ''
  for (const tag of tags) header += (header === '' ? '' : ' ') + surrogateKeyOf(tag)
  return header
}

/** The name of the first header Node would refuse to send, or undefined when all can be sent. */
export function unsendableHeader (headers: ResponseHeaders): string | undefined {
  for (const name in headers) {
    const value = headers[name]
    if (value === undefined) continue
    try {
      validateHeaderName(name)
      if (Array.isArray(value)) for (const item of value) validateHeaderValue(name, String(item))
      else validateHeaderValue(name, String(value))
    } catch {
      return name
    }
  }
  return undefined
}
