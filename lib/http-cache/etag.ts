// Strong ETags, computed once when a response is stored, and If-None-Match matching.
import { createHash } from 'node:crypto'

/** A strong validator over the exact bytes sent: equal bodies give equal ETags on every instance. */
export function computeEtag (body: string | Buffer): string {
  return `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`
}

// An entity tag is an optional W/ and a quoted string that may itself hold commas.
const ENTITY_TAG = /\*|(?:W\/)?"[^"]*"/g

/**
 * True when If-None-Match names this ETag (or is `*`): the client's copy is current and a 304 answers.
 * The comparison is weak, as RFC 9110 §13.1.2 requires for If-None-Match.
 */
export function matchesIfNoneMatch (header: string | readonly string[] | undefined, etag: string): boolean {
  if (header === undefined) return false
  const text = typeof header === 'string' ? header : header.join(',')
  const opaque = stripWeak(etag)
  for (const [candidate] of text.matchAll(ENTITY_TAG)) {
    if (candidate === '*' || stripWeak(candidate) === opaque) return true
  }
  return false
}

function stripWeak (tag: string): string {
  return tag.startsWith('W/') ? tag.slice(2) : tag
}
