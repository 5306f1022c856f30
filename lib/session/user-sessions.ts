// The per-user session index behind `app.sessions`: list a user's sessions, revoke one, revoke all
// (optionally but the current one), count per user and in total. Sessions are named by their public
// id (a hash of the session id), which can be shown to the user and sent back to revoke: it cannot be
// used as a cookie.
import { sessionHandle } from './keys.js'
import type { SessionStore } from './store.js'
import type { SessionStats } from './types.js'
import type { SessionEventHandler, SessionEventName, SessionEventStats } from './events.js'

export interface SessionInfo {
  /** Public id: sessionIdOf(request.session.sessionId) gives the current one. */
  id: string
  userId: string
  /** Epoch milliseconds. */
  createdAt: number
  lastSeenAt: number
  expiresAt: number
  /** Of the request that created the session (usually the sign-in). */
  ip: string | undefined
  userAgent: string | undefined
  /** true for the session given as `current`. */
  current: boolean
}

export class UserSessions {
  readonly #store: SessionStore
  readonly #now: () => number

  constructor (store: SessionStore, options: { now?: () => number } = {}) {
    this.#store = store
    this.#now = options.now ?? Date.now
  }

  /** The public id of a session id (request.session.sessionId). */
  idOf (sessionId: string): string {
    return sessionHandle(sessionId)
  }

  /** The user's live sessions, most recently seen first. `current` is a public id (see idOf). */
  async list (userId: string, options: { current?: string } = {}): Promise<SessionInfo[]> {
    const entries = await this.#store.guarded(this.#store.backend.list(userId, this.#now()))
    return entries
      .map(({ handle, meta }) => ({
        id: handle,
        userId,
        createdAt: meta.createdAt,
        lastSeenAt: meta.seenAt,
        expiresAt: meta.expiresAt,
        ip: meta.ip,
        userAgent: meta.userAgent,
        current: handle === options.current
      }))
      .sort((a, b) => b.lastSeenAt - a.lastSeenAt)
  }

  /**
   * Calls `handler` for each lifecycle event this instance raises: created, refreshed, revoked (each
   * on the instance whose request or call did it) and expired (on the one instance whose sweep claimed
   * it, or whose request found it past its deadline first). See the README for reasons and delays.
   * Handlers run after the request's work, never inside it; their errors are logged and counted.
   */
  on<E extends SessionEventName> (event: E, handler: SessionEventHandler<E>): this {
    this.#store.events.on(event, handler)
    return this
  }

  off<E extends SessionEventName> (event: E, handler: SessionEventHandler<E>): this {
    this.#store.events.off(event, handler)
    return this
  }

  /** Ends one session of this user; false when it is not theirs or already gone. */
  async revoke (userId: string, id: string): Promise<boolean> {
    const { deleted } = await this.#store.guarded(this.#store.backend.destroy(id, userId))
    if (deleted) this.#store.events.emit('revoked', id, userId, 'revoked')
    return deleted
  }

  /** Ends every session of the user, except the one with public id `except`; returns how many ended. */
  async revokeAll (userId: string, options: { except?: string } = {}): Promise<number> {
    const sessions = await this.#store.guarded(this.#store.backend.list(userId, this.#now()))
    const ended = await Promise.all(sessions
      .filter(({ handle }) => handle !== options.except)
      .map(async ({ handle }) => {
        const { deleted } = await this.#store.guarded(this.#store.backend.destroy(handle, userId))
        if (deleted) this.#store.events.emit('revoked', handle, userId, 'revoked')
        return deleted
      }))
    return ended.filter(Boolean).length
  }

  async count (userId: string): Promise<number> {
    return await this.#store.guarded(this.#store.backend.count(userId, this.#now()))
  }

  async countAll (): Promise<number> {
    return await this.#store.guarded(this.#store.backend.countAll(this.#now()))
  }

  /** Counters for the metrics plugin; synchronous, `active` as last counted in the background. */
  stats (): SessionStats & SessionEventStats {
    return { ...this.#store.stats(), ...this.#store.events.stats() }
  }
}
