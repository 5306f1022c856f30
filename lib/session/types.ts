// The contract between the session store (what @fastify/session talks to) and where sessions live.
// Two backends implement it: Redis (redis-backend.ts) and in-process (memory-backend.ts).

/** The part of @fastify/session's Session object the store reads: its cookie and the app's fields. */
export interface SessionLike {
  cookie?: { originalMaxAge?: number | null, toJSON?: () => Record<string, unknown> } | Record<string, unknown>
  [field: string]: unknown
}

/** Metadata kept next to each session's data; the index API shows part of it. */
export interface SessionMeta {
  createdAt: number
  seenAt: number
  /** The absolute deadline: createdAt + the absolute timeout. */
  absoluteAt: number
  /** When the session ends unless it is used again (also its score in the indexes). */
  expiresAt: number
  userId: string | undefined
  ip: string | undefined
  userAgent: string | undefined
  /** JSON of the cookie's per-session lifetime: `{ maxAge }`, `{ expires }` or `{}` (flags come from config). */
  cookie: string
}

/** A session as stored: one JSON string per payload field, so fields can be written independently. */
export interface StoredSession {
  fields: Record<string, string>
  /** As read, before a refresh the load did (see refreshedTtl). */
  meta: SessionMeta
  /** Set when the load also refreshed the session (it was due): the TTL applied from LoadRefresh.now. */
  refreshedTtl?: number
}

/** What a load needs to refresh a due session in the same call (backends that cannot, ignore it). */
export interface LoadRefresh {
  now: number
  /** The refresh cadence: due when now - seenAt >= every. */
  every: number
  idleTimeout: number
  /** SESSION_TTL: caps a stored max age. */
  ttl: number
  /** SESSION_MAX_LIFETIME: caps a chosen max age (remember-me), which is also that session's idle timeout. */
  maxLifetime: number
}

export interface SessionWrite {
  /**
   * replace: the stored payload becomes exactly `set` (fields not in it are dropped), creating the
   * session when needed. update: only `set` and `del` are applied, and nothing is written when the
   * session no longer exists (revoked or expired meanwhile), so a late write cannot bring it back.
   */
  mode: 'replace' | 'update'
  now: number
  ttlMs: number
  /** Hash fields (d:… and m:…) to write. */
  set: Record<string, string>
  /** Written only when absent (creation time and absolute deadline survive a replace). */
  setIfAbsent: Record<string, string>
  del: string[]
  /** Index the session under this user. */
  userId: string | undefined
  /** The user the session was indexed under before, when it changed. */
  previousUserId: string | undefined
  /** The write ends the session sooner than it was due to end (a shorter lifetime): the expiry ledger must follow. */
  shortened?: boolean
}

/** `created`: the write created the session (it did not exist before): the created event's source. */
export interface WriteResult { applied: number, userSessions?: number | undefined, created?: boolean }

/** `deleted`: this call removed the session (only one of two concurrent calls does); `userId`: its user. */
export interface DestroyResult { deleted: boolean, userId: string | undefined }

/** A session whose expiry this instance claimed (see claimExpired). */
export interface ExpiredSession { handle: string, userId: string | undefined }

export interface IndexedSession {
  handle: string
  meta: SessionMeta
}

export interface SessionBackend {
  readonly kind: 'redis' | 'memory'
  /** With `refresh`, a backend may refresh a due session in the same call (and say so in refreshedTtl). */
  load: (handle: string, refresh?: LoadRefresh) => Promise<StoredSession | undefined>
  /**
   * `applied`: the TTL in ms, or 0 when nothing was written (update of a session that is gone).
   * `userSessions`: entries in the user's index after the write, when the write indexed a user.
   */
  write: (handle: string, write: SessionWrite) => Promise<WriteResult>
  /** Deletes the session (only when it belongs to `owner`, if given) and its index entries. */
  destroy: (handle: string, owner?: string) => Promise<DestroyResult>
  /** Live sessions of a user; index entries whose session is gone are removed on the way. */
  list: (userId: string, now: number) => Promise<IndexedSession[]>
  count: (userId: string, now: number) => Promise<number>
  countAll: (now: number) => Promise<number>
  /** Handles of every live session (the total index): for the connect-style all/ids/clear. */
  handles: (now: number) => Promise<string[]>
  /**
   * Sessions that ended by expiry and that no instance has reported yet, each claimed for `leaseMs`
   * (at most `limit` per index bucket): another instance's call does not return them while the claim
   * holds. ackExpired() ends the claim once reported; an unacknowledged one is returned again after
   * the lease (at-least-once).
   */
  claimExpired: (now: number, leaseMs: number, limit: number) => Promise<ExpiredSession[]>
  ackExpired: (sessions: ExpiredSession[]) => Promise<void>
}

export interface SessionStats {
  /** Sessions read from the backend (found or not). */
  loads: number
  /** Writes of changed data (including new sessions). */
  saves: number
  /** Expiry refreshes of sessions whose data did not change. */
  touches: number
  destroys: number
  /** Stored payloads discarded because they failed the schema or could not be parsed. */
  invalid: number
  /** Backend failures (each one answered 503 where a request was waiting). */
  errors: number
  /** Store calls refused because the store was unavailable (the 503s); same count as errors, named for alerts. */
  unavailable: number
  /** Sessions revoked because their user went past SESSION_MAX_PER_USER. */
  capped: number
  /** Sessions moved from the store used before the switch (SESSION_LEGACY_PREFIX). */
  migrated: number
  /**
   * Stored sessions whose encrypted payload did not decrypt (altered, moved from another session, or
   * sealed with a key no longer configured): each read as no session.
   */
  decryptionFailures: number
  /** Stored sessions with a compressed field that did not decompress: each read as no session. */
  decompressionFailures: number
  /** Sessions alive in the backend at the last count (refreshed in the background), or null if unknown. */
  active: number | null
  /**
   * Session ids generated for requests still being answered, whose creator (address, user agent) is
   * kept until the session is saved or the response is sent.
   */
  pending: number
}
