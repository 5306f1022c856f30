// The store a user would write for @fastify/session on ioredis (connect-redis 9+ no longer takes
// ioredis): JSON under `sess:<id>`, SET EX from the cookie's max age, DEL on destroy. Nothing more.
import type { Session } from 'fastify'
import type { Redis } from 'ioredis'

type Callback = (err?: unknown) => void
type SessionCallback = (err: unknown, session?: Session | null) => void

export class NaiveSessionStore {
  readonly #client: Redis
  readonly #ttlS: number

  constructor (client: Redis, ttlS = 7 * 24 * 3600) {
    this.#client = client
    this.#ttlS = ttlS
  }

  set (sessionId: string, session: Session, callback: Callback): void {
    const maxAge = session.cookie.originalMaxAge
    const ttl = typeof maxAge === 'number' ? Math.max(1, Math.ceil(maxAge / 1000)) : this.#ttlS
    this.#client.set(`sess:${sessionId}`, JSON.stringify(session), 'EX', ttl).then(() => callback(), callback)
  }

  get (sessionId: string, callback: SessionCallback): void {
    this.#client.get(`sess:${sessionId}`).then((raw) => callback(null, raw === null ? null : JSON.parse(raw) as Session), callback)
  }

  destroy (sessionId: string, callback: Callback): void {
    this.#client.del(`sess:${sessionId}`).then(() => callback(), callback)
  }
}
