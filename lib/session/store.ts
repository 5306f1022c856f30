// The store @fastify/session talks to (get/set/destroy, plus touch). It owns the session rules:
// TTL, idle timeout, absolute lifetime, the payload schema, and the concurrency rule below.
//
// Concurrency rule: the payload is stored one field per hash entry, and a save writes only the fields
// whose JSON differs from what this request loaded (and deletes only the fields it removed). Two
// concurrent requests that change different fields therefore both keep their change; two that change
// the same field: the last write wins. A save never brings back a session that was destroyed or
// revoked while the request ran. A save with nothing changed is a touch: expiry and last-seen only.
import { LRUCache } from 'lru-cache'
import type { TSchema } from 'typebox'
import { Compile, type Validator } from 'typebox/compile'
import { SessionDataError, SessionUnavailableError } from './errors.js'
import { DATA_PREFIX, META, sessionHandle } from './keys.js'
import type { SessionBackend, SessionMeta, SessionStats, StoredSession, SessionWrite } from './types.js'

export interface SessionLogger {
  warn: (obj: object, msg: string) => void
  info: (obj: object, msg: string) => void
  debug: (obj: object, msg: string) => void
}

export interface SessionStoreOptions {
  backend: SessionBackend
  /** Session lifetime when the cookie sets no max age (SESSION_TTL). */
  ttl: number
  /** A session unused this long ends (SESSION_IDLE_TIMEOUT). */
  idleTimeout: number
  /** A session ends this long after it was created, however active (SESSION_ABSOLUTE_TIMEOUT). */
  absoluteTimeout: number
  /** TypeBox schema of the payload (cookie excluded); a stored payload failing it starts a fresh session. */
  schema?: TSchema
  /** Payload field holding the user id the per-user index uses. Default 'userId'. */
  userKey?: string
  /** Longest a backend operation may take before the request gets a 503. Default 1000 ms. */
  timeout?: number
  /** Retry-After seconds on a 503. Default 5. */
  retryAfter?: number
  logger?: SessionLogger
  now?: () => number
}

/** The part of @fastify/session's Session object the store reads. */
export interface SessionLike {
  cookie?: { originalMaxAge?: number | null, toJSON?: () => Record<string, unknown> } | Record<string, unknown>
  [field: string]: unknown
}

type Callback = (err?: unknown) => void
type GetCallback = (err: unknown, session?: SessionLike | null) => void

/** What a request loaded: the baseline its save is compared with. */
interface Loaded { fields: Record<string, string>, meta: SessionMeta }

export interface ClientInfo { ip?: string | undefined, userAgent?: string | undefined }

const ACTIVE_REFRESH_MS = 5_000
const noopLogger: SessionLogger = { warn: () => {}, info: () => {}, debug: () => {} }

export class SessionStore {
  readonly backend: SessionBackend
  readonly #options: Required<Omit<SessionStoreOptions, 'schema' | 'backend'>>
  readonly #validator: Validator | undefined
  readonly #loaded = new WeakMap<object, Loaded>()
  /** Set only while get()'s callback runs: the hand-off to adopt() (see the plugin). */
  #pending: { sessionId: string, loaded: Loaded } | undefined
  /** IP and user agent of the request that created a session id, kept until the first save. */
  readonly #clients = new LRUCache<string, ClientInfo>({ max: 10_000, ttl: 300_000 })
  readonly #stats: SessionStats = { loads: 0, saves: 0, touches: 0, destroys: 0, invalid: 0, errors: 0, active: null }
  #activeAt = 0

  constructor (options: SessionStoreOptions) {
    this.backend = options.backend
    this.#options = {
      ttl: options.ttl,
      idleTimeout: options.idleTimeout,
      absoluteTimeout: options.absoluteTimeout,
      userKey: options.userKey ?? 'userId',
      timeout: options.timeout ?? 1_000,
      retryAfter: options.retryAfter ?? 5,
      logger: options.logger ?? noopLogger,
      now: options.now ?? Date.now
    }
    this.#validator = options.schema === undefined ? undefined : Compile(options.schema)
  }

  get userKey (): string { return this.#options.userKey }

  get (sessionId: string, callback: GetCallback): void {
    this.#load(sessionId).then((result) => {
      if (result === undefined) {
        callback(null, null)
        return
      }
      this.#pending = { sessionId, loaded: result.loaded }
      try {
        callback(null, result.session)
      } finally {
        this.#pending = undefined
      }
    }, (err: unknown) => callback(err))
  }

  set (sessionId: string, session: SessionLike, callback: Callback): void {
    this.#save(sessionId, session).then(() => callback(), callback)
  }

  /** express-session's optional method: a save whose data did not change is a touch anyway. */
  touch (sessionId: string, session: SessionLike, callback: Callback): void {
    this.set(sessionId, session, callback)
  }

  destroy (sessionId: string, callback: Callback): void {
    this.guarded(this.backend.destroy(sessionHandle(sessionId))).then(() => {
      this.#stats.destroys++
      callback()
    }, callback)
  }

  /**
   * Links a loaded session object to what was loaded, so its save writes only what changed.
   * @fastify/session builds its Session from get()'s result synchronously inside the callback, so the
   * plugin calls this from the session hook's callback. Without it a save replaces the whole payload.
   * Returns true when `session` was restored from the store.
   */
  adopt (session: { sessionId: string } & object): boolean {
    if (this.#pending === undefined || this.#pending.sessionId !== session.sessionId) return false
    this.#loaded.set(session, this.#pending.loaded)
    return true
  }

  /** Remembers who created a session id (called from the id generator) for the session list. */
  noteClient (sessionId: string, client: ClientInfo): void {
    this.#clients.set(sessionId, client)
  }

  /** Counters for metrics; `active` is refreshed in the background at most every 5 s, never awaited. */
  stats (): SessionStats {
    const now = this.#options.now()
    if (now - this.#activeAt > ACTIVE_REFRESH_MS) {
      this.#activeAt = now
      this.guarded(this.backend.countAll(now)).then((n) => { this.#stats.active = n }, () => {})
    }
    return { ...this.#stats }
  }

  /** Runs a backend call within the time budget; any failure becomes SessionUnavailableError (503). */
  async guarded<T> (operation: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined
    const budget = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.#options.timeout} ms`)), this.#options.timeout)
    })
    try {
      return await Promise.race([operation, budget])
    } catch (err) {
      this.#stats.errors++
      operation.catch(() => {}) // a late failure after the budget must not become an unhandled rejection
      this.#options.logger.debug({ err: { message: (err as Error).message } }, 'session backend failed')
      throw new SessionUnavailableError(this.#options.retryAfter, { cause: err })
    } finally {
      clearTimeout(timer)
    }
  }

  async #load (sessionId: string): Promise<{ session: SessionLike, loaded: Loaded } | undefined> {
    const handle = sessionHandle(sessionId)
    const stored = await this.guarded(this.backend.load(handle))
    this.#stats.loads++
    if (stored === undefined) return undefined
    const now = this.#options.now()
    // Redis expiry enforces both timeouts already; checking again keeps a clock skew or a hand-set
    // TTL from stretching them.
    if (now >= stored.meta.absoluteAt || now - stored.meta.seenAt >= this.#options.idleTimeout) {
      await this.#discard(handle)
      return undefined
    }
    const payload = this.#parse(stored)
    if (payload === undefined) {
      this.#stats.invalid++
      this.#options.logger.info({ userKnown: stored.meta.userId !== undefined }, 'stored session data does not match the session schema: starting a fresh session')
      await this.#discard(handle)
      return undefined
    }
    const cookie = parseCookie(stored.meta.cookie)
    return { session: { ...payload, cookie }, loaded: { fields: stored.fields, meta: stored.meta } }
  }

  #parse (stored: StoredSession): Record<string, unknown> | undefined {
    const payload: Record<string, unknown> = {}
    try {
      for (const [field, json] of Object.entries(stored.fields)) payload[field] = JSON.parse(json)
    } catch {
      return undefined
    }
    if (this.#validator !== undefined && !this.#validator.Check(payload)) return undefined
    return payload
  }

  async #discard (handle: string): Promise<void> {
    await this.guarded(this.backend.destroy(handle)).catch(() => {})
  }

  async #save (sessionId: string, session: SessionLike): Promise<void> {
    const now = this.#options.now()
    const handle = sessionHandle(sessionId)
    const fields = serialisePayload(session)
    if (this.#validator !== undefined) {
      const payload = Object.fromEntries(Object.entries(fields).map(([k, json]) => [k, JSON.parse(json)]))
      if (!this.#validator.Check(payload)) {
        throw new SessionDataError(this.#validator.Errors(payload).slice(0, 5).map((e) => `${e.instancePath || '/'} ${e.message}`))
      }
    }
    const userValue = session[this.#options.userKey]
    const userId = typeof userValue === 'string' || typeof userValue === 'number' ? String(userValue) : undefined
    const cookie = staticCookie(session.cookie)
    const maxAge = cookieMaxAge(session.cookie) ?? this.#options.ttl
    const loaded = this.#loaded.get(session)
    const createdAt = loaded?.meta.createdAt ?? now
    const absoluteAt = loaded?.meta.absoluteAt ?? now + this.#options.absoluteTimeout
    const ttlMs = Math.floor(Math.min(maxAge, this.#options.idleTimeout, absoluteAt - now))
    if (ttlMs < 1) {
      await this.guarded(this.backend.destroy(handle))
      return
    }

    let write: SessionWrite
    let touch = false
    if (loaded !== undefined) {
      const set: Record<string, string> = { [META.seen]: String(now) }
      const del: string[] = []
      for (const [field, json] of Object.entries(fields)) if (loaded.fields[field] !== json) set[DATA_PREFIX + field] = json
      for (const field of Object.keys(loaded.fields)) if (!(field in fields)) del.push(DATA_PREFIX + field)
      if (cookie !== loaded.meta.cookie) set[META.cookie] = cookie
      if (userId !== loaded.meta.userId) {
        if (userId === undefined) del.push(META.user)
        else set[META.user] = userId
      }
      touch = Object.keys(set).length === 1 && del.length === 0
      write = { mode: 'update', now, ttlMs, set, setIfAbsent: {}, del, userId, previousUserId: loaded.meta.userId }
    } else {
      const client = this.#clients.get(sessionId)
      this.#clients.delete(sessionId)
      const set: Record<string, string> = { [META.seen]: String(now), [META.cookie]: cookie }
      for (const [field, json] of Object.entries(fields)) set[DATA_PREFIX + field] = json
      if (userId !== undefined) set[META.user] = userId
      if (client?.ip !== undefined) set[META.ip] = client.ip
      if (client?.userAgent !== undefined) set[META.userAgent] = client.userAgent.slice(0, 512)
      write = {
        mode: 'replace',
        now,
        ttlMs,
        set,
        setIfAbsent: { [META.created]: String(now), [META.absolute]: String(absoluteAt) },
        del: userId === undefined ? [META.user] : [],
        userId,
        previousUserId: undefined
      }
    }
    const applied = await this.guarded(this.backend.write(handle, write))
    if (touch) this.#stats.touches++
    else this.#stats.saves++
    if (applied === 0) return // destroyed or revoked meanwhile: it stays gone
    this.#loaded.set(session, {
      fields,
      meta: {
        createdAt,
        seenAt: now,
        absoluteAt,
        expiresAt: now + applied,
        userId,
        ip: loaded?.meta.ip,
        userAgent: loaded?.meta.userAgent,
        cookie
      }
    })
  }
}

/** One JSON string per payload field; `cookie` is the session's own, undefined fields are absent. */
function serialisePayload (session: SessionLike): Record<string, string> {
  const fields: Record<string, string> = {}
  for (const [field, value] of Object.entries(session)) {
    if (field === 'cookie' || value === undefined || typeof value === 'function') continue
    fields[field] = JSON.stringify(value)
  }
  return fields
}

function cookieJson (cookie: SessionLike['cookie']): Record<string, unknown> {
  if (cookie === undefined || cookie === null) return {}
  return typeof cookie.toJSON === 'function' ? (cookie.toJSON as () => Record<string, unknown>)() : { ...cookie }
}

/** The cookie options without their expiry, which moves on every request and is not worth a write. */
function staticCookie (cookie: SessionLike['cookie']): string {
  const { expires: _expires, originalExpires: _originalExpires, ...rest } = cookieJson(cookie)
  return JSON.stringify(rest)
}

function cookieMaxAge (cookie: SessionLike['cookie']): number | undefined {
  const value = cookieJson(cookie)['originalMaxAge']
  return typeof value === 'number' && value > 0 ? value : undefined
}

/** Returned without an expiry, so @fastify/session restarts it from originalMaxAge (a rolling cookie). */
function parseCookie (json: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(json)
    return parsed !== null && typeof parsed === 'object' ? parsed as Record<string, unknown> : {}
  } catch {
    return {}
  }
}
