// Sessions an app wrote before it switched to the suite: connect-redis (the store behind most
// express-session and @fastify/session apps) keeps each session as one JSON string under
// `<prefix><session id>` (its default prefix is `sess:`). With SESSION_LEGACY_PREFIX set, the store
// reads such a session when it finds none of its own, writes it in its own format and deletes the old
// key (lib/session/store.ts), so a signed-in user stays signed in across the switch.
//
// The old key is read through the suite's client, so REDIS_KEY_PREFIX (ioredis keyPrefix) comes in
// front of SESSION_LEGACY_PREFIX, exactly as it did for a connect-redis client with the same keyPrefix.
import type { RedisClient } from './redis-backend.js'
import type { SessionLike } from './types.js'

/** What a legacy store holds for one session: its payload fields and the express-session cookie. */
export type LegacySession = SessionLike

/** Where the store looks for a session it does not have yet. */
export interface LegacySessionSource {
  /** The session stored under this id, or undefined (absent, or not a session object). */
  read: (sessionId: string) => Promise<LegacySession | undefined>
  /** Deletes the old key (a session that cannot be moved). */
  remove: (sessionId: string) => Promise<void>
  /**
   * Deletes the old key, true only for the one caller that deleted it: of several requests that read
   * the same old session at once, that one moves it; the others read the moved session instead, so
   * none writes it again after the first has changed or destroyed it (a sign-out).
   */
  claim: (sessionId: string) => Promise<boolean>
  /** Puts a claimed session back when its move failed, so the user is not signed out by a Redis error. */
  restore: (sessionId: string, session: LegacySession) => Promise<void>
}

/**
 * Session ids that express-session (uid-safe) and @fastify/session generate are base64url. Anything
 * else is never looked up, so even a validly signed odd id cannot name a key outside the old prefix's
 * sessions (the suite's own keys under `sess:` all contain braces).
 */
const LEGACY_ID = /^[A-Za-z0-9_-]{1,128}$/

/** connect-redis' layout: a JSON string per session at `<prefix><id>` (its default serializer). */
export class ConnectRedisSessions implements LegacySessionSource {
  readonly #client: RedisClient
  readonly #prefix: string

  constructor (client: RedisClient, prefix: string) {
    this.#client = client
    this.#prefix = prefix
  }

  async read (sessionId: string): Promise<LegacySession | undefined> {
    if (!LEGACY_ID.test(sessionId)) return undefined
    const raw = await this.#client.get(this.#prefix + sessionId)
    if (raw === null) return undefined
    try {
      const parsed = JSON.parse(raw) as unknown
      return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed as LegacySession : undefined
    } catch {
      return undefined
    }
  }

  async remove (sessionId: string): Promise<void> {
    await this.claim(sessionId)
  }

  async claim (sessionId: string): Promise<boolean> {
    if (!LEGACY_ID.test(sessionId)) return false
    return await this.#client.del(this.#prefix + sessionId) === 1
  }

  async restore (sessionId: string, session: LegacySession): Promise<void> {
    if (!LEGACY_ID.test(sessionId)) return
    // A short life: long enough for the next request to move it again, never longer than a day.
    await this.#client.set(this.#prefix + sessionId, JSON.stringify(session), 'PX', 86_400_000, 'NX')
  }
}
