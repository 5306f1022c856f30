// The cookie signer @fastify/session uses (its `secret` option takes any object with sign/unsign):
// HMAC-SHA256 as @fastify/cookie's Signer computes it, so cookies stay valid across the switch, with
// two differences that matter on a session read:
// - the keys are imported once (KeyObject), not re-encoded from the secret string on every HMAC;
// - the signature of a session id verified with the current secret is remembered, so a returning
//   cookie is checked against it without computing the HMAC again, and @fastify/session's sign() of
//   the same id when it rebuilds the session (once per restored request) costs nothing.
// Only signatures that verified are remembered (a forged cookie cannot fill the memory), the check is
// timing-safe either way, and the lookup is by session id, which a forger would have to know already.
import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto'

export interface Unsigned { valid: boolean, renew: boolean, value: string | null }

const PADDING = /=/g
const DEFAULT_MAX = 10_000
const EXPRESS_PREFIX = 's:'

export class SessionCookieSigner {
  readonly #keys: KeyObject[]
  /** Session id → its signature under the current secret, for ids whose cookie verified. */
  readonly #verified = new Map<string, string>()
  readonly #max: number

  /** Also accept express-session's `s:<id>.<sig>` (SESSION_LEGACY_PREFIX); signing never adds it. */
  readonly #acceptExpressPrefix: boolean

  constructor (secrets: readonly string[], max = DEFAULT_MAX, { acceptExpressPrefix = false }: { acceptExpressPrefix?: boolean } = {}) {
    if (secrets.length === 0) throw new TypeError('at least one secret is required')
    this.#keys = secrets.map((secret) => createSecretKey(Buffer.from(secret, 'utf8')))
    this.#max = max
    this.#acceptExpressPrefix = acceptExpressPrefix
  }

  sign (value: string): string {
    return `${value}.${this.#verified.get(value) ?? mac(this.#keys[0] as KeyObject, value)}`
  }

  unsign (signed: string): Unsigned {
    // express-session (cookie-signature) signs `<id>` and sends `s:<id>.<sig>`: the same HMAC as ours
    // over the same id, behind a marker. A prefixed cookie that verifies asks to be renewed.
    if (this.#acceptExpressPrefix && typeof signed === 'string' && signed.startsWith(EXPRESS_PREFIX)) {
      const unsigned = this.#verify(signed.slice(EXPRESS_PREFIX.length))
      return unsigned.valid ? { ...unsigned, renew: true } : unsigned
    }
    return this.#verify(signed)
  }

  #verify (signed: string): Unsigned {
    const dot = typeof signed === 'string' ? signed.lastIndexOf('.') : -1
    if (dot === -1 || dot === signed.length - 1) return { valid: false, renew: false, value: null }
    const value = signed.slice(0, dot)
    const actual = signed.slice(dot + 1)
    const known = this.#verified.get(value)
    if (known !== undefined && same(known, actual)) return { valid: true, renew: false, value }
    for (let i = 0; i < this.#keys.length; i++) {
      const expected = mac(this.#keys[i] as KeyObject, value)
      if (!same(expected, actual)) continue
      if (i === 0) this.#remember(value, expected)
      return { valid: true, renew: i !== 0, value }
    }
    return { valid: false, renew: false, value: null }
  }

  #remember (value: string, signature: string): void {
    if (this.#verified.size >= this.#max) {
      // Oldest first (a Map iterates in insertion order): a bounded memory, no LRU bookkeeping per hit.
      const oldest = this.#verified.keys().next().value
      if (oldest !== undefined) this.#verified.delete(oldest)
    }
    this.#verified.set(value, signature)
  }
}

function mac (key: KeyObject, value: string): string {
  return createHmac('sha256', key).update(value).digest('base64').replace(PADDING, '')
}

function same (expected: string, actual: string): boolean {
  if (expected.length !== actual.length) return false
  const a = Buffer.from(expected)
  const b = Buffer.from(actual) // may hold multi-byte characters: compare byte lengths too
  return a.length === b.length && timingSafeEqual(a, b)
}
