// Issue 32 (STYLE.md item 10): every FRS_ code is declared once, in lib/errors/index.ts. This test keeps
// it so: no FRS_ string anywhere else in the sources, every catalogue entry's class really carries its
// code and status, and the README's error table lists exactly the catalogue.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import ts from 'typescript'
import {
  AclRuleError, AllowListError, CacheKeyError, CacheNamespaceError, CacheTimeoutError, CacheValueError, CompressionOptionError,
  ConfigError, DurationError, FailoverWaitExpiredError, HealthCheckError, HealthPrefixError, HttpCacheConfigError, LockBusyError,
  LockLostError, LockNameError, NotStored, PluginConflictError, PresenceNameError, PubSubMessageError, PubSubNameError,
  RateLimitExceededError, RateLimitOptionError, RateLimitRedisError, RateLimitUnavailableError, RedisCommandError,
  RedisSetupError, RedisUnavailableError, SessionDataError, SessionEventError, SessionNotEnabledError, SessionNotSetError,
  SessionUnavailableError, StreamMessageError, StreamOptionError, TracingSetupError,
  errors, type ErrorCode
} from '../lib/errors/index.js'
import * as suite from '../index.js'

const ROOT = path.resolve(import.meta.dirname, '..')
const CODE = /FRS_[A-Z0-9_]+/

function sources (dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name)
    if (statSync(full).isDirectory()) return sources(full)
    return name.endsWith('.ts') && !name.endsWith('.d.ts') ? [full] : []
  })
}

/** FRS_ codes written as strings (quoted or template) in a file; comments and docs do not count. */
function codeLiterals (file: string, text = readFileSync(file, 'utf8')): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
  const found: string[] = []
  const note = (node: ts.Node, text: string): void => {
    const match = CODE.exec(text)
    if (match === null) return
    const { line } = source.getLineAndCharacterOfPosition(node.getStart(source))
    found.push(`${path.relative(ROOT, file)}:${line + 1} ${match[0]}`)
  }
  const visit = (node: ts.Node): void => {
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) note(node, node.text)
    else if (ts.isTemplateExpression(node)) {
      note(node.head, node.head.text)
      for (const span of node.templateSpans) note(span.literal, span.literal.text)
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return found
}

t.test('no FRS_ string outside lib/errors: codes are declared there once and imported', async (t) => {
  const errorsDir = path.join(ROOT, 'lib', 'errors') + path.sep
  const files = [...sources(path.join(ROOT, 'lib')), ...sources(path.join(ROOT, 'plugins')), ...sources(path.join(ROOT, 'routes')), path.join(ROOT, 'index.ts')]
    .filter((file) => !file.startsWith(errorsDir))
  t.ok(files.length > 50, 'the sources were found')
  t.same(files.flatMap((file) => codeLiterals(file)), [])
})

t.test('the check sees quoted, template and literal-type strings, not comments', async (t) => {
  const text = [
    '// FRS_IN_A_COMMENT',
    '/** FRS_IN_A_DOC (FRS_LOCK_BUSY) */',
    "const a = 'FRS_QUOTED'",
    'const b = { code: "FRS_DOUBLE" }',
    'const c = `FRS_TEMPLATE`',
    // eslint-disable-next-line no-template-curly-in-string -- source text holding a template literal
    'const d = `${a}: FRS_TEMPLATE_TAIL`',
    "type E = 'FRS_IN_A_TYPE'"
  ].join('\n')
  t.same(codeLiterals(path.join(ROOT, 'lib', 'example.ts'), text).map((hit) => hit.split(' ')[1]),
    ['FRS_QUOTED', 'FRS_DOUBLE', 'FRS_TEMPLATE', 'FRS_TEMPLATE_TAIL', 'FRS_IN_A_TYPE'])
})

// One instance per code (a new code needs a line here); the test checks it is the catalogue's class.
const MAKE: { [C in ErrorCode]: () => Error } = {
  FRS_CONFIG_INVALID: () => new ConfigError(['X must be set']),
  FRS_PLUGIN_CONFLICT: () => new PluginConflictError('two sessions'),
  FRS_DURATION_INVALID: () => new DurationError('ttl must be a duration'),
  FRS_COMPRESSION_OPTION_INVALID: () => new CompressionOptionError('compression.codec must be one of zlib, brotli, zstd'),
  FRS_REDIS_SETUP: () => new RedisSetupError('REDIS_URL is not a valid URL'),
  FRS_REDIS_UNAVAILABLE: () => new RedisUnavailableError('Redis at x did not become ready'),
  FRS_ACL_PREFIX_MISSING: () => new AclRuleError('suiteAclRule needs the REDIS_KEY_PREFIX'),
  FRS_REDIS_FAILOVER_WAIT_EXPIRED: () => new FailoverWaitExpiredError('lost'),
  FRS_CACHE_KEY_INVALID: () => new CacheKeyError('empty key'),
  FRS_CACHE_NAMESPACE_INVALID: () => new CacheNamespaceError('bad namespace'),
  FRS_CACHE_VALUE_INVALID: () => new CacheValueError('bad value', 'k', ['/id: expected number']),
  FRS_CACHE_LOADER_TIMEOUT: () => new CacheTimeoutError('k', 100),
  FRS_HTTP_CACHE_CONFIG_INVALID: () => new HttpCacheConfigError('bad route'),
  FRS_HTTP_CACHE_NOT_STORED: () => new NotStored('the request stopped waiting'),
  FRS_SESSION_UNAVAILABLE: () => new SessionUnavailableError(2),
  FRS_SESSION_DATA_INVALID: () => new SessionDataError(['/user: expected object']),
  FRS_SESSION_NOT_ENABLED: () => new SessionNotEnabledError('/me'),
  FRS_SESSION_NOT_SET: () => new SessionNotSetError(),
  FRS_SESSION_EVENT_INVALID: () => new SessionEventError('app.sessions.on: unknown event'),
  FRS_RATE_LIMITED: () => new RateLimitExceededError(1500),
  FRS_RATE_LIMIT_BANNED: () => new RateLimitExceededError(1500, true),
  FRS_RATE_LIMIT_UNAVAILABLE: () => new RateLimitUnavailableError(1000),
  FRS_RATE_LIMIT_REDIS_TIMEOUT: () => new RateLimitRedisError(errors.FRS_RATE_LIMIT_REDIS_TIMEOUT.code, 'timeout'),
  FRS_RATE_LIMIT_REDIS_ERROR: () => new RateLimitRedisError(errors.FRS_RATE_LIMIT_REDIS_ERROR.code, 'failed'),
  FRS_RATE_LIMIT_OPTION: () => new RateLimitOptionError('rate-limit option x is unknown'),
  FRS_RATE_LIMIT_ALLOW_LIST_INVALID: () => new AllowListError('not a CIDR'),
  FRS_PUBSUB_MESSAGE_INVALID: () => new PubSubMessageError('bad message', ['/n: expected number']),
  FRS_PUBSUB_NAME_INVALID: () => new PubSubNameError('A pub/sub channel name must be a string'),
  FRS_PUBSUB_UNAVAILABLE: () => new RedisCommandError(errors.FRS_PUBSUB_UNAVAILABLE.code, 'publish: Redis is unavailable'),
  FRS_STREAM_MESSAGE_INVALID: () => new StreamMessageError('bad message', ['/n: expected number']),
  FRS_STREAM_OPTION_INVALID: () => new StreamOptionError('maxDeliveries must be a whole number of at least 1'),
  FRS_STREAM_UNAVAILABLE: () => new RedisCommandError(errors.FRS_STREAM_UNAVAILABLE.code, 'add: Redis is unavailable'),
  FRS_PRESENCE_NAME_INVALID: () => new PresenceNameError('bad room'),
  FRS_PRESENCE_UNAVAILABLE: () => new RedisCommandError(errors.FRS_PRESENCE_UNAVAILABLE.code, 'join: Redis is unavailable'),
  FRS_LOCK_BUSY: () => new LockBusyError('invoice:42', 5000),
  FRS_LOCK_LOST: () => new LockLostError('invoice:42'),
  FRS_LOCK_NAME_INVALID: () => new LockNameError('bad name'),
  FRS_LOCK_UNAVAILABLE: () => new RedisCommandError(errors.FRS_LOCK_UNAVAILABLE.code, 'acquire: Redis is unavailable'),
  FRS_HEALTH_CHECK_DUPLICATE: () => new HealthCheckError('health check "queue" is already registered'),
  FRS_HEALTH_PREFIX_INVALID: () => new HealthPrefixError('fastify-redis-suite: health prefix must start with "/"'),
  FRS_TRACING_API_MISSING: () => new TracingSetupError('enableTracing() needs @opentelemetry/api')
}

t.test('every catalogue entry: its class, constructed, carries its code, status and name', async (t) => {
  t.same(Object.keys(MAKE), Object.keys(errors), 'one instance per code, in catalogue order')
  for (const [code, entry] of Object.entries(errors)) {
    const err = MAKE[code as ErrorCode]() as Error & { code?: unknown, statusCode?: unknown }
    t.equal(entry.code, code, `${code}: the entry names its own code`)
    t.ok(err instanceof entry.class, `${code}: an instance of ${entry.class.name}`)
    t.ok(err instanceof Error, `${code}: an Error`)
    t.equal(err.code, code, `${code}: err.code`)
    t.equal(err.statusCode, entry.status, `${code}: err.statusCode is the catalogue's status`)
    t.equal(err.name, entry.class.name, `${code}: err.name is the class name`)
    t.ok(entry.when.length > 10 && !entry.when.includes('\n') && !entry.when.includes('|'), `${code}: one line on when`)
  }
})

t.test('the package exports the catalogue, and each class it names is the one the package exports', async (t) => {
  t.equal(suite.errors, errors)
  t.ok(Object.isFrozen(errors) && Object.values(errors).every((entry) => Object.isFrozen(entry)), 'read-only')
  const exported = suite as unknown as Record<string, unknown>
  for (const entry of Object.values(errors)) {
    if (entry.class.name in exported) t.equal(exported[entry.class.name], entry.class, `${entry.class.name} is one class`)
  }
})

/** The README's "## Errors" table: Code | Class | HTTP status | When. */
function readmeRows (): string[][] {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8')
  const start = readme.indexOf('\n## Errors\n')
  if (start === -1) return []
  const end = readme.indexOf('\n## ', start + 1)
  const section = readme.slice(start, end === -1 ? undefined : end)
  const lines = section.split('\n').filter((line) => line.startsWith('|'))
  const cells = (line: string): string[] => line.slice(1, -1).split(' | ').map((cell) => cell.trim())
  const [header, rule, ...rows] = lines
  return header === undefined || rule === undefined ? [] : [cells(header), ...rows.map(cells)]
}

t.test('README.md "Errors" lists exactly the catalogue, in its order', async (t) => {
  const [header, ...rows] = readmeRows()
  t.same(header, ['Code', 'Class', 'HTTP status', 'When'])
  t.same(rows, Object.values(errors).map((entry) => [
    `\`${entry.code}\``, `\`${entry.class.name}\``, entry.status === undefined ? '—' : String(entry.status), entry.when
  ]))
})
