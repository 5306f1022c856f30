// Every error code of the suite, declared once (issue 32; STYLE.md item 10), and every error class that
// carries one. A code is stable: apps match on it, so it never changes meaning. The catalogue says
// what a code means, which class carries it and the HTTP status the error carries when it reaches a
// response (none: a boot or caller error, or a Redis failure the caller handles; Fastify's error
// handler answers those with 500). README.md "Errors" lists the same rows (test/errors.test.ts).
// Plain classes rather than @fastify/error: lib/ is free of Fastify, and most of these carry data
// (`key`, `headers`, `problems`). Imports nothing, so every subsystem may import it.

interface Entry {
  /** The name of the class that carries the code (in CLASSES below). */
  readonly class: string
  /** The `statusCode` the error carries, so Fastify's error handler answers with it. */
  readonly status?: number
  /** One line: when the error is raised. */
  readonly when: string
}

const CATALOGUE = {
  FRS_CONFIG_INVALID: { class: 'ConfigError', when: 'Registration: a variable or option is invalid, or does not fit Fastify\'s (trustProxy, pluginTimeout); `problems` has one line each' },
  FRS_PLUGIN_CONFLICT: { class: 'PluginConflictError', when: 'Registration: the app already registered a plugin a suite feature would register (@fastify/session, @fastify/rate-limit…)' },
  FRS_DURATION_INVALID: { class: 'DurationError', when: 'A duration option is not milliseconds or a number with a unit (\'5m\'), or is 0 where a duration must be longer' },
  FRS_COMPRESSION_OPTION_INVALID: { class: 'CompressionOptionError', when: 'A `compression` option names an unknown codec, zstd on a Node without it, or a bad threshold' },
  FRS_REDIS_SETUP: { class: 'RedisSetupError', when: 'Registration: REDIS_URL, a TLS file or the app\'s `redis.client` cannot be used; or a connection is created while no Redis is configured' },
  FRS_REDIS_UNAVAILABLE: { class: 'RedisUnavailableError', when: 'Boot: Redis refused the credentials or was not ready within REDIS_CONNECT_TIMEOUT (REDIS_WAIT_ON_BOOT=true)' },
  FRS_ACL_PREFIX_MISSING: { class: 'AclRuleError', when: '`suiteAclRule` was given an empty key prefix: the rule would grant every key and channel' },
  FRS_REDIS_FAILOVER_WAIT_EXPIRED: { class: 'FailoverWaitExpiredError', when: 'A command waited for a lost connection longer than REDIS_FAILOVER_WAIT' },
  FRS_CACHE_KEY_INVALID: { class: 'CacheKeyError', when: 'A cache key is empty, over 1 KB, or holds control characters' },
  FRS_CACHE_NAMESPACE_INVALID: { class: 'CacheNamespaceError', when: 'A cache namespace name cannot be used in a key' },
  FRS_CACHE_VALUE_INVALID: { class: 'CacheValueError', when: 'A value given to `set` or returned by a loader does not match the schema passed with it' },
  FRS_CACHE_LOADER_TIMEOUT: { class: 'CacheTimeoutError', when: 'A loader ran past `timeout.hard` and no stale value was left to serve' },
  FRS_HTTP_CACHE_CONFIG_INVALID: { class: 'HttpCacheConfigError', when: 'Route registration: a route\'s `config.cache` cannot work (a bad duration, tag or header name, or the wrong method)' },
  FRS_HTTP_CACHE_NOT_STORED: { class: 'NotStored', when: 'Internal: a response fill was abandoned (the request stopped waiting, or the response was not storable); the request renders its own' },
  FRS_SESSION_UNAVAILABLE: { class: 'SessionUnavailableError', status: 503, when: 'The session store failed or did not answer in time (with Retry-After)' },
  FRS_SESSION_DATA_INVALID: { class: 'SessionDataError', when: 'A handler stored session data that breaks the session payload schema' },
  FRS_SESSION_NOT_ENABLED: { class: 'SessionNotEnabledError', when: '`request.session` was read on a route without `config: { session: true }`' },
  FRS_SESSION_NOT_SET: { class: 'SessionNotSetError', status: 500, when: 'A handler changed the session, but its cookie is Secure and the request came over plain HTTP' },
  FRS_SESSION_EVENT_INVALID: { class: 'SessionEventError', when: '`app.sessions.on` was given an unknown event or a handler that is not a function' },
  FRS_RATE_LIMITED: { class: 'RateLimitExceededError', status: 429, when: 'A request is over its rate limit (with Retry-After)' },
  FRS_RATE_LIMIT_BANNED: { class: 'RateLimitExceededError', status: 403, when: 'A request is over @fastify/rate-limit\'s numeric `ban`' },
  FRS_RATE_LIMIT_UNAVAILABLE: { class: 'RateLimitUnavailableError', status: 503, when: 'Redis is down and RATE_LIMIT_WHEN_REDIS_DOWN is `closed` (with Retry-After)' },
  FRS_RATE_LIMIT_REDIS_TIMEOUT: { class: 'RateLimitRedisError', when: 'Internal: a rate-limit command timed out; the Redis-down mode decides the request' },
  FRS_RATE_LIMIT_REDIS_ERROR: { class: 'RateLimitRedisError', when: 'Internal: a rate-limit command failed; the Redis-down mode decides the request' },
  FRS_RATE_LIMIT_OPTION: { class: 'RateLimitOptionError', when: 'Registration: a rate-limit option the suite does not take there, or a bad one (`ban.after`, `whenRedisDown`, `sync`)' },
  FRS_RATE_LIMIT_ALLOW_LIST_INVALID: { class: 'AllowListError', when: 'Registration: an allow-list entry is neither an IP address nor a CIDR' },
  FRS_PUBSUB_MESSAGE_INVALID: { class: 'PubSubMessageError', when: 'A message given to `publish` is undefined or does not match its schema' },
  FRS_PUBSUB_NAME_INVALID: { class: 'PubSubNameError', when: 'A pub/sub channel or pattern name is not a string of 1 to 1024 characters' },
  FRS_PUBSUB_UNAVAILABLE: { class: 'RedisCommandError', when: '`publish` or `subscribe` failed, or Redis did not answer within the command timeout' },
  FRS_STREAM_MESSAGE_INVALID: { class: 'StreamMessageError', when: 'A message added to a stream does not match its schema' },
  FRS_STREAM_OPTION_INVALID: { class: 'StreamOptionError', when: 'A stream consumer option is out of range (`maxDeliveries` below 1 or not whole)' },
  FRS_STREAM_UNAVAILABLE: { class: 'RedisCommandError', when: 'A stream `add` or consumer-group creation failed, or Redis did not answer within the command timeout' },
  FRS_PRESENCE_NAME_INVALID: { class: 'PresenceNameError', when: 'A presence room or member is not a string of 1 to 512 characters' },
  FRS_PRESENCE_UNAVAILABLE: { class: 'RedisCommandError', when: 'A presence command failed, or Redis did not answer within the command timeout' },
  FRS_LOCK_BUSY: { class: 'LockBusyError', when: 'Another owner held the lock for all of `wait`' },
  FRS_LOCK_LOST: { class: 'LockLostError', when: 'The lock expired or passed to another owner while `withLock`\'s work ran' },
  FRS_LOCK_NAME_INVALID: { class: 'LockNameError', when: 'A lock name is not a string of 1 to 512 characters' },
  FRS_LOCK_UNAVAILABLE: { class: 'RedisCommandError', when: 'A lock command failed, or Redis did not answer within the command timeout' },
  FRS_HEALTH_CHECK_DUPLICATE: { class: 'HealthCheckError', when: 'A health check was added under a name already registered' },
  FRS_HEALTH_PREFIX_INVALID: { class: 'HealthPrefixError', when: 'Registration: the health routes\' `prefix` does not start with `/`, or ends with one' },
  FRS_TRACING_API_MISSING: { class: 'TracingSetupError', when: '`enableTracing()` was called, but @opentelemetry/api is not installed' }
} as const satisfies Record<`FRS_${string}`, Entry>

type Catalogue = typeof CATALOGUE
export type ErrorCode = keyof Catalogue

/** Each code as itself: the classes below and the callers that pass a code (RedisCommandError) name it from here. */
export const codes = Object.freeze(Object.fromEntries(Object.keys(CATALOGUE).map((code) => [code, code]))) as { readonly [C in ErrorCode]: C }

// ── Boot and configuration ────────────────────────────────────────────────────────────────────────

export class ConfigError extends Error {
  readonly #problems: readonly string[]
  constructor (problems: string[]) {
    super(problems.join('\n'))
    this.name = 'ConfigError'
    this.#problems = problems
    // An app that lets the registration's rejection reach the top level gets Node's report of it: with
    // the stack reduced to the problems, that is one line per problem naming the variable, not a trace
    // of the suite's internals (code and problems are getters, so the report does not list them either).
    Object.defineProperty(this, 'stack', {
      value: problems.map((problem) => `fastify-redis-suite: ${problem}`).join('\n'),
      writable: true,
      configurable: true,
      enumerable: false
    })
  }

  get code (): 'FRS_CONFIG_INVALID' { return codes.FRS_CONFIG_INVALID }
  get problems (): readonly string[] { return this.#problems }
}

/**
 * Another plugin the app registered already does what a suite feature would do, and the two cannot
 * share it soundly: the message names both and the option that resolves it.
 */
export class PluginConflictError extends Error {
  readonly code = codes.FRS_PLUGIN_CONFLICT
  constructor (message: string) {
    super(`fastify-redis-suite: ${message}`)
    this.name = 'PluginConflictError'
  }
}

/** A duration that is not one: thrown where the option is read (registration, or the call that passes it). */
export class DurationError extends TypeError {
  override name = 'DurationError'
  readonly code = codes.FRS_DURATION_INVALID
}

/** A `compression` option that cannot work; thrown where the option is read. */
export class CompressionOptionError extends TypeError {
  override name = 'CompressionOptionError'
  readonly code = codes.FRS_COMPRESSION_OPTION_INVALID
}

// ── Redis ─────────────────────────────────────────────────────────────────────────────────────────

export class RedisSetupError extends Error {
  readonly code = codes.FRS_REDIS_SETUP
  constructor (message: string) {
    super(message)
    this.name = 'RedisSetupError'
  }
}

export class RedisUnavailableError extends Error {
  readonly code = codes.FRS_REDIS_UNAVAILABLE
  constructor (message: string) {
    super(message)
    this.name = 'RedisUnavailableError'
  }
}

/** `suiteAclRule` without the key prefix the suite runs with: the rule would grant everything. */
export class AclRuleError extends TypeError {
  override name = 'AclRuleError'
  readonly code = codes.FRS_ACL_PREFIX_MISSING
}

/** The error a waiting command gets when the connection did not come back within the budget. */
export class FailoverWaitExpiredError extends Error {
  override name = 'FailoverWaitExpiredError'
  readonly code = codes.FRS_REDIS_FAILOVER_WAIT_EXPIRED
}

/** Redis failed or did not answer in time. `code` is the feature's stable code, e.g. FRS_LOCK_UNAVAILABLE. */
export class RedisCommandError extends Error {
  override name = 'RedisCommandError'
  readonly code: string
  constructor (code: string, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
  }
}

// ── Cache ─────────────────────────────────────────────────────────────────────────────────────────
// Errors a caller of the cache can see. Redis failures are never among them: the cache turns those
// into misses. These are caller bugs (a bad key, a value that breaks its schema) or loader outcomes.

/** A key that can never be stored: empty, over 1 KB, or holding control characters. */
export class CacheKeyError extends TypeError {
  override name = 'CacheKeyError'
  readonly code = codes.FRS_CACHE_KEY_INVALID
}

/** A namespace name that cannot be used in a key. */
export class CacheNamespaceError extends TypeError {
  override name = 'CacheNamespaceError'
  readonly code = codes.FRS_CACHE_NAMESPACE_INVALID
}

/** A value given to `set` or returned by a loader that does not match the schema passed with it. */
export class CacheValueError extends TypeError {
  readonly key: string
  readonly errors: readonly string[]
  override name = 'CacheValueError'
  readonly code = codes.FRS_CACHE_VALUE_INVALID
  constructor (message: string, key: string, errors: readonly string[]) {
    super(message)
    this.key = key
    this.errors = errors
  }
}

/** The loader ran past `timeout.hard` and no stale value was left to serve. It keeps running and fills the cache. */
export class CacheTimeoutError extends Error {
  readonly key: string
  readonly timeoutMs: number
  override name = 'CacheTimeoutError'
  readonly code = codes.FRS_CACHE_LOADER_TIMEOUT
  constructor (key: string, timeoutMs: number) {
    super(`The loader for cache key ${JSON.stringify(key)} did not finish within ${timeoutMs} ms (timeout.hard); raise timeout.hard or make the loader faster`)
    this.key = key
    this.timeoutMs = timeoutMs
  }
}

// ── HTTP response cache: at route registration, never per request ─────────────────────────────────

/** A route's `config.cache` that cannot work: a bad duration, tag or header name, or the wrong method. */
export class HttpCacheConfigError extends TypeError {
  override name = 'HttpCacheConfigError'
  readonly code = codes.FRS_HTTP_CACHE_CONFIG_INVALID
}

/** A response fill given up (lib/http-cache/response-store.ts): the cache loader's rejection, never an app's. */
export class NotStored extends Error {
  override name = 'NotStored'
  readonly code = codes.FRS_HTTP_CACHE_NOT_STORED
}

// ── Sessions ──────────────────────────────────────────────────────────────────────────────────────
// The Redis one carries the HTTP status and headers Fastify's error handler applies (503 + Retry-After),
// so a failure inside a handler (regenerate, destroy, save) answers like one in the session hooks.

/** The session backend failed or did not answer in time. The message never holds driver text or ids. */
export class SessionUnavailableError extends Error {
  override name = 'SessionUnavailableError'
  readonly code = codes.FRS_SESSION_UNAVAILABLE
  readonly statusCode = CATALOGUE.FRS_SESSION_UNAVAILABLE.status
  readonly headers: Record<string, string>

  constructor (retryAfterSeconds: number, options?: ErrorOptions) {
    super('Sessions are temporarily unavailable. Please try again shortly.', options)
    this.headers = { 'retry-after': String(retryAfterSeconds) }
  }
}

export function isSessionUnavailable (err: unknown): err is SessionUnavailableError {
  return err instanceof SessionUnavailableError
}

/** A handler stored session data that breaks the payload schema: it would be discarded at the next load. */
export class SessionDataError extends TypeError {
  readonly errors: readonly string[]
  override name = 'SessionDataError'
  readonly code = codes.FRS_SESSION_DATA_INVALID
  constructor (errors: readonly string[]) {
    super(`Session data does not match the session schema (${errors.join('; ')}); fix the handler or the schema`)
    this.errors = errors
  }
}

/** request.session was read on a route that did not opt in with `config: { session: true }`. */
export class SessionNotEnabledError extends Error {
  override name = 'SessionNotEnabledError'
  readonly code = codes.FRS_SESSION_NOT_ENABLED
  constructor (url: string) {
    super(`request.session is only loaded on routes declared with config: { session: true } (route ${url})`)
  }
}

/**
 * A handler changed the session (a sign-in) but its cookie is Secure and the request came over plain
 * HTTP, so no cookie can be sent and nothing is stored: the response says so instead of the handler's
 * success. A deployment problem (HTTPS, or a TLS-terminating proxy missing from TRUST_PROXY), hence 500.
 */
export class SessionNotSetError extends Error {
  override name = 'SessionNotSetError'
  readonly code = codes.FRS_SESSION_NOT_SET
  readonly statusCode = CATALOGUE.FRS_SESSION_NOT_SET.status
  constructor () {
    super('The session could not be set: session cookies are Secure and this request did not come over HTTPS.')
  }
}

/** `app.sessions.on` with an event that does not exist or a handler that is not a function. */
export class SessionEventError extends TypeError {
  override name = 'SessionEventError'
  readonly code = codes.FRS_SESSION_EVENT_INVALID
}

// ── Rate limits ───────────────────────────────────────────────────────────────────────────────────

/** A refused request: Fastify's error handler answers `{ statusCode, code, error, message }`. */
export class RateLimitExceededError extends Error {
  override name = 'RateLimitExceededError'
  readonly code: 'FRS_RATE_LIMITED' | 'FRS_RATE_LIMIT_BANNED'
  readonly statusCode: 429 | 403
  /** Whole seconds until a request would be allowed again, as in Retry-After. */
  readonly retryAfterS: number

  /** `banned` is @fastify/rate-limit's own numeric `ban` (403); the suite's `limiter.ban` stays a 429. */
  constructor (retryAfterMs: number, banned = false) {
    const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000))
    super(banned ? `Banned for exceeding the rate limit: retry in ${seconds} s` : `Rate limit exceeded: retry in ${seconds} s`)
    const entry = banned ? CATALOGUE.FRS_RATE_LIMIT_BANNED : CATALOGUE.FRS_RATE_LIMITED
    this.code = banned ? codes.FRS_RATE_LIMIT_BANNED : codes.FRS_RATE_LIMITED
    this.statusCode = entry.status
    this.retryAfterS = seconds
  }
}

/**
 * Refusal because Redis is down and the mode is `closed`. Fastify's default error handler answers it
 * with 503 and its `headers` (Retry-After). With `skipOnError: true` the plugin would swallow it and
 * allow the request, so do not combine `skipOnError` with the closed mode.
 */
export class RateLimitUnavailableError extends Error {
  override name = 'RateLimitUnavailableError'
  readonly code = codes.FRS_RATE_LIMIT_UNAVAILABLE
  readonly statusCode = CATALOGUE.FRS_RATE_LIMIT_UNAVAILABLE.status
  readonly headers: Record<string, string>

  constructor (retryAfterMs: number) {
    super('Rate limiting is unavailable; try again shortly')
    this.headers = { 'retry-after': String(Math.max(1, Math.ceil(retryAfterMs / 1000))) }
  }
}

/** Redis failed, or did not answer within the client's commandTimeout. */
export class RateLimitRedisError extends Error {
  override name = 'RateLimitRedisError'
  readonly code: 'FRS_RATE_LIMIT_REDIS_TIMEOUT' | 'FRS_RATE_LIMIT_REDIS_ERROR'

  constructor (code: RateLimitRedisError['code'], message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
  }
}

/** An option of @fastify/rate-limit the suite does not take in that place; thrown at registration. */
export class RateLimitOptionError extends TypeError {
  override name = 'RateLimitOptionError'
  readonly code = codes.FRS_RATE_LIMIT_OPTION
}

/** An allow-list entry that is neither an IP address nor a CIDR; thrown at start-up. */
export class AllowListError extends TypeError {
  override name = 'AllowListError'
  readonly code = codes.FRS_RATE_LIMIT_ALLOW_LIST_INVALID
}

// ── Pub/sub, streams, presence, locks ─────────────────────────────────────────────────────────────

/** A message given to publish() that does not match the schema passed with it. */
export class PubSubMessageError extends TypeError {
  readonly errors: readonly string[]
  override name = 'PubSubMessageError'
  readonly code = codes.FRS_PUBSUB_MESSAGE_INVALID
  constructor (message: string, errors: readonly string[]) {
    super(message)
    this.errors = errors
  }
}

/** A channel or pattern name pub/sub cannot use. */
export class PubSubNameError extends TypeError {
  override name = 'PubSubNameError'
  readonly code = codes.FRS_PUBSUB_NAME_INVALID
}

/** A message given to a stream's add() that does not match the stream's schema. */
export class StreamMessageError extends TypeError {
  readonly errors: readonly string[]
  override name = 'StreamMessageError'
  readonly code = codes.FRS_STREAM_MESSAGE_INVALID
  constructor (message: string, errors: readonly string[]) {
    super(message)
    this.errors = errors
  }
}

/** A stream consumer option out of range; thrown when the consumer starts. */
export class StreamOptionError extends TypeError {
  override name = 'StreamOptionError'
  readonly code = codes.FRS_STREAM_OPTION_INVALID
}

export class PresenceNameError extends TypeError {
  override name = 'PresenceNameError'
  readonly code = codes.FRS_PRESENCE_NAME_INVALID
}

/** Another owner held the lock for all of `wait`. */
export class LockBusyError extends Error {
  readonly lockName: string
  override name = 'LockBusyError'
  readonly code = codes.FRS_LOCK_BUSY
  constructor (lockName: string, waitMs: number) {
    super(`Lock ${JSON.stringify(lockName)} is held by another owner and was not released within ${waitMs} ms; pass a longer \`wait\` or retry later`)
    this.lockName = lockName
  }
}

/** The lock expired or was taken over while its work ran: the work was not exclusive. */
export class LockLostError extends Error {
  readonly lockName: string
  override name = 'LockLostError'
  readonly code = codes.FRS_LOCK_LOST
  constructor (lockName: string) {
    super(`Lock ${JSON.stringify(lockName)} expired or passed to another owner while its work ran; use a longer ttl, and check the fencing token where the work writes`)
    this.lockName = lockName
  }
}

export class LockNameError extends TypeError {
  override name = 'LockNameError'
  readonly code = codes.FRS_LOCK_NAME_INVALID
}

// ── Health ────────────────────────────────────────────────────────────────────────────────────────

/** A health check added twice under one name. */
export class HealthCheckError extends Error {
  override name = 'HealthCheckError'
  readonly code = codes.FRS_HEALTH_CHECK_DUPLICATE
}

/** A health routes' prefix that would not give clean paths (`${prefix}/live`). */
export class HealthPrefixError extends Error {
  override name = 'HealthPrefixError'
  readonly code = codes.FRS_HEALTH_PREFIX_INVALID
}

// ── Tracing ───────────────────────────────────────────────────────────────────────────────────────

/** enableTracing() without the OpenTelemetry API installed. */
export class TracingSetupError extends Error {
  override name = 'TracingSetupError'
  readonly code = codes.FRS_TRACING_API_MISSING
}

// ── The catalogue as the package exports it ───────────────────────────────────────────────────────

const CLASSES = {
  ConfigError,
  PluginConflictError,
  DurationError,
  CompressionOptionError,
  RedisSetupError,
  RedisUnavailableError,
  AclRuleError,
  FailoverWaitExpiredError,
  RedisCommandError,
  CacheKeyError,
  CacheNamespaceError,
  CacheValueError,
  CacheTimeoutError,
  HttpCacheConfigError,
  NotStored,
  SessionUnavailableError,
  SessionDataError,
  SessionNotEnabledError,
  SessionNotSetError,
  SessionEventError,
  RateLimitExceededError,
  RateLimitUnavailableError,
  RateLimitRedisError,
  RateLimitOptionError,
  AllowListError,
  PubSubMessageError,
  PubSubNameError,
  StreamMessageError,
  StreamOptionError,
  PresenceNameError,
  LockBusyError,
  LockLostError,
  LockNameError,
  HealthCheckError,
  HealthPrefixError,
  TracingSetupError
} satisfies Record<Catalogue[ErrorCode]['class'], abstract new (...args: never[]) => Error>

/** One code: the class that carries it, the HTTP status the error carries (undefined: none), when it is raised. */
export interface ErrorInfo<C extends ErrorCode = ErrorCode> {
  readonly code: C
  readonly status: Catalogue[C] extends { status: infer S } ? S : undefined
  readonly class: (typeof CLASSES)[Catalogue[C]['class']]
  readonly when: string
}

/**
 * Every code the suite's errors carry, with its class, HTTP status and a line on when it is raised:
 * `err.code === errors.FRS_LOCK_BUSY.code`, `err instanceof errors.FRS_LOCK_BUSY.class`.
 */
export const errors = Object.freeze(Object.fromEntries(Object.entries(CATALOGUE).map(([code, entry]: [string, Entry]) =>
  [code, Object.freeze({ code, status: entry.status, class: CLASSES[entry.class as keyof typeof CLASSES], when: entry.when })]
))) as { readonly [C in ErrorCode]: ErrorInfo<C> }
