import { createHash, timingSafeEqual } from 'node:crypto'

/**
 * True when `authorization` is `Bearer <token>`. Both sides are hashed first so the comparison is
 * constant-time and its duration does not reveal the token's length.
 */
export function bearerTokenMatches (authorization: string | undefined, token: string): boolean {
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '')
  const given = match?.[1] ?? ''
  const equal = timingSafeEqual(sha256(given), sha256(token))
  return match !== null && equal
}

function sha256 (text: string): Buffer {
  return createHash('sha256').update(text).digest()
}
