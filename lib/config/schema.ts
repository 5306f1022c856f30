// The one source of truth for configuration. The config type, .env.example and the README table are
// all checked against this schema (test/lib/config/docs.test.ts); add a variable here and nowhere else.
import Type, { type StaticDecode, type TSchema } from 'typebox'
import { DURATION_PATTERN, parseDuration } from './duration.js'

// Environment variables arrive as strings; the codecs below give the app milliseconds and arrays.

interface VariableOptions {
  description: string
  /** Values are never logged, serialised or echoed in an error. */
  secret?: boolean
  /**
   * A duration measured in seconds or more (a window, a lifetime, a long timeout): a bare number under
   * 1000 is refused, since RATE_LIMIT_WINDOW=60 would be a 60 ms window.
   */
  needsUnit?: boolean
}

function duration (defaultValue: string, { description, needsUnit = false }: VariableOptions) {
  const unit = needsUnit ? { 'x-needs-unit': true } : {}
  return Type.Codec(Type.String({ pattern: DURATION_PATTERN, default: defaultValue, description, 'x-duration': true, ...unit }))
    .Decode((value: string) => parseDuration(value))
    .Encode((ms: number) => `${ms}ms`)
}

function list ({ description, secret = false }: VariableOptions) {
  return Type.Codec(Type.String({ default: '', description, ...(secret ? { 'x-secret': true } : {}) }))
    .Decode((value: string) => value.split(',').map((item) => item.trim()).filter((item) => item !== ''))
    .Encode((items: string[]) => items.join(','))
}

function text ({ description, secret = false }: VariableOptions, extra: Record<string, unknown> = {}) {
  return Type.Optional(Type.String({ description, ...(secret ? { 'x-secret': true } : {}), ...extra }))
}

function oneOf<const T extends string[]> (values: readonly [...T], defaultValue: T[number], description: string) {
  return Type.Enum(values, { default: defaultValue, description })
}

/** The URL schemes a Redis URL may use: Redis' own, Valkey's (same protocol), and a Unix socket. */
export const REDIS_URL_PATTERN = '^(rediss?|valkeys?|unix)://'

export const PROFILES = ['development', 'test', 'staging', 'production'] as const
export type Profile = typeof PROFILES[number]

export const ConfigSchema = Type.Object({
  NODE_ENV: oneOf([...PROFILES], 'development', 'Profile: development and test may run without Redis; staging and production refuse insecure settings.'),
  HOST: Type.String({ default: '127.0.0.1', minLength: 1, description: 'Address the demo server listens on (0.0.0.0 in containers).' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000, description: 'Port the demo server listens on.' }),
  LOG_LEVEL: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info', 'pino log level.'),

  REDIS_URL: text({ description: 'redis:// or rediss:// URL (valkey:// and valkeys:// alike) with optional user, password and db, or unix:///path/to/redis.sock?db=0 (credentials from REDIS_USERNAME and REDIS_PASSWORD); takes precedence over REDIS_HOST and friends.', secret: true }, { pattern: REDIS_URL_PATTERN }),
  REDIS_HOST: text({ description: 'Redis host, used when REDIS_URL is not set.' }, { minLength: 1 }),
  REDIS_PORT: Type.Integer({ minimum: 1, maximum: 65535, default: 6379, description: 'Redis port, used with REDIS_HOST.' }),
  REDIS_USERNAME: text({ description: 'ACL user name.' }),
  REDIS_PASSWORD: text({ description: 'Password of the ACL user (or requirepass).', secret: true }),
  REDIS_DB: Type.Integer({ minimum: 0, maximum: 1000, default: 0, description: 'Logical database (standalone and Sentinel only).' }),
  REDIS_TLS: Type.Boolean({ default: false, description: 'Use TLS (implied by rediss://).' }),
  REDIS_TLS_CA: text({ description: 'CA certificate to verify the server: a file path or the PEM text.' }),
  REDIS_TLS_CERT: text({ description: 'Client certificate for mutual TLS: a file path or the PEM text.' }),
  REDIS_TLS_KEY: text({ description: 'Client private key for mutual TLS: a file path or the PEM text.', secret: true }),
  REDIS_TLS_SERVERNAME: text({ description: 'Server name to verify (SNI) when it differs from the host.' }),
  REDIS_TLS_REJECT_UNAUTHORIZED: Type.Boolean({ default: true, description: 'Verify the server certificate. false is refused in staging and production.' }),
  REDIS_KEY_PREFIX: Type.String({ default: '', description: 'Prefix for every key the suite writes, e.g. myapp: (pair it with an ACL key pattern).' }),
  REDIS_CACHE_URL: text({ description: 'Optional separate Redis for the cache (one allkeys-lru server, standalone even when the main connection is Cluster or Sentinel); sessions and rate limits stay on REDIS_URL.', secret: true }, { pattern: REDIS_URL_PATTERN }),

  REDIS_CONNECT_TIMEOUT: duration('5s', { description: 'Time allowed to open a connection, and for boot to wait for Redis.', needsUnit: true }),
  REDIS_COMMAND_TIMEOUT: duration('1s', { description: 'Longest any single command may wait for a reply.' }),
  REDIS_FAILOVER_WAIT: duration('2s', { description: 'How long a command may wait for a lost connection to come back (a failover), counted from the loss; past it, and for the rest of a longer outage, commands fail at once. 0 disables the wait. Standalone, Sentinel and Cluster.', needsUnit: true }),
  REDIS_MAX_RETRIES: Type.Integer({ minimum: 0, default: 0, description: 'Reconnect attempts before giving up; 0 retries for ever (right for a server).' }),
  REDIS_RETRY_DELAY: duration('50ms', { description: 'Base of the exponential reconnect backoff.' }),
  REDIS_RETRY_MAX_DELAY: duration('1s', { description: 'Cap of the reconnect backoff (jitter is added on top).' }),
  REDIS_PING_INTERVAL: duration('500ms', { description: 'How often the background PING measures latency for health.' }),
  REDIS_PING_TIMEOUT: duration('400ms', { description: 'A background PING slower than this counts as a failure.' }),
  REDIS_DEGRADED_LATENCY: duration('100ms', { description: 'PING latency above which Redis is reported degraded.' }),
  REDIS_WAIT_ON_BOOT: Type.Boolean({ default: true, description: 'Fail start-up when Redis is unreachable; false starts degraded and reconnects in the background. Profile default: false in development (start degraded).' }),

  REDIS_SENTINELS: list({ description: 'Comma-separated host:port list of Sentinels; enables Sentinel mode.' }),
  REDIS_SENTINEL_NAME: Type.String({ default: 'mymaster', minLength: 1, description: 'Master name monitored by the Sentinels.' }),
  REDIS_SENTINEL_USERNAME: text({ description: 'ACL user for the Sentinels.' }),
  REDIS_SENTINEL_PASSWORD: text({ description: 'Password for the Sentinels.', secret: true }),
  REDIS_SENTINEL_TLS: Type.Boolean({ default: false, description: 'Use TLS to reach the Sentinels (TLS to the master and replicas follows REDIS_TLS).' }),
  REDIS_CLUSTER_NODES: list({ description: 'Comma-separated host:port list of Cluster seed nodes; enables Cluster mode.' }),
  REDIS_CLUSTER_NAT_MAP: list({ description: 'Comma-separated internal=external address pairs (10.0.0.5:7000=203.0.113.5:7000) for a Cluster that announces addresses the app cannot reach.' }),

  HEALTH_READY_REQUIRES_REDIS: Type.Boolean({ default: true, description: '/health/ready answers 503 while Redis is disconnected. Set false when the app can serve without it (its cache-only routes) and you would rather not pull every instance at once.' }),
  SHUTDOWN_DRAIN_DELAY: duration('0ms', { description: 'On SIGTERM, time /health/ready answers 503 while still serving, so load balancers stop sending traffic before connections close. Profile default: 3s in staging and production.', needsUnit: true }),

  TRUST_PROXY: list({ description: 'Comma-separated addresses or CIDRs of the reverse proxies whose X-Forwarded-For is trusted (never a blanket true). Empty: the socket address is the client. Registration fails unless Fastify was created with the same trustProxy list.' }),

  SESSION_SECRET: list({ description: 'Comma-separated secrets: sessions are signed with the first and accepted with any (rotation). 32+ characters in production.', secret: true }),
  SESSION_TTL: duration('7d', { description: 'Session lifetime in Redis and cookie max age.', needsUnit: true }),
  SESSION_IDLE_TIMEOUT: duration('1d', { description: 'A session unused for this long ends (sliding expiry).', needsUnit: true }),
  SESSION_ABSOLUTE_TIMEOUT: duration('30d', { description: 'A session ends this long after login, however active.', needsUnit: true }),
  SESSION_MAX_LIFETIME: duration('90d', { description: 'Longest lifetime a session may choose at sign-in (remember-me: regenerate({ lifetime })); a longer one is clamped to it. A chosen lifetime is also that session\'s idle timeout and cookie max age.', needsUnit: true }),
  SESSION_EVENTS_SWEEP: duration('5s', { description: 'How often each instance looks for sessions that expired, for the expired event of app.sessions.on (an expiry is delivered within about this long).', needsUnit: true }),
  SESSION_ENCRYPTION_KEYS: list({ description: 'Comma-separated id:key pairs (a 32-byte key in base64 or hex, e.g. from openssl rand -base64 32): session payloads are encrypted at rest (AES-256-GCM) with the first key and read with any (rotation). Empty: plain JSON. Plain and encrypted sessions are both read.', secret: true }),
  SESSION_COMPRESSION: oneOf(['none', 'zlib', 'brotli', 'zstd'], 'none', 'Compression of session payload fields of 1024 characters or more (zstd needs Node 22.15+). Compressed and plain fields are both read.'),
  SESSION_COOKIE_NAME: Type.String({ default: 'sid', pattern: '^[A-Za-z0-9_.-]+$', description: 'Name of the session cookie.' }),
  SESSION_COOKIE_SECURE: oneOf(['auto', 'true', 'false'], 'auto', 'Secure cookie flag: auto is true in staging and production, false otherwise.'),
  SESSION_COOKIE_SAMESITE: oneOf(['lax', 'strict', 'none'], 'lax', 'SameSite cookie attribute.'),
  SESSION_COOKIE_DOMAIN: text({ description: 'Cookie domain, when sessions are shared across subdomains.' }),
  SESSION_MAX_PER_USER: Type.Integer({ minimum: 1, default: 50, description: 'Live sessions kept per user; past it the oldest are revoked at sign-in.' }),
  SESSION_LEGACY_PREFIX: text({ description: 'Migration from connect-redis (express-session or @fastify/session): the key prefix it stored sessions under (its default is sess:). When set, a session the suite does not have is read from there, moved to the suite\'s format and its old key deleted, and express-session\'s s:-prefixed cookies are accepted. Unset (off) once the old sessions have expired or moved (see the README).' }, { minLength: 1 }),

  CACHE_DEFAULT_TTL: duration('5m', { description: 'TTL of cache entries that set none.', needsUnit: true }),
  CACHE_GRACE: duration('0ms', { description: 'How long past its TTL an entry may still be served while it is refreshed, or when the loader or Redis fails.', needsUnit: true }),
  CACHE_MEMORY_MAX_ENTRIES: Type.Integer({ minimum: 0, default: 10_000, description: 'Entries kept in the in-process tier; 0 turns the tier off.' }),
  CACHE_MEMORY_MAX_BYTES: Type.Integer({ minimum: 0, default: 67_108_864, description: 'Bytes (JSON length) kept in the in-process tier.' }),
  CACHE_COMPRESSION: oneOf(['none', 'zlib', 'brotli', 'zstd'], 'none', 'Default compression of cache entries in Redis at least CACHE_COMPRESSION_THRESHOLD long (a namespace\'s compression option overrides it; zstd needs Node 22.15+). Compressed and plain entries are read whatever this says.'),
  CACHE_COMPRESSION_THRESHOLD: Type.Integer({ minimum: 0, default: 1024, description: 'Entries shorter than this (characters of the stored JSON) are stored uncompressed.' }),
  CACHE_INVALIDATION_BUS: Type.Boolean({ default: true, description: 'Tell other instances of an invalidation at once over pub/sub (one subscriber connection). false: no subscriber; while Redis answers they see it within about 1 s (the cache sync interval plus a round trip), when they ask Redis again.' }),

  RATE_LIMIT_MAX: Type.Integer({ minimum: 1, default: 100, description: 'Requests allowed per window and client on every route, unless the route sets its own.' }),
  RATE_LIMIT_WINDOW: duration('1m', { description: 'Window of the global rate limit.', needsUnit: true }),
  RATE_LIMIT_GLOBAL: Type.Boolean({ default: true, description: 'Apply the global limit to every route; false limits only routes with config.rateLimit.' }),
  RATE_LIMIT_ALGORITHM: oneOf(['fixed', 'sliding'], 'fixed', 'fixed: @fastify/rate-limit window semantics; sliding: GCRA, no double burst at window edges.'),
  RATE_LIMIT_WHEN_REDIS_DOWN: oneOf(['fallback', 'open', 'closed'], 'fallback', 'While Redis is down: fallback (in-process limiter), open (allow) or closed (503).'),
  RATE_LIMIT_TIMEOUT: duration('250ms', { description: 'Longest a rate-limit decision waits on Redis before the Redis-down mode applies.' }),
  RATE_LIMIT_ALLOW_LIST: list({ description: 'Comma-separated client addresses or CIDRs never limited (health checkers, internal callers).' }),
  RATE_LIMIT_BAN_AFTER: Type.Integer({ minimum: 0, default: 0, description: 'Refusals in a row after which a client is banned for RATE_LIMIT_BAN_DURATION; 0 turns bans off.' }),
  RATE_LIMIT_BAN_DURATION: duration('15m', { description: 'Length of a rate-limit ban.', needsUnit: true }),
  RATE_LIMIT_AUTH_MAX: Type.Integer({ minimum: 1, default: 5, description: 'Sign-in attempts allowed per minute per client IP on authentication routes (the authRateLimit preset the demo login uses).' }),
  RATE_LIMIT_SYNC: oneOf(['exact', 'batched'], 'exact', 'exact: one Redis script per decision; batched: each instance decides from leases of quota (5 % of max) taken from Redis, over-admitting at most instances × lease per window (high-rate API limits; keep sign-in exact).'),
  RATE_LIMIT_LEGACY_HEADERS: Type.Boolean({ default: false, description: 'Also send the x-ratelimit-* headers besides the IETF RateLimit and RateLimit-Policy.' }),

  METRICS_ENABLED: Type.Boolean({ default: true, description: 'Serve Prometheus metrics at /metrics.' }),
  METRICS_TOKEN: text({ description: 'When set, /metrics and the details of /health/redis require Authorization: Bearer <token>. Staging and production need it or METRICS_PORT.', secret: true }, { minLength: 16 }),
  METRICS_PORT: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, description: 'Serve /metrics on this separate port (on HOST) instead of the app port.' }))
})

export type Config = StaticDecode<typeof ConfigSchema>
export type ConfigKey = keyof Config

/** Per-profile defaults, applied before the schema's own defaults and below anything set explicitly. */
export const PROFILE_DEFAULTS: Record<Profile, Partial<Record<ConfigKey, string>>> = {
  development: { REDIS_WAIT_ON_BOOT: 'false', LOG_LEVEL: 'info' },
  test: { LOG_LEVEL: 'silent' },
  staging: { HOST: '0.0.0.0', SHUTDOWN_DRAIN_DELAY: '3s' },
  production: { HOST: '0.0.0.0', SHUTDOWN_DRAIN_DELAY: '3s' }
}

/** true when the session cookie must be Secure: SESSION_COOKIE_SECURE=auto follows the profile. */
export function secureCookies (config: Pick<Config, 'SESSION_COOKIE_SECURE' | 'NODE_ENV'>): boolean {
  if (config.SESSION_COOKIE_SECURE === 'auto') return config.NODE_ENV === 'production' || config.NODE_ENV === 'staging'
  return config.SESSION_COOKIE_SECURE === 'true'
}

/** Properties of the schema, for the docs check and error messages. */
export function describeVariables (): Array<{ name: ConfigKey, schema: TSchema & Record<string, unknown>, secret: boolean }> {
  return Object.entries(ConfigSchema.properties).map(([name, schema]) => ({
    name: name as ConfigKey,
    schema: schema as unknown as TSchema & Record<string, unknown>,
    secret: (schema as unknown as Record<string, unknown>)['x-secret'] === true
  }))
}

export const SECRET_KEYS: ReadonlySet<string> = new Set(describeVariables().filter((v) => v.secret).map((v) => v.name))
