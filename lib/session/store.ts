// The store @fastify/session talks to (get/set/destroy, plus touch). It owns the session rules:
// TTL, idle timeout, absolute lifetime, the payload schema, the per-user cap, and the rules below.
//
// Concurrency rule: the payload is stored one field per hash entry, and a save writes only the fields
// whose JSON differs from what this request loaded (and deletes only the fields it removed). Two
// concurrent requests that change different fields therefore both keep their change; two that change
// the same field: the last write wins. A save never brings back a session that was destroyed or
// revoked while the request ran.
//
// Refresh cadence: a read costs one command (the load). Expiry, last-seen and the indexes are
// refreshed only when the session is due (its last refresh is older than the cadence), so idle and
// absolute timeouts hold to within one cadence, and an unchanged session that is not due costs no
// write at all (and the plugin sends no Set-Cookie for it). The Redis backend refreshes a due session
// inside the load itself on a standalone server or Sentinel (refreshOf() says 'refreshed'); elsewhere
// (Cluster, process memory) the plugin refreshes it with a touch after the handler ('due').
//
// Cookie rule: only the per-session lifetime (max age, or an absolute expiry) is stored; SameSite,
// Domain, Secure, HttpOnly and Path always come from the current config, so tightened settings reach
// existing sessions at their next cookie, and a shorter SESSION_TTL caps old sessions too.
import { LRUCache } from 'lru-cache'
import type { TSchema } from 'typebox'
import { Compile, type Validator } from 'typebox/compile'
import { noteSessionWrite, sessionChannel, traceSession } from '../tracing/index.js'
import { DeadlineSweep, RequestBudget } from './deadline.js'
import { SessionDataError, SessionUnavailableError } from '../errors/index.js'
import { DATA_PREFIX, META, sessionHandle } from './keys.js'
import { cookieExpiresAt, cookieJson, cookieLifetime, parseLifetime, serialisePayload, type CookieLifetime } from './lifetime.js'
import type { SessionBackend, SessionLike, SessionMeta, SessionStats, StoredSession, SessionWrite } from './types.js'
import type { LegacySessionSource } from './legacy.js'
import { SessionEvents, type SessionEventReasons } from './events.js'
import { PayloadCodec, type PayloadCodecOptions } from './payload-codec.js'

export interface SessionLogger {
  warn: (obj: object, msg: string) => void
  info: (obj: object, msg: string) => void
  debug: (obj: object, msg: string) => void
}

export interface SessionStoreOptions {
  backend: SessionBackend
  /** Session lifetime when the cookie sets no max age (SESSION_TTL); also caps a stored max age. */
  ttl: number
  /** A session unused this long ends (SESSION_IDLE_TIMEOUT). */
  idleTimeout: number
  /** A session ends this long after it was created, however active (SESSION_ABSOLUTE_TIMEOUT). */
  absoluteTimeout: number
  /**
   * The longest lifetime a session may choose (SESSION_MAX_LIFETIME); longer ones are clamped to it.
   * A session chooses one by a cookie max age other than `ttl` when it is first saved (remember-me:
   * regenerate({ lifetime }), or @fastify/session's session.options({ maxAge })): that max age is then
   * its idle timeout too, and its absolute timeout is at least that long. Default: `ttl`.
   */
  maxLifetime?: number
  /** TypeBox schema of the payload (cookie excluded); a stored payload failing it starts a fresh session. */
  schema?: TSchema
  /** Payload field holding the user id the per-user index uses. Default 'userId'. */
  userKey?: string
  /** Live sessions kept per user (SESSION_MAX_PER_USER); past it the oldest are revoked at sign-in. Default 50. */
  maxPerUser?: number
  /**
   * How often an unchanged session's expiry, last-seen time and index entries are refreshed.
   * Default min(60 s, idleTimeout / 10): timeouts hold to within this.
   */
  refreshEvery?: number
  /**
   * The Redis client's commandTimeout (REDIS_COMMAND_TIMEOUT), which bounds each backend call (no
   * timer per call here); also one request's budget for all its store calls (withBudget). Default 1000 ms.
   */
  timeout?: number
  /**
   * What is left of REDIS_FAILOVER_WAIT while the connection is being re-established (0 otherwise):
   * a store call started then may wait that much longer than the request's budget. Default: always 0.
   */
  failoverWaitLeft?: () => number
  /** Retry-After seconds on a 503. Default 5. */
  retryAfter?: number
  logger?: SessionLogger
  now?: () => number
  /**
   * Sessions written before the switch (SESSION_LEGACY_PREFIX): read when the backend has none for
   * an id, then moved to the backend in the same load and deleted where they were (lib/session/legacy.ts).
   */
  legacy?: LegacySessionSource
  /**
   * Store the cookie exactly as given and hand it back as stored: what express-session and other
   * connect-style users expect (they rebuild the cookie, flags included, from what get() returns).
   * Default false, the suite's cookie rule above: only the lifetime, every flag from the current config.
   */
  keepCookie?: boolean
  /** Where lifecycle events go (app.sessions.on). Default: a fresh SessionEvents with the store's logger. */
  events?: SessionEvents
  /**
   * Payload fields at rest: compressed above a threshold and/or encrypted (AES-256-GCM; the first key
   * seals, every key opens). Any form is read whatever is set here. Default: stored as plain JSON.
   */
  codec?: PayloadCodecOptions
}

type Callback = (err?: unknown) => void
type GetCallback = (err: unknown, session?: SessionLike | null) => void

/** What a request loaded: the baseline its save is compared with. */
interface Loaded {
  fields: Record<string, string>
  meta: SessionMeta
  /** The load itself refreshed the session (its expiry moved): the cookie must go out again. */
  refreshed?: boolean
}

export interface ClientInfo { ip?: string | undefined, userAgent?: string | undefined }

const ACTIVE_REFRESH_MS = 5_000
const MAX_DEADLINES = 100_000
const MAX_MEMO = 50_000
const MAX_LIFETIMES = 1_000
/** What is kept of a creator's user agent (the session list shows it) and address. */
const MAX_USER_AGENT = 512
/** Pauses (ms) before each further look for a session another request is moving from the legacy store. */
const LEGACY_LOOKS = [10, 20, 40]
/** Sessions read or deleted at once by all() and clear(). */
const BULK_CHUNK = 100
const MAX_IP = 64
const noopLogger: SessionLogger = { warn: () => {}, info: () => {}, debug: () => {} }

/**
 * > 0 while @fastify/session's regenerate() runs: it calls the store's destroy() synchronously, and that
 * destroy is reported as 'regenerated' rather than 'logout'. Module-wide, which is sound because the
 * window is synchronous (no other code runs inside it).
 */
let regenerating = 0

/** Runs `fn` (a regenerate) so that the destroy it starts is reported as reason 'regenerated'. */
export function whileRegenerating<T> (fn: () => T): T {
  regenerating++
  try {
    return fn()
  } finally {
    regenerating--
  }
}

export class SessionStore {
  readonly backend: SessionBackend
  /** Lifecycle events this store raises (created, refreshed, revoked, and expired found by a load). */
  readonly events: SessionEvents
  readonly #options: Required<Omit<SessionStoreOptions, 'schema' | 'backend' | 'legacy' | 'keepCookie' | 'events' | 'codec'>>
  readonly #keepCookie: boolean
  readonly #legacy: LegacySessionSource | undefined
  readonly #validator: Validator | undefined
  readonly #loaded = new WeakMap<object, Loaded>()
  /** Set only while get()'s callback runs: the hand-off to adopt() (see the plugin). */
  #pending: { sessionId: string, loaded: Loaded } | undefined
  /**
   * IP and user agent of the request that created a session id, kept until its first save or, when it
   * never saves, until its response is sent (forgetClient); bounded per entry at the door. The LRU
   * bound and TTL only matter for requests that never reach their response (aborted).
   */
  readonly #clients = new LRUCache<string, ClientInfo>({ max: 10_000, ttl: 300_000 })
  readonly #stats: Omit<SessionStats, 'pending'> = { loads: 0, saves: 0, touches: 0, destroys: 0, invalid: 0, errors: 0, unavailable: 0, capped: 0, migrated: 0, decryptionFailures: 0, decompressionFailures: 0, active: null }
  #activeAt = 0
  readonly #codec: PayloadCodec
  #openFailureLogged = false
  /** true from the first failed backend call until the next one that succeeds: one warning per outage. */
  #down = false
  /** The request's budget while the plugin runs a save synchronously (see withBudget). */
  #budget: RequestBudget | undefined
  readonly #sweep: DeadlineSweep
  /** Budgets of requests under way, by the id of the session each loaded (see adopt). */
  readonly #budgets = new Map<string, RequestBudget>()
  /** Session id → handle, for ids that reached a load (their cookie verified). */
  readonly #handles = new Map<string, string>()
  readonly #lifetimes = new Map<string, Readonly<CookieLifetime>>()

  constructor (options: SessionStoreOptions) {
    this.backend = options.backend
    this.#options = {
      ttl: options.ttl,
      idleTimeout: options.idleTimeout,
      absoluteTimeout: options.absoluteTimeout,
      maxLifetime: Math.max(options.maxLifetime ?? options.ttl, options.ttl),
      userKey: options.userKey ?? 'userId',
      maxPerUser: options.maxPerUser ?? 50,
      refreshEvery: options.refreshEvery ?? Math.min(60_000, Math.floor(options.idleTimeout / 10)),
      timeout: options.timeout ?? 1_000,
      retryAfter: options.retryAfter ?? 5,
      logger: options.logger ?? noopLogger,
      now: options.now ?? Date.now,
      failoverWaitLeft: options.failoverWaitLeft ?? (() => 0)
    }
    this.#validator = options.schema === undefined ? undefined : Compile(options.schema)
    this.#legacy = options.legacy
    this.#keepCookie = options.keepCookie ?? false
    this.#codec = new PayloadCodec(options.codec)
    this.#sweep = new DeadlineSweep(this.#options.now)
    this.events = options.events ?? new SessionEvents({ logger: this.#options.logger, now: this.#options.now })
  }

  get userKey (): string { return this.#options.userKey }

  get (sessionId: string, callback: GetCallback): void {
    this.#deliver(sessionChannel.start.hasSubscribers ? traceSession('load', () => this.#load(sessionId)) : this.#load(sessionId), (result) => {
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
    }, callback)
  }

  set (sessionId: string, session: SessionLike, callback: Callback): void {
    this.#deliver(sessionChannel.start.hasSubscribers ? traceSession('save', () => this.#save(sessionId, session)) : this.#save(sessionId, session), () => { callback() }, callback)
  }

  /** express-session's optional method: extends an existing session only; a destroyed one stays gone. */
  touch (sessionId: string, session: SessionLike, callback: Callback): void {
    this.#deliver(sessionChannel.start.hasSubscribers ? traceSession('refresh', () => this.#touch(sessionId, session)) : this.#touch(sessionId, session), () => { callback() }, callback)
  }

  destroy (sessionId: string, callback: Callback): void {
    // A fresh id this process generated and never stored has nothing to destroy (regenerate() on a
    // new visitor): no round trip, so a sign-in costs one store call.
    if (this.#clients.has(sessionId)) {
      this.#stats.destroys++
      this.#deliver(Promise.resolve(), () => { callback() }, callback)
      return
    }
    // regenerate() and destroy() in a handler: bounded by the budget of the request that loaded it.
    const budget = this.#budget ?? this.#budgets.get(sessionId)
    if (this.#budgetSpent(budget)) {
      this.#deliver(this.guarded(Promise.reject(new Error('request time budget spent'))), () => {}, callback)
      return
    }
    const reason = regenerating > 0 ? 'regenerated' : 'logout'
    const handle = sessionHandle(sessionId)
    const destroyed = sessionChannel.start.hasSubscribers ? traceSession('destroy', () => this.backend.destroy(handle)) : this.backend.destroy(handle)
    this.#deliver(this.guarded(destroyed, budget), ({ deleted, userId }) => {
      this.#stats.destroys++
      if (deleted) this.events.emit('revoked', handle, userId, reason)
      callback()
    }, callback)
  }

  // express-session's optional Store methods (and connect-redis' ids). Sessions are stored under a
  // hash of their id (lib/session/keys.ts), so the ids these list are handles, the public identifiers
  // app.sessions uses: a listing never holds a usable cookie value.

  /** Every live session, each with `id`: its handle. */
  all (callback: (err: unknown, sessions?: Array<SessionLike & { id: string }> | null) => void): void {
    this.#deliver(this.#all(), (sessions) => { callback(null, sessions) }, callback)
  }

  /** Handles of every live session. */
  ids (callback: (err: unknown, ids?: string[] | null) => void): void {
    this.#deliver(this.guarded(this.backend.handles(this.#options.now())), (ids) => { callback(null, ids) }, callback)
  }

  /** How many sessions are live. */
  length (callback: (err: unknown, length?: number | null) => void): void {
    this.#deliver(this.guarded(this.backend.countAll(this.#options.now())), (n) => { callback(null, n) }, callback)
  }

  /** Deletes every session (and its index entries). */
  clear (callback?: Callback): void {
    this.#deliver(this.#clear(), () => { callback?.() }, (err) => { callback?.(err) })
  }

  async #all (): Promise<Array<SessionLike & { id: string }>> {
    const handles = await this.guarded(this.backend.handles(this.#options.now()))
    const sessions: Array<SessionLike & { id: string }> = []
    // In chunks: a large store must not put one command per session in flight at once.
    for (let i = 0; i < handles.length; i += BULK_CHUNK) {
      const chunk = handles.slice(i, i + BULK_CHUNK)
      const stored = await Promise.all(chunk.map((handle) => this.guarded(this.backend.load(handle))))
      stored.forEach((entry, j) => {
        const fields = entry === undefined ? undefined : this.#open(chunk[j] as string, entry.fields)
        const payload = fields === undefined ? undefined : this.#parse(fields)
        if (entry === undefined || payload === undefined) return
        const cookie = this.#keepCookie ? JSON.parse(entry.meta.cookie) as unknown : this.#cookieOf(this.#lifetimeOf(entry.meta.cookie))
        sessions.push({ id: chunk[j] as string, ...payload, cookie: cookie as SessionLike['cookie'] })
      })
    }
    return sessions
  }

  async #clear (): Promise<void> {
    const handles = await this.guarded(this.backend.handles(this.#options.now()))
    for (let i = 0; i < handles.length; i += BULK_CHUNK) {
      const chunk = handles.slice(i, i + BULK_CHUNK)
      const results = await Promise.all(chunk.map((handle) => this.guarded(this.backend.destroy(handle))))
      this.#stats.destroys += chunk.length
      results.forEach(({ deleted, userId }, i) => { if (deleted) this.events.emit('revoked', chunk[i] as string, userId, 'cleared') })
    }
  }

  /**
   * Hands an operation's outcome to @fastify/session's callback, which runs the rest of the response
   * (its onSend continues Fastify's hook chain from there). A throw from it, such as a header Node
   * refuses to send, goes back to it once as the error, as Fastify's own runner treats a throwing
   * hook: that request answers 500, and nothing escapes as an unhandled rejection.
   */
  #deliver<T> (work: Promise<T>, onValue: (value: T) => void, callback: (err: unknown) => void): void {
    work.then(onValue, callback).catch((err: unknown) => {
      try {
        callback(err)
      } catch (again) {
        this.#options.logger.warn({ err: again }, 'session callback failed twice: the response could not be sent')
      }
    })
  }

  /**
   * Links a loaded session object to what was loaded, so its save writes only what changed.
   * @fastify/session builds its Session from get()'s result synchronously inside the callback, so the
   * plugin calls this from the session hook's callback. Without it a save replaces the whole payload.
   * Returns true when `session` was restored from the store.
   */
  adopt (session: { sessionId: string } & object, budget?: RequestBudget): boolean {
    if (this.#pending === undefined || this.#pending.sessionId !== session.sessionId) return false
    this.#loaded.set(session, this.#pending.loaded)
    if (budget !== undefined) {
      // Read by destroy() (regenerate, sign-out) while the request runs; release() ends it. The bound
      // keeps requests that never reach release() (aborted) from accumulating.
      if (this.#budgets.size >= MAX_DEADLINES) this.#budgets.clear()
      this.#budgets.set(session.sessionId, budget)
    }
    return true
  }

  /** The request that loaded this session id has answered: its budget no longer applies. */
  release (sessionId: string): void {
    this.#budgets.delete(sessionId)
  }

  /**
   * true when a restored session's expiry should be extended now (its last refresh is older than the
   * cadence): the plugin then saves it (a touch) and sends the cookie again; otherwise neither.
   */
  isDue (session: object): boolean {
    const loaded = this.#loaded.get(session)
    return loaded !== undefined && this.#options.now() - loaded.meta.seenAt >= this.#options.refreshEvery
  }

  /**
   * For the plugin's hot path, one lookup: 'refreshed' when the load already extended the expiry (send
   * the cookie, nothing to write), 'due' when a touch must extend it now (isDue), else 'none'.
   */
  refreshOf (session: object): 'none' | 'due' | 'refreshed' {
    const loaded = this.#loaded.get(session)
    if (loaded === undefined) return 'none'
    if (loaded.refreshed === true) return 'refreshed'
    return this.#options.now() - loaded.meta.seenAt >= this.#options.refreshEvery ? 'due' : 'none'
  }

  /**
   * true when the payload of a restored session serialises exactly as it was loaded, i.e. a save would
   * write no data (the same per-field JSON the save compares). Cheaper than @fastify/session's
   * isModified() (a stable stringify and a sha256 of the whole session), and never says "unchanged"
   * when the save would write a field. Undefined for a session that was not restored.
   */
  isUnchanged (session: SessionLike): boolean | undefined {
    const loaded = this.#loaded.get(session)
    if (loaded === undefined) return undefined
    let count = 0
    for (const field in session) {
      const value = session[field]
      if (field === 'cookie' || value === undefined || typeof value === 'function') continue
      const stored = loaded.fields[field]
      if (stored === undefined || JSON.stringify(value) !== stored) return false
      count++
    }
    return Object.keys(loaded.fields).length === count // and no field removed
  }

  /**
   * Runs `fn` (which starts store calls synchronously, as @fastify/session's save does) under the
   * request's budget: one time budget for all the store calls of one request (lib/session/deadline.ts).
   * A call started with less than a full command timeout left is bounded by what is left, by one
   * shared sweep timer rather than a timer per call; a call started with nothing left fails at once.
   */
  withBudget<T> (budget: RequestBudget, fn: () => T): T {
    this.#budget = budget
    try {
      return fn()
    } finally {
      this.#budget = undefined
    }
  }

  /** Nothing left of the request's budget: fail before sending, so a 503 never hides a write that went through. */
  #budgetSpent (budget: RequestBudget | undefined): boolean {
    if (budget === undefined) return false
    const now = this.#options.now()
    return budget.deadline(now, this.#options.failoverWaitLeft()) <= now
  }

  /** Remembers who created a session id (called from the id generator) for the session list. */
  noteClient (sessionId: string, client: ClientInfo): void {
    const { ip, userAgent } = client
    this.#clients.set(sessionId, {
      ip: ip === undefined ? undefined : ip.slice(0, MAX_IP),
      userAgent: userAgent === undefined ? undefined : userAgent.slice(0, MAX_USER_AGENT)
    })
  }

  /** The request that generated this id has answered: a session it did not save keeps nothing here. */
  forgetClient (sessionId: string): void {
    this.#clients.delete(sessionId)
  }

  /** Counters for metrics; `active` is refreshed in the background at most every 5 s, never awaited. */
  stats (): SessionStats {
    const now = this.#options.now()
    if (now - this.#activeAt > ACTIVE_REFRESH_MS) {
      this.#activeAt = now
      this.guarded(this.backend.countAll(now)).then((n) => { this.#stats.active = n }, () => {})
    }
    return { ...this.#stats, pending: this.#clients.size }
  }

  /**
   * Awaits a backend call; any failure becomes SessionUnavailableError (503). The Redis client's
   * commandTimeout bounds the wait (no timer per call). Logs one warning when the store becomes
   * unavailable and one line when it answers again, never per request and never driver text.
   */
  async guarded<T> (operation: Promise<T>, budget?: RequestBudget): Promise<T> {
    let result: T
    const started = this.#options.now()
    try {
      result = await (budget === undefined ? operation : this.#sweep.bound(operation, budget.deadline(started, this.#options.failoverWaitLeft()), this.#options.timeout))
    } catch (err) {
      budget?.spend(this.#options.now() - started)
      this.#stats.errors++
      this.#stats.unavailable++
      if (!this.#down) {
        this.#down = true
        this.#options.logger.warn({}, 'session store unavailable: session routes answer 503 with Retry-After until it answers again')
      }
      this.#options.logger.debug({ err: { name: (err as Error).name } }, 'session backend call failed')
      throw new SessionUnavailableError(this.#options.retryAfter, { cause: err })
    }
    budget?.spend(this.#options.now() - started)
    if (this.#down) {
      this.#down = false
      this.#options.logger.info({}, 'session store available again')
    }
    return result
  }

  async #load (sessionId: string): Promise<{ session: SessionLike, loaded: Loaded } | undefined> {
    const handle = this.#handleOf(sessionId)
    const now = this.#options.now()
    const refresh = { now, every: this.#options.refreshEvery, idleTimeout: this.#options.idleTimeout, ttl: this.#options.ttl, maxLifetime: this.#options.maxLifetime }
    let stored = await this.guarded(this.backend.load(handle, refresh))
    this.#stats.loads++
    if (stored === undefined && this.#legacy !== undefined) {
      const moved = await this.#moveLegacy(sessionId, this.#legacy)
      if (moved !== undefined && moved !== 'claimed elsewhere') return moved
      // A concurrent request with the same cookie may have moved it between the two reads: without
      // this second look that request would start a fresh session and clear a valid cookie. When
      // another request claimed it, its write may be a moment behind: look a few times.
      for (let attempt = 0; ; attempt++) {
        stored = await this.guarded(this.backend.load(handle, refresh))
        if (stored !== undefined || moved !== 'claimed elsewhere' || attempt === LEGACY_LOOKS.length) break
        await new Promise((resolve) => setTimeout(resolve, LEGACY_LOOKS[attempt]))
      }
    }
    if (stored === undefined) return undefined
    const lifetime = this.#lifetimeOf(stored.meta.cookie)
    // Redis expiry enforces the timeouts already; checking again keeps a clock skew or a hand-set
    // TTL from stretching them, and a cookie past its own expiry is never handed out.
    const late = now >= stored.meta.absoluteAt
      ? 'absolute'
      : now - stored.meta.seenAt >= this.#idleOf(lifetime) ? 'idle' : lifetime.expires !== undefined && lifetime.expires <= now ? 'lifetime' : undefined
    if (late !== undefined) {
      await this.#discard(handle, 'expired', late)
      return undefined
    }
    const fields = this.#open(handle, stored.fields)
    if (fields === undefined) return undefined // altered or undecodable: no session (left to expire)
    const payload = this.#parse(fields)
    if (payload === undefined) {
      this.#stats.invalid++
      this.#options.logger.info({ userKnown: stored.meta.userId !== undefined }, 'stored session data does not match the session schema: starting a fresh session')
      await this.#discard(handle, 'revoked', 'invalid')
      return undefined
    }
    const session = payload // a fresh object of ours: the cookie goes in without a copy
    session['cookie'] = this.#keepCookie ? JSON.parse(stored.meta.cookie) as unknown : this.#cookieOf(lifetime)
    if (stored.refreshedTtl === undefined) return { session, loaded: { fields, meta: stored.meta } }
    this.#stats.touches++
    this.events.emit('refreshed', handle, stored.meta.userId, 'activity')
    return { session, loaded: { fields, meta: { ...stored.meta, seenAt: now, expiresAt: now + stored.refreshedTtl }, refreshed: true } }
  }

  /**
   * A session from before the switch: written in this store's format (a new session: its absolute
   * timeout counts from now, the old store kept no creation time), the old key deleted, and handed out
   * as a session the load refreshed, so the plugin sends the cookie again (signed as @fastify/session
   * signs, without express-session's `s:`). A payload failing the schema is dropped, as stored ones are.
   */
  async #moveLegacy (sessionId: string, legacy: LegacySessionSource): Promise<{ session: SessionLike, loaded: Loaded } | 'claimed elsewhere' | undefined> {
    const old = await this.guarded(legacy.read(sessionId))
    if (old === undefined) return undefined
    const { cookie, ...payload } = old
    const lifetime = cookieLifetime(cookie)
    const fresh = this.#parse(serialisePayload(payload))
    const now = this.#options.now()
    // An old cookie past its `expires` is over, max age or not (express-session sets expires from the max age).
    const expiresAt = cookieExpiresAt(cookie)
    if (fresh === undefined || (expiresAt !== undefined && expiresAt <= now)) {
      if (fresh === undefined) {
        this.#stats.invalid++
        this.#options.logger.info({}, 'a session from before the switch does not match the session schema: starting a fresh session')
      }
      await this.guarded(legacy.remove(sessionId)).catch(() => {})
      return undefined
    }
    // The lifetime alone, as every save stores it: the old cookie's flags give way to the current config.
    const moving: SessionLike = { ...fresh, cookie: lifetime.expires !== undefined ? { expires: lifetime.expires } : { originalMaxAge: lifetime.maxAge ?? null } }
    // Claimed before it is written: only the request that deleted the old key writes the moved session.
    if (!await this.guarded(legacy.claim(sessionId))) return 'claimed elsewhere'
    try {
      await this.#save(sessionId, moving, true)
    } catch (err) {
      await this.guarded(legacy.restore(sessionId, old)).catch(() => {})
      throw err
    }
    const loaded = this.#loaded.get(moving)
    if (loaded === undefined) return undefined // its lifetime was spent: nothing was written
    this.#stats.migrated++
    const session = { ...fresh, cookie: this.#cookieOf(this.#lifetimeOf(loaded.meta.cookie)) }
    return { session, loaded: { ...loaded, refreshed: true } }
  }

  /** sessionHandle() (a sha256) once per session id while it is in use; bounded, oldest dropped first. */
  #handleOf (sessionId: string): string {
    let handle = this.#handles.get(sessionId)
    if (handle === undefined) {
      handle = sessionHandle(sessionId)
      if (this.#handles.size >= MAX_MEMO) this.#handles.delete(this.#handles.keys().next().value as string)
      this.#handles.set(sessionId, handle)
    }
    return handle
  }

  /** parseLifetime() of the few distinct stored lifetimes ({"maxAge":…}), parsed once each. */
  #lifetimeOf (json: string): CookieLifetime {
    let lifetime = this.#lifetimes.get(json)
    if (lifetime === undefined) {
      lifetime = Object.freeze(parseLifetime(json))
      if (this.#lifetimes.size >= MAX_LIFETIMES) this.#lifetimes.clear()
      this.#lifetimes.set(json, lifetime)
    }
    return lifetime
  }

  /**
   * What @fastify/session gets as the stored cookie: the lifetime only, so every other flag comes
   * from the current cookie options. A stored max age longer than today's SESSION_TTL is capped.
   */
  #cookieOf (lifetime: CookieLifetime): Record<string, unknown> {
    // maxAge: undefined overrides the plugin's configured maxAge when @fastify/session spreads this over
    // its cookie options; without it the Cookie takes `originalMaxAge || maxAge` and a fixed expiry
    // silently becomes a rolling SESSION_TTL.
    if (lifetime.expires !== undefined) return { expires: new Date(lifetime.expires), originalMaxAge: null, maxAge: undefined }
    return { originalMaxAge: this.#maxAgeOf(lifetime) }
  }

  /** The max age a stored lifetime gives now: capped by SESSION_MAX_LIFETIME when chosen, else by SESSION_TTL. */
  #maxAgeOf (lifetime: CookieLifetime): number {
    if (lifetime.chosen === true && lifetime.maxAge !== undefined) return Math.min(lifetime.maxAge, this.#options.maxLifetime)
    return Math.min(lifetime.maxAge ?? this.#options.ttl, this.#options.ttl)
  }

  /** The idle timeout of a session: its chosen lifetime, else SESSION_IDLE_TIMEOUT. */
  #idleOf (lifetime: CookieLifetime): number {
    return lifetime.chosen === true ? this.#maxAgeOf(lifetime) : this.#options.idleTimeout
  }

  /**
   * The lifetime a save or touch stores. A max age other than the one the session was restored with
   * (or, for a new session, other than SESSION_TTL) was chosen by the app: remember-me. A restored one
   * stays as it was stored. Cookies kept as given (keepCookie) and moved legacy sessions never choose.
   */
  #savedLifetime (session: SessionLike, loaded: Loaded | undefined, legacy = false): CookieLifetime {
    const lifetime = cookieLifetime(session.cookie)
    if (lifetime.maxAge === undefined || this.#keepCookie) return lifetime
    if (loaded !== undefined) {
      const before = this.#lifetimeOf(loaded.meta.cookie)
      if (before.expires === undefined && lifetime.maxAge === this.#maxAgeOf(before)) {
        return before.chosen === true ? { maxAge: lifetime.maxAge, chosen: true } : lifetime
      }
    }
    if (legacy || lifetime.maxAge === this.#options.ttl) return lifetime
    const maxAge = Math.min(lifetime.maxAge, this.#options.maxLifetime)
    if (maxAge < lifetime.maxAge) {
      // Clamped: the cookie sent with this response says so too (@fastify/session's Cookie sets its expiry).
      (session.cookie as { maxAge?: number }).maxAge = maxAge
      this.#options.logger.debug({ maxLifetime: this.#options.maxLifetime }, 'a session lifetime above SESSION_MAX_LIFETIME was clamped to it')
    }
    return { maxAge, chosen: true }
  }

  /** The fields' JSON (the stored object itself when none is sealed), or undefined: counted, logged once. */
  #open (handle: string, stored: StoredSession['fields']): StoredSession['fields'] | undefined {
    const fields = this.#codec.open(handle, stored)
    if (typeof fields === 'object') return fields
    if (fields === 'decryption') this.#stats.decryptionFailures++
    else this.#stats.decompressionFailures++
    if (!this.#openFailureLogged) {
      this.#openFailureLogged = true
      this.#options.logger.warn({ failure: fields },
        `a stored session did not open (${fields} failed): read as no session. Altered in Redis, or sealed with a key missing from SESSION_ENCRYPTION_KEYS? Further ones are counted (session_${fields}_failures_total), not logged`)
    }
    return undefined
  }

  #parse (fields: StoredSession['fields']): Record<string, unknown> | undefined {
    const payload: Record<string, unknown> = {}
    try {
      for (const field in fields) payload[field] = JSON.parse(fields[field] as string)
    } catch {
      return undefined
    }
    if (this.#validator !== undefined && !this.#validator.Check(payload)) return undefined
    return payload
  }

  /** Deletes a session a load refused; the event goes out only when this call deleted it (one instance). */
  async #discard<E extends 'expired' | 'revoked'> (handle: string, event: E, reason: SessionEventReasons[E]): Promise<void> {
    const result = await this.guarded(this.backend.destroy(handle)).catch(() => undefined)
    if (result?.deleted === true) this.events.emit(event, handle, result.userId, reason)
  }

  /** A save or touch found the session's deadline passed: it ends here, reported as expired. */
  async #end (handle: string, absoluteAt: number, now: number): Promise<void> {
    const { deleted, userId } = await this.guarded(this.backend.destroy(handle))
    if (deleted) this.events.emit('expired', handle, userId, now >= absoluteAt ? 'absolute' : 'lifetime')
  }

  /** The TTL a write applies now, or < 1 when the session must end. */
  #ttl (lifetime: CookieLifetime, absoluteAt: number, now: number): number {
    const cookieLeft = lifetime.expires !== undefined ? lifetime.expires - now : this.#maxAgeOf(lifetime)
    return Math.floor(Math.min(cookieLeft, this.#idleOf(lifetime), absoluteAt - now))
  }

  async #touch (sessionId: string, session: SessionLike): Promise<void> {
    const now = this.#options.now()
    const handle = sessionHandle(sessionId)
    const loaded = this.#loaded.get(session)
    const lifetime = this.#savedLifetime(session, loaded)
    const ttlMs = this.#ttl(lifetime, loaded?.meta.absoluteAt ?? Infinity, now)
    if (ttlMs < 1) {
      await this.#end(handle, loaded?.meta.absoluteAt ?? Infinity, now)
      return
    }
    // Update mode: nothing is written when the session is gone (expired, destroyed, revoked), and the
    // absolute deadline stored with it still caps the TTL inside the write.
    const userId = loaded?.meta.userId
    const { applied } = await this.guarded(this.backend.write(handle, {
      mode: 'update', now, ttlMs, set: { [META.seen]: String(now) }, setIfAbsent: {}, del: [], userId, previousUserId: userId, shortened: loaded !== undefined && now + ttlMs < loaded.meta.expiresAt
    }))
    this.#stats.touches++
    if (applied > 0) this.events.emit('refreshed', handle, userId, 'activity')
    if (applied > 0 && loaded !== undefined) this.#loaded.set(session, { fields: loaded.fields, meta: { ...loaded.meta, seenAt: now, expiresAt: now + applied } })
  }

  async #save (sessionId: string, session: SessionLike, legacy = false): Promise<void> {
    const budget = this.#budget // read before the first await: set only while the plugin's call runs
    const now = this.#options.now()
    const handle = sessionHandle(sessionId)
    const fields = serialisePayload(session)
    const loaded = this.#loaded.get(session)
    // regenerate() stores the fresh, empty session before the handler fills it; the save at the end
    // of the request stores it anyway (and an empty one is never stored: saveUninitialized is off).
    if (loaded === undefined && this.#clients.has(sessionId) && Object.keys(fields).length === 0) return
    if (this.#validator !== undefined) {
      const payload = Object.fromEntries(Object.entries(fields).map(([k, json]) => [k, JSON.parse(json)]))
      if (!this.#validator.Check(payload)) {
        throw new SessionDataError(this.#validator.Errors(payload).slice(0, 5).map((e) => `${e.instancePath || '/'} ${e.message}`))
      }
    }
    const userValue = session[this.#options.userKey]
    const userId = typeof userValue === 'string' || typeof userValue === 'number' ? String(userValue) : undefined
    const lifetime = this.#savedLifetime(session, loaded, legacy)
    const cookie = JSON.stringify(this.#keepCookie ? cookieJson(session.cookie) : lifetime)
    const createdAt = loaded?.meta.createdAt ?? now
    // A chosen lifetime longer than SESSION_ABSOLUTE_TIMEOUT lengthens this session's absolute timeout to it.
    const absoluteAt = loaded?.meta.absoluteAt ?? now + Math.max(this.#options.absoluteTimeout, lifetime.chosen === true ? lifetime.maxAge ?? 0 : 0)
    const ttlMs = this.#ttl(lifetime, absoluteAt, now)
    if (ttlMs < 1) {
      await this.#end(handle, absoluteAt, now)
      return
    }

    let write: SessionWrite
    let touch = false
    if (loaded !== undefined) {
      const set: Record<string, string> = { [META.seen]: String(now) }
      const del: string[] = []
      for (const field in fields) if (loaded.fields[field] !== fields[field]) set[DATA_PREFIX + field] = this.#codec.seal(handle, field, fields[field] as string)
      for (const field in loaded.fields) if (!(field in fields)) del.push(DATA_PREFIX + field)
      if (cookie !== loaded.meta.cookie) set[META.cookie] = cookie
      if (userId !== loaded.meta.userId) {
        if (userId === undefined) del.push(META.user)
        else set[META.user] = userId
      }
      touch = Object.keys(set).length === 1 && del.length === 0
      write = { mode: 'update', now, ttlMs, set, setIfAbsent: {}, del, userId, previousUserId: loaded.meta.userId, shortened: now + ttlMs < loaded.meta.expiresAt }
    } else {
      const client = this.#clients.get(sessionId)
      this.#clients.delete(sessionId)
      const set: Record<string, string> = { [META.seen]: String(now), [META.cookie]: cookie }
      for (const field in fields) set[DATA_PREFIX + field] = this.#codec.seal(handle, field, fields[field] as string)
      if (userId !== undefined) set[META.user] = userId
      if (client?.ip !== undefined) set[META.ip] = client.ip
      if (client?.userAgent !== undefined) set[META.userAgent] = client.userAgent
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
    if (sessionChannel.start.hasSubscribers) noteSessionWrite(write.mode === 'replace' ? 'create' : touch ? 'refresh' : 'update')
    if (this.#budgetSpent(budget)) await this.guarded(Promise.reject(new Error('request time budget spent')))
    const { applied, userSessions, created } = await this.guarded(this.backend.write(handle, write), budget)
    if (touch) this.#stats.touches++
    else this.#stats.saves++
    if (applied === 0) return // destroyed or revoked meanwhile: it stays gone
    if (created === true) this.events.emit('created', handle, userId, legacy ? 'migrated' : 'new')
    else this.events.emit('refreshed', handle, userId, touch ? 'activity' : 'change')
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
    if (userId !== undefined && userSessions !== undefined && userSessions > this.#options.maxPerUser) {
      await this.#cap(userId, handle, now)
    }
  }

  /** Revokes the user's oldest sessions beyond SESSION_MAX_PER_USER (never `keep`, the one signing in). */
  async #cap (userId: string, keep: string, now: number): Promise<void> {
    const live = await this.guarded(this.backend.list(userId, now))
    const excess = live.length - this.#options.maxPerUser
    if (excess <= 0) return
    const oldest = live.filter((s) => s.handle !== keep).sort((a, b) => a.meta.createdAt - b.meta.createdAt).slice(0, excess)
    const results = await Promise.all(oldest.map(({ handle }) => this.guarded(this.backend.destroy(handle, userId))))
    results.forEach(({ deleted }, i) => { if (deleted) this.events.emit('revoked', (oldest[i] as { handle: string }).handle, userId, 'capped') })
    this.#stats.capped += oldest.length
    this.#options.logger.info({ revoked: oldest.length, max: this.#options.maxPerUser }, 'sessions over SESSION_MAX_PER_USER: the oldest were revoked')
  }
}
