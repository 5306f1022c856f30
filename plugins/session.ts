// Sessions: @fastify/cookie and @fastify/session with secure defaults, stored in Redis (or in process
// memory without Redis), plus `app.sessions`, the per-user index.
//
// Lifecycle (sessionPlugin; the route hooks are SessionHooks' arrows, built once at registration):
//   registers  @fastify/cookie (unless the app did); runs @fastify/session against a stand-in to take
//              its onRequest and onSend hooks (captureSessionHooks) and its decorators
//   decorates  request.session (a getter that throws off opted-in routes), app.sessions
//   onRoute    wireRoute, on routes with `config: { session: true }` only:
//     onRequest  loadSession (first): the budget, then @fastify/session's load; 503 when the store is down
//     preParsing spendBeforeBody (last): the time spent before the body comes off the request's budget
//     onSend     saveSession (first): skips the save of an unchanged session, else @fastify/session's
//     errorHandler  a store failure in the handler answers 503, else the route's or the app's handler
//   onReady    starts the expiry sweep; onClose stops it (the connection is the redis plugin's)
//
// Sessions load only on routes that opt in with `config: { session: true }`. @fastify/session would
// read the store in a global onRequest hook for every request carrying the cookie, so a Redis outage
// would fail the health routes and everything else too. Here its hooks are attached to the opted-in
// routes only: other routes never touch the store (and reading request.session there throws a clear
// FRS_SESSION_NOT_ENABLED error instead of returning nothing).
//
// Redis down: an opted-in route answers 503 with Retry-After and a plain JSON message, within
// REDIS_COMMAND_TIMEOUT, whether the failure is in loading, in the handler (regenerate, destroy) or
// in saving. Never a 500, never driver text, and one warning per outage (not an error per request).
// A session id is never logged.
//
// Cookies: the flags come from the current config on every Set-Cookie; the cookie is sent again only
// when the session's expiry was extended (a change, or the refresh cadence: see lib/session/store.ts),
// so most responses of a signed-in user carry no Set-Cookie and a private HTTP cache can store them.
import { randomBytes } from 'node:crypto'
import fp from 'fastify-plugin'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
// Keeps @fastify/session's declaration merging in this module's .d.ts, for apps that import this entry point alone.
export type {} from '@fastify/session'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import type { TSchema } from 'typebox'
import { parseDuration, secureCookies, suiteLogOptions, type Duration } from '../lib/config/index.js'
import { parseEncryptionKeys } from '../lib/codecs/index.js'
import { detectHashFieldExpiry } from '../lib/redis/index.js'
import { featureConnection, type RedisClient } from './redis.js'
import { DurationError, isSessionUnavailable, PluginConflictError, SessionNotEnabledError, SessionNotSetError, type SessionUnavailableError } from '../lib/errors/index.js'
import {
  ConnectRedisSessions, ExpirySweep, MemorySessionBackend, RedisSessionBackend, RequestBudget, SessionCookieSigner, SessionStore,
  UserSessions, whileRegenerating, type SessionLike
} from '../lib/session/index.js'

declare module '@fastify/session' {
  interface FastifySessionObject {
    /**
     * Regenerates the session (a new id) with a lifetime chosen for it: remember-me. The lifetime is
     * the cookie's max age and the session's idle timeout (its absolute timeout is at least as long),
     * clamped to SESSION_MAX_LIFETIME. `keep`: fields copied to the new session, as regenerate(fields).
     */
    regenerate(options: RegenerateOptions): Promise<void>
  }
}

export interface RegenerateOptions {
  /** Milliseconds or a string such as '30d'; at most SESSION_MAX_LIFETIME (a longer one is clamped). */
  lifetime: Duration
  /** Fields of the current session kept in the new one. */
  keep?: string[]
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Per-user session index: list, revoke one, revoke all (optionally but the current one), count, stats. */
    sessions: UserSessions
  }
  interface FastifyContextConfig {
    /** Load request.session on this route (and answer 503 when the session store is down). */
    session?: boolean
  }
}

export interface SessionPluginOptions {
  /** TypeBox schema of the session payload; a stored payload failing it starts a fresh session. */
  schema?: TSchema
  /** Payload field holding the user id for the per-user index. Default 'userId'. */
  userKey?: string
  /** Retry-After seconds of the 503 answered while the store is down. Default: reconnect backoff cap + 1 s. */
  retryAfter?: number
  /** An ioredis Redis or Cluster of the app's to store sessions on instead of the suite's connection; left open at close. */
  client?: RedisClient
}

type Done = (err?: unknown, payload?: unknown) => void
type RequestHook = (request: FastifyRequest, reply: FastifyReply, done: Done) => void
type SendHook = (request: FastifyRequest, reply: FastifyReply, payload: unknown, done: Done) => void

const kSession = Symbol('redis-suite.session')
const kEnabled = Symbol('redis-suite.sessionEnabled')
const kRestored = Symbol('redis-suite.sessionRestored')
const kBudget = Symbol('redis-suite.sessionBudget')
const kStartedAt = Symbol('redis-suite.sessionStartedAt')
/** Session ids generated for this request (a new visitor, regenerate()): their creator is forgotten once it answers. */
const kGenerated = Symbol('redis-suite.sessionIdsGenerated')
interface SessionCarrier {
  [kSession]?: unknown, [kEnabled]?: boolean, [kRestored]?: unknown, [kBudget]?: RequestBudget, [kStartedAt]?: number, [kGenerated]?: string[]
}

/**
 * The session this request loaded, or undefined on a route without `config: { session: true }`.
 * Never throws: it is for the suite's own per-request reads (rate-limit keys, private HTTP cache
 * keys), where the throwing `request.session` getter would cost an Error and a stack per request.
 */
export function loadedSession (request: FastifyRequest): { get: (key: string) => unknown } | undefined {
  const carrier = request as FastifyRequest & SessionCarrier
  if (carrier[kEnabled] !== true) return undefined
  const session = carrier[kSession] as { get?: (key: string) => unknown } | null | undefined
  return typeof session?.get === 'function' ? session as { get: (key: string) => unknown } : undefined
}

async function sessionPlugin (app: FastifyInstance, options: SessionPluginOptions): Promise<void> {
  // Two session plugins cannot share request.session (nor the cookie): the app's stays, or the suite's.
  if (app.hasPlugin('@fastify/session') || app.hasRequestDecorator('session')) {
    throw new PluginConflictError('@fastify/session is already registered and owns request.session: register the suite with { session: false } to keep it, or remove it to use the suite\'s sessions')
  }
  const config = app.config
  const log = app.log.child({ plugin: 'session' }, suiteLogOptions(app.config))
  const retryAfter = options.retryAfter ?? Math.ceil(config.REDIS_RETRY_MAX_DELAY / 1000) + 1
  const secure = secureCookies(config)
  const secrets = sessionSecrets(config, secure, log)
  const connection = featureConnection(app, options.client)
  const { store, legacy } = await openSessionStore(config, options, connection, retryAfter, log)
  if (!app.hasPlugin('@fastify/cookie')) await app.register(fastifyCookie)

  const cookieOptions = sessionCookieOptions(config, secure)
  const captured = await captureSessionHooks(app, {
    // Signs with the first, accepts any (rotation); @fastify/cookie's HMAC, with imported keys and
    // verified signatures remembered (lib/session/signer.ts).
    secret: new SessionCookieSigner(secrets, undefined, { acceptExpressPrefix: legacy !== undefined }),
    cookieName: config.SESSION_COOKIE_NAME,
    cookie: cookieOptions,
    store,
    saveUninitialized: false, // anonymous visitors get no cookie and no key
    // Not rolling on every response: saveSession refreshes (and re-sends the cookie) at the store's
    // cadence only, so an unchanged session costs one read and no write.
    rolling: false,
    idGenerator: sessionIdGenerator(store)
  })
  decorateSessionGetter(app)
  const hooks = new SessionHooks({ config, log, store, captured, connection, retryAfter, cookieOptions })
  app.addHook('onRoute', (route: RouteOptions) => { hooks.wireRoute(route) })
  app.decorate('sessions', new UserSessions(store))

  // The expired event of sessions nobody was using: each instance sweeps the suite's expiry ledger
  // every SESSION_EVENTS_SWEEP (lib/session/expiry-sweep.ts), which also keeps the ledger pruned.
  const sweep = new ExpirySweep({ backend: store.backend, events: store.events, every: config.SESSION_EVENTS_SWEEP, logger: log })
  app.addHook('onReady', async () => { sweep.start() })
  app.addHook('onClose', async () => { await sweep.stop() })
}

type SuiteConfig = FastifyInstance['config']
type SessionConnection = ReturnType<typeof featureConnection>
type CookieOptions = ReturnType<typeof sessionCookieOptions>

/** The cookie secrets: SESSION_SECRET, else (outside production and staging) a random one for this process. */
function sessionSecrets (config: SuiteConfig, secure: boolean, log: FastifyBaseLogger): string[] {
  let secrets = [...config.SESSION_SECRET]
  if (secrets.length === 0) {
    // Production and staging refuse a missing secret at config time; elsewhere a random one works.
    secrets = [randomBytes(32).toString('base64url')]
    log.warn('SESSION_SECRET is not set: session cookies are signed with a random secret for this process only, so sessions end at restart and are not shared between instances')
  }
  if (config.SESSION_COOKIE_SAMESITE === 'none' && !secure) {
    log.warn('SESSION_COOKIE_SAMESITE=none without a Secure cookie: browsers reject the cookie; set SESSION_COOKIE_SECURE=true')
  }
  return secrets
}

/** The store on Redis (or process memory without it), with the legacy connect-redis reader when configured. */
async function openSessionStore (config: SuiteConfig, options: SessionPluginOptions, connection: SessionConnection, retryAfter: number,
  log: FastifyBaseLogger): Promise<{ store: SessionStore, legacy: ConnectRedisSessions | undefined }> {
  const redis = connection.redis
  const redisBackend = redis === undefined ? undefined : new RedisSessionBackend(redis)
  if (redis !== undefined && redisBackend !== undefined) {
    // Hash-field expiry (Redis >= 7.4, Valkey >= 9) lets user indexes expire their own entries: asked at
    // every connect, since a failover may land on an older server.
    const detect = (): Promise<void> => detectHashFieldExpiry(redis).then((on) => { redisBackend.useHashFieldExpiry(on) }, () => {})
    redis.on('ready', () => { detect().catch(() => {}) })
    if (redis.status === 'ready') await detect()
  }
  const legacyPrefix = config.SESSION_LEGACY_PREFIX
  if (legacyPrefix !== undefined && redis === undefined) log.warn('SESSION_LEGACY_PREFIX is ignored without Redis: sessions from before the switch live in Redis')
  const legacy = legacyPrefix === undefined || redis === undefined ? undefined : new ConnectRedisSessions(redis, legacyPrefix)
  if (legacy !== undefined) log.info('SESSION_LEGACY_PREFIX is set: sessions from before the switch are moved to the suite at their next request; unset it once they have all expired or moved')
  const store = new SessionStore({
    backend: redisBackend ?? new MemorySessionBackend(),
    ttl: config.SESSION_TTL,
    idleTimeout: config.SESSION_IDLE_TIMEOUT,
    absoluteTimeout: config.SESSION_ABSOLUTE_TIMEOUT,
    maxLifetime: config.SESSION_MAX_LIFETIME,
    timeout: config.REDIS_COMMAND_TIMEOUT,
    failoverWaitLeft: connection.failoverWaitLeft,
    retryAfter,
    maxPerUser: config.SESSION_MAX_PER_USER,
    logger: log,
    ...(options.schema === undefined ? {} : { schema: options.schema }),
    ...(options.userKey === undefined ? {} : { userKey: options.userKey }),
    ...(legacy === undefined ? {} : { legacy }),
    codec: {
      compression: config.SESSION_COMPRESSION === 'none' ? false : { codec: config.SESSION_COMPRESSION },
      encryptionKeys: parseEncryptionKeys(config.SESSION_ENCRYPTION_KEYS, 'SESSION_ENCRYPTION_KEYS')
    }
  })
  if (redis === undefined) log.info('sessions are kept in process memory: lost on restart, not shared between instances')
  else if (redis.status === 'ready') log.info(`sessions: stored in Redis${redisBackend?.hashFieldExpiry === true ? ' (user indexes expire their entries by hash-field expiry)' : ''}`)
  else log.info('sessions: stored in Redis, which is not reachable yet: routes that use sessions answer 503 until it answers')
  return { store, legacy }
}

function sessionCookieOptions (config: SuiteConfig, secure: boolean) {
  return {
    path: '/',
    httpOnly: true,
    secure,
    sameSite: config.SESSION_COOKIE_SAMESITE,
    maxAge: config.SESSION_TTL,
    ...(config.SESSION_COOKIE_DOMAIN === undefined ? {} : { domain: config.SESSION_COOKIE_DOMAIN })
  }
}

/** Random session ids; each one generated for a request is noted with its client, and on the request. */
function sessionIdGenerator (store: SessionStore): (request?: FastifyRequest) => string {
  return (request?: FastifyRequest) => {
    const id = randomBytes(24).toString('base64url')
    if (request !== undefined) {
      store.noteClient(id, { ip: request.ip, userAgent: request.headers['user-agent'] })
      const carrier = request as FastifyRequest & SessionCarrier
      ;(carrier[kGenerated] ??= []).push(id)
    }
    return id
  }
}

/** request.session: @fastify/session's value on opted-in routes, an explicit error elsewhere. */
function decorateSessionGetter (app: FastifyInstance): void {
  app.decorateRequest('session', {
    getter (this: FastifyRequest & SessionCarrier) {
      if (this[kEnabled] !== true) throw new SessionNotEnabledError(this.routeOptions.url ?? this.url)
      return this[kSession]
    },
    setter (this: FastifyRequest & SessionCarrier, value: unknown) {
      this[kSession] = value
    }
  } as never)
}

function unavailableBody (err: SessionUnavailableError): string {
  return JSON.stringify({ statusCode: 503, code: err.code, error: 'Service Unavailable', message: err.message })
}

interface SessionHooksOptions {
  config: SuiteConfig
  log: FastifyBaseLogger
  store: SessionStore
  captured: { onRequest: RequestHook, onSend: SendHook }
  connection: SessionConnection
  retryAfter: number
  cookieOptions: CookieOptions
}

/**
 * The route hooks of the opted-in routes, over one registration's state: built once at registration,
 * each hook an arrow bound to it once (onRequest loadSession, preParsing spendBeforeBody, onSend
 * saveSession, and the route's error handler).
 */
class SessionHooks {
  private readonly store: SessionStore
  private readonly captured: { onRequest: RequestHook, onSend: SendHook }
  private readonly connection: SessionConnection
  private readonly log: FastifyBaseLogger
  private readonly retryAfter: number
  private readonly commandTimeout: number
  private readonly cookieName: string
  private readonly cookieDomain: string | undefined
  private readonly nodeEnv: string
  private readonly strictProfile: boolean
  private lifetimeOption = false
  private insecureWarned = false
  // A connection lost since the request began means its wait before the handler was (or may have
  // been) a failover wait, which must not eat the budget of the save that follows the reconnect.
  private lostAt = 0

  constructor ({ config, log, store, captured, connection, retryAfter, cookieOptions }: SessionHooksOptions) {
    this.store = store
    this.captured = captured
    this.connection = connection
    this.log = log
    this.retryAfter = retryAfter
    this.commandTimeout = config.REDIS_COMMAND_TIMEOUT
    this.cookieName = config.SESSION_COOKIE_NAME
    this.cookieDomain = cookieOptions.domain
    this.nodeEnv = config.NODE_ENV
    this.strictProfile = config.NODE_ENV === 'production' || config.NODE_ENV === 'staging'
    connection.redis?.on('close', () => { this.lostAt = Date.now() })
  }

  /** onRoute: a route with `config: { session: true }` loads, budgets and saves its session. */
  wireRoute (route: RouteOptions): void {
    if (route.config?.session !== true) return
    route.onRequest = [this.loadSession as never, ...toArray(route.onRequest)]
    route.preParsing = [...toArray(route.preParsing), this.spendBeforeBody as never]
    route.onSend = [this.saveSession as never, ...toArray(route.onSend)]
    route.errorHandler = this.routeErrorHandler(route.errorHandler) as never
  }

  readonly loadSession: RequestHook = (request, reply, done) => {
    const carrier = request as FastifyRequest & SessionCarrier
    carrier[kEnabled] = true
    // One time budget for every store call of this request (a sign-in waits once, not per call): the
    // onRequest phase (the load, a rate-limit decision) and the store calls after it; not the body, the
    // handler's own time, nor a wait for a failover (lib/session/deadline.ts, spendBeforeBody).
    carrier[kBudget] = new RequestBudget(this.commandTimeout)
    carrier[kStartedAt] = Date.now()
    this.captured.onRequest(request, reply, (err) => {
      if (err === undefined || err === null) {
        // Synchronous with store.get's callback: links the session to what was loaded (see store.adopt).
        const session = (request as SessionCarrier)[kSession]
        if (!this.lifetimeOption && session !== null && typeof session === 'object') this.lifetimeOption = acceptLifetimeOption(session)
        if (session !== null && typeof session === 'object' && 'sessionId' in session && this.store.adopt(session as { sessionId: string }, carrier[kBudget])) {
          (request as SessionCarrier)[kRestored] = session
        }
        done()
      } else if (isSessionUnavailable(err)) {
        request.log.debug('session store unavailable: answering 503')
        reply.code(503).header('retry-after', String(this.retryAfter)).type('application/json; charset=utf-8').send(unavailableBody(err))
      } else {
        done(err)
      }
    })
  }

  readonly saveSession: SendHook = (request, reply, payload, next) => {
    // Ids generated for this request: once the save is done (or skipped), a session that was not
    // saved keeps nothing in the store (a 429 or a page view by a new visitor).
    const generated = (request as SessionCarrier)[kGenerated]
    const done: Done = generated === undefined
      ? next
      : (err, sent) => {
          for (const id of generated) this.store.forgetClient(id)
          next(err, sent)
        }
    const session = (request as FastifyRequest & SessionCarrier)[kSession] as null | {
      cookie?: { secure?: unknown }, isModified?: () => boolean, sessionId?: string
    } | undefined
    const cookieName = this.cookieName
    if (session === null && request.cookies[cookieName] !== undefined) {
      // Destroyed during the request (logout, revoke): the browser should forget the cookie too.
      reply.clearCookie(cookieName, { path: '/', ...(this.cookieDomain === undefined ? {} : { domain: this.cookieDomain }) })
    }
    if (session?.cookie?.secure === true && request.protocol !== 'https' && session.isModified?.() === true) {
      this.refuseInsecure(reply, done)
      return
    }
    const restoredSession = (request as SessionCarrier)[kRestored] as { sessionId: string } | undefined
    if (restoredSession !== undefined) this.store.release(restoredSession.sessionId)
    const restored = session !== null && session !== undefined && session === restoredSession
    // store.isUnchanged: the per-field comparison the save itself makes, instead of @fastify/session's
    // isModified() (a stable stringify and a sha256 of the session per request). When it says changed,
    // @fastify/session's own onSend decides as before (it saves, and sends the cookie, when isModified;
    // a payload whose stored JSON is not what JSON.stringify writes, which this store never stores,
    // would then miss one re-sent cookie at a cadence refresh, nothing else).
    if (restored && this.store.isUnchanged(session as SessionLike) === true && !(session.cookie?.secure === true && request.protocol !== 'https')) {
      const cookie = request.cookies[cookieName]
      const encrypted = (session as { encryptedSessionId: string }).encryptedSessionId
      // Restored from a cookie signed with an older secret: @fastify/session would see a different
      // cookie and clear it, which would end every session at the first request after a rotation.
      // Present the re-signed value and refresh now, so the cookie goes out signed with the current secret.
      const resigned = cookie !== undefined && cookie !== encrypted
      if (resigned) request.cookies[cookieName] = encrypted
      const refresh = resigned ? 'due' : this.store.refreshOf(session)
      if (refresh === 'due') {
        // A touch: expiry, last-seen and indexes move; @fastify/session then sends the cookie (isSaved).
        this.store.withBudget(this.budgetOf(request), () => (session as unknown as { save: (cb: Done) => void }).save((err) => {
          if (err === undefined || err === null) this.runOnSend(request, reply, payload, done)
          else this.unavailable(request, reply, err, done)
        }))
        return
      }
      // The load already moved the expiry (a due session on a standalone server or Sentinel): the
      // cookie goes out again, exactly as @fastify/session sends it after a save.
      if (refresh === 'refreshed') reply.setCookie(cookieName, encrypted, (session.cookie as { toJSON: () => Record<string, unknown> }).toJSON())
      // The hot path: unchanged, not due, same cookie. @fastify/session would hash the session again
      // only to decide that there is nothing to save and no cookie to send.
      done()
      return
    }
    this.runOnSend(request, reply, payload, done)
  }

  /**
   * A changed session with a Secure cookie on plain HTTP: @fastify/session would drop the change and
   * send no cookie while the handler's answer says it worked (a sign-in "ok" that signed nobody in).
   * Fail the response instead, and say why once.
   */
  private refuseInsecure (reply: FastifyReply, done: Done): void {
    if (!this.insecureWarned) {
      this.insecureWarned = true
      if (this.strictProfile) {
        this.log.error(`a session was not set: session cookies are Secure in ${this.nodeEnv} and the request came over plain HTTP. Serve HTTPS, or, behind a TLS-terminating proxy, list it in TRUST_PROXY (and Fastify's trustProxy) so request.protocol is https`)
      } else {
        this.log.warn('a session was not saved: its cookie is Secure but the request came over plain HTTP. Serve HTTPS, list the TLS-terminating proxy in TRUST_PROXY, or set SESSION_COOKIE_SECURE=false for local HTTP')
      }
    }
    const err = new SessionNotSetError()
    reply.code(err.statusCode).header('content-type', 'application/json; charset=utf-8')
    reply.removeHeader('set-cookie')
    done(null, JSON.stringify({ statusCode: err.statusCode, code: err.code, error: 'Internal Server Error', message: err.message }))
  }

  private unavailable (request: FastifyRequest, reply: FastifyReply, err: unknown, done: Done): void {
    if (!isSessionUnavailable(err)) {
      done(err)
      return
    }
    // The handler's answer depended on a session change that was not stored: replace it.
    request.log.debug('session store unavailable while saving: answering 503')
    reply.code(503).header('retry-after', String(this.retryAfter)).header('content-type', 'application/json; charset=utf-8')
    reply.removeHeader('set-cookie')
    done(null, unavailableBody(err))
  }

  private runOnSend (request: FastifyRequest, reply: FastifyReply, payload: unknown, done: Done): void {
    this.store.withBudget(this.budgetOf(request), () => this.captured.onSend(request, reply, payload, (err) => {
      if (err === undefined || err === null) done()
      else this.unavailable(request, reply, err, done)
    }))
  }

  // preParsing: after every onRequest hook (the load, a rate-limit decision), before the body is read,
  // so a slow upload or handler never spends it.
  readonly spendBeforeBody = (request: FastifyRequest, _reply: FastifyReply, payload: unknown, done: (err: null, payload: unknown) => void): void => {
    const carrier = request as FastifyRequest & SessionCarrier
    const startedAt = carrier[kStartedAt]
    if (startedAt !== undefined && this.lostAt < startedAt && this.connection.failoverWaitLeft() === 0) {
      carrier[kBudget]?.spend(Date.now() - startedAt)
    }
    done(null, payload)
  }

  private budgetOf (request: FastifyRequest): RequestBudget {
    return (request as FastifyRequest & SessionCarrier)[kBudget] ?? new RequestBudget(this.commandTimeout)
  }

  // A handler's regenerate()/destroy() failing because the store is down is an expected condition:
  // answer the same 503 here, before Fastify's default handler would log an error and a stack for it.
  private routeErrorHandler (userHandler: RouteOptions['errorHandler']) {
    const retryAfter = this.retryAfter
    return function (this: FastifyInstance, err: unknown, request: FastifyRequest, reply: FastifyReply): unknown {
      if (isSessionUnavailable(err)) {
        request.log.debug('session store unavailable in the handler: answering 503')
        return reply.code(503).header('retry-after', String(retryAfter)).type('application/json; charset=utf-8').send(unavailableBody(err))
      }
      if (userHandler !== undefined) return (userHandler as (this: FastifyInstance, e: unknown, q: FastifyRequest, r: FastifyReply) => unknown).call(this, err, request, reply)
      throw err // the instance's own error handler
    }
  }
}

type Regenerate = (this: SessionObject, keys?: unknown, callback?: unknown) => unknown
interface SessionObject { options: (opts: { maxAge: number }) => void, regenerate: Regenerate }
const kLifetimeOption = Symbol.for('fastify-redis-suite.regenerateLifetime')

/**
 * Teaches @fastify/session's Session class regenerate({ lifetime, keep }) (once, on its prototype), and
 * marks every regenerate so the store reports the old session's end as 'regenerated', not 'logout':
 * the lifetime goes in through its own per-session cookie options (session.options({ maxAge })), which
 * regenerate carries to the new session; the store then sees a max age other than SESSION_TTL and keeps
 * it as the session's chosen lifetime (lib/session/store.ts). Any other argument reaches the original
 * regenerate unchanged. Pinned to @fastify/session 11 with the hook capture below.
 */
function acceptLifetimeOption (session: object): true {
  const proto = Object.getPrototypeOf(session) as SessionObject & { [kLifetimeOption]?: true }
  if (proto[kLifetimeOption] === true || typeof proto.regenerate !== 'function') return true
  const original = proto.regenerate
  proto.regenerate = function (this: SessionObject, keys?: unknown, callback?: unknown): unknown {
    // whileRegenerating: the destroy of the old session it starts is reported as 'regenerated'.
    if (keys === null || typeof keys !== 'object' || Array.isArray(keys)) return whileRegenerating(() => original.call(this, keys, callback))
    const { lifetime, keep } = keys as Partial<RegenerateOptions>
    const maxAge = parseDuration(lifetime as Duration, 'regenerate({ lifetime })')
    if (maxAge <= 0) throw new DurationError(`regenerate({ lifetime }) must be more than 0, got ${JSON.stringify(lifetime)}`)
    this.options({ maxAge })
    return whileRegenerating(() => keep === undefined ? original.call(this, callback) : original.call(this, keep, callback))
  }
  Object.defineProperty(proto, kLifetimeOption, { value: true })
  return true
}

function toArray<T> (value: T | T[] | undefined): T[] {
  if (value === undefined) return []
  return Array.isArray(value) ? value : [value]
}

/**
 * Runs @fastify/session's plugin function against a stand-in instance: its decorators go to the
 * app, its two hooks are handed back so they can be attached per route. Pinned to @fastify/session 11
 * (which only calls decorate, decorateRequest and addHook); test/plugins/session.test.ts covers it.
 */
async function captureSessionHooks (app: FastifyInstance, options: Record<string, unknown>): Promise<{ onRequest: RequestHook, onSend: SendHook }> {
  const captured: { onRequest?: RequestHook, onSend?: SendHook } = {}
  const standIn = {
    decorate: (name: string, value: unknown) => app.decorate(name, value),
    decorateRequest: (name: string, value: unknown) => {
      if (name !== 'session') app.decorateRequest(name, value as never)
    },
    addHook: (name: string, hook: RequestHook & SendHook) => {
      if (name !== 'onRequest' && name !== 'onSend') throw new Error(`@fastify/session added an unexpected ${name} hook`)
      captured[name] = hook
    }
  }
  await new Promise<void>((resolve, reject) => {
    const register = fastifySession as unknown as (instance: unknown, opts: unknown, next: (err?: Error) => void) => void
    register(standIn, options, (err) => { if (err === undefined) resolve(); else reject(err) })
  })
  if (captured.onRequest === undefined || captured.onSend === undefined) throw new Error('@fastify/session did not add its hooks')
  return { onRequest: captured.onRequest, onSend: captured.onSend }
}

export default fp(sessionPlugin, { name: 'redis-suite-session', fastify: '5.x', dependencies: ['redis-suite-config', 'redis-suite-redis'] })
