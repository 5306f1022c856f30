import t from 'tap'
import { inspect } from 'node:util'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig, redactUrl, isRedisConfigured, configWarnings, suiteLogLevel } from '../../../lib/config/load.js'
import { ConfigError } from '../../../lib/errors/index.js'
import { parseDuration } from '../../../lib/config/duration.js'

const SECRET = 'x'.repeat(32)

function problemsOf (env: Record<string, string | number>): readonly string[] {
  try {
    loadConfig({ env, processEnv: false })
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
  return []
}

t.test('defaults are applied and typed values decoded', async (t) => {
  const config = loadConfig({ env: {}, processEnv: false })
  t.equal(config.NODE_ENV, 'development')
  t.equal(config.REDIS_PORT, 6379)
  t.equal(config.REDIS_COMMAND_TIMEOUT, 1000, 'durations are milliseconds')
  t.equal(config.SESSION_TTL, 7 * 24 * 3600 * 1000)
  t.same(config.REDIS_SENTINELS, [], 'lists default to empty')
  t.equal(config.REDIS_WAIT_ON_BOOT, false, 'development starts degraded rather than failing')
  t.equal(isRedisConfigured(config), false)
})

t.test('values are coerced from strings, lists split, durations parsed', async (t) => {
  const config = loadConfig({
    env: {
      REDIS_PORT: '6380',
      REDIS_TLS: 'true',
      REDIS_RETRY_DELAY: '100ms',
      REDIS_CONNECT_TIMEOUT: '2 seconds',
      REDIS_SENTINELS: 'a:26379, b:26380',
      SESSION_SECRET: 'new,old',
      REDIS_HOST: 'redis.internal'
    },
    processEnv: false
  })
  t.equal(config.REDIS_PORT, 6380)
  t.equal(config.REDIS_TLS, true)
  t.equal(config.REDIS_RETRY_DELAY, 100)
  t.equal(config.REDIS_CONNECT_TIMEOUT, 2000)
  t.same(config.REDIS_SENTINELS, ['a:26379', 'b:26380'])
  t.same(config.SESSION_SECRET, ['new', 'old'])
  t.equal(isRedisConfigured(config), true)
})

t.test('values in the env option override process.env, which fills in the rest', async (t) => {
  process.env.PORT = '3999'
  process.env.REDIS_DB = '4'
  t.teardown(() => { delete process.env.PORT; delete process.env.REDIS_DB })
  const config = loadConfig({ env: { REDIS_URL: 'redis://127.0.0.1:6390', REDIS_DB: '2' }, dotenvPath: false })
  t.equal(config.PORT, 3999, 'an exported variable the env option does not set still applies')
  t.equal(config.REDIS_DB, 2, 'the env option wins over process.env')
  t.equal(config.REDIS_URL, 'redis://127.0.0.1:6390')
  t.equal(loadConfig({ env: { REDIS_DB: undefined }, dotenvPath: false }).REDIS_DB, 4, 'undefined in env means not given')
  t.equal(loadConfig({ env: { REDIS_DB: '' }, dotenvPath: false }).REDIS_DB, 0, "'' in env means unset, whatever process.env says")
})

t.test('processEnv: false uses the env option alone; unknown variables are dropped; empty means unset', async (t) => {
  process.env.REDIS_PORT = 'not-a-port'
  const dir = mkdtempSync(join(tmpdir(), 'frs-env-'))
  writeFileSync(join(dir, '.env'), 'REDIS_DB=7\n')
  t.teardown(() => { delete process.env.REDIS_PORT })
  const config = loadConfig({ env: { SOMETHING_ELSE: '1', REDIS_HOST: '' }, processEnv: false, dotenvPath: join(dir, '.env') })
  t.equal(config.REDIS_PORT, 6379, 'process.env is ignored')
  t.equal(config.REDIS_DB, 0, 'the .env file is ignored')
  t.notOk('SOMETHING_ELSE' in config)
  t.equal(config.REDIS_HOST, undefined)
  t.throws(() => loadConfig({ env: {}, dotenvPath: false }), /REDIS_PORT must be an integer from 1 to 65535/, 'without processEnv: false the bad exported value counts')
})

t.test('.env is read when no env option is given, and the real environment wins', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'frs-env-'))
  const file = join(dir, '.env')
  writeFileSync(file, 'REDIS_HOST=from-file\nREDIS_DB=3\n')
  process.env.REDIS_DB = '4'
  t.teardown(() => { delete process.env.REDIS_DB })
  const config = loadConfig({ dotenvPath: file })
  t.equal(config.REDIS_HOST, 'from-file')
  t.equal(config.REDIS_DB, 4)
  t.doesNotThrow(() => loadConfig({ dotenvPath: join(dir, 'missing.env') }), 'a missing .env is fine')
})

t.test('bad values give one line per variable naming it and what was expected', async (t) => {
  t.same(problemsOf({ REDIS_PORT: 'abc' }), ['REDIS_PORT must be an integer from 1 to 65535, got "abc"'])
  const problems = problemsOf({ NODE_ENV: 'prod', REDIS_TLS: 'yes', REDIS_COMMAND_TIMEOUT: '5 minutes later', REDIS_URL: 'http://x' })
  t.equal(problems.length, 4)
  t.match(problems.join('\n'), /NODE_ENV=prod is not a profile: did you mean production\?/)
  t.match(problems.join('\n'), /REDIS_TLS must be true or false/)
  t.match(problems.join('\n'), /REDIS_COMMAND_TIMEOUT must be a duration/)
  t.match(problems.join('\n'), /REDIS_URL must be a redis:\/\/, rediss:\/\/, valkey:\/\/, valkeys:\/\/ or unix:\/\/ URL, got \[redacted\]/)
  t.match(problemsOf({ REDIS_SENTINELS: 'nohostport' })[0], /REDIS_SENTINELS must be a comma-separated list of host:port/)
  t.match(problemsOf({ REDIS_TLS_CERT: '/a.pem' })[0], /REDIS_TLS_CERT and REDIS_TLS_KEY must be set together/)
  t.match(problemsOf({ REDIS_RETRY_DELAY: '2s', REDIS_RETRY_MAX_DELAY: '1s' })[0], /REDIS_RETRY_MAX_DELAY must be at least REDIS_RETRY_DELAY/)
  t.match(problemsOf({ REDIS_SENTINELS: 'a:1', REDIS_CLUSTER_NODES: 'b:2' })[0], /choose Sentinel or Cluster/)
  t.match(problemsOf({ CACHE_COMPRESSION: 'lz4' })[0], /^CACHE_COMPRESSION must be one of/)
  const key = Buffer.alloc(32, 7).toString('base64')
  t.same(problemsOf({ SESSION_ENCRYPTION_KEYS: `k1:${key.slice(0, 20)}` }), ['SESSION_ENCRYPTION_KEYS entry 1 (id k1) must be a 32-byte key in base64 or hex (openssl rand -base64 32)'], 'one line, the key never echoed')
  t.match(problemsOf({ SESSION_ENCRYPTION_KEYS: `${key}` })[0], /^SESSION_ENCRYPTION_KEYS entry 1 must be <id>:<key>/)
  t.match(problemsOf({ SESSION_ENCRYPTION_KEYS: `a:${key},a:${key}` })[0], /^SESSION_ENCRYPTION_KEYS has the id a twice$/)
  t.same(loadConfig({ env: { SESSION_ENCRYPTION_KEYS: `new:${key}, old:${'ab'.repeat(32)}` }, processEnv: false }).SESSION_ENCRYPTION_KEYS, [`new:${key}`, `old:${'ab'.repeat(32)}`])
})

t.test('production refuses insecure settings without echoing secrets', async (t) => {
  const env = { NODE_ENV: 'production', SESSION_SECRET: 'short', REDIS_URL: 'redis://u:hunter2@127.0.0.1:6399' }
  const problems = problemsOf(env)
  t.match(problems.join('\n'), /SESSION_SECRET must be at least 32 characters/)
  t.notMatch(problems.join('\n'), /hunter2|short/)
  t.match(problemsOf({ NODE_ENV: 'production', REDIS_URL: 'redis://h:1' })[0], /SESSION_SECRET must be set in production/)
  t.match(problemsOf({ NODE_ENV: 'production', SESSION_SECRET: SECRET })[0], /REDIS_URL .* must be set in production/)
  t.match(problemsOf({ NODE_ENV: 'staging', SESSION_SECRET: SECRET, REDIS_URL: 'rediss://h:1', REDIS_TLS_REJECT_UNAUTHORIZED: 'false' })[0],
    /REDIS_TLS_REJECT_UNAUTHORIZED=false is refused in staging/)
  t.same(problemsOf({ NODE_ENV: 'production', SESSION_SECRET: SECRET, REDIS_URL: 'rediss://h:1', METRICS_TOKEN: 'metrics-token-0123456789' }), [])
})

t.test('config is frozen and redacted when logged or serialised', async (t) => {
  const config = loadConfig({ env: { REDIS_URL: 'redis://user:hunter2@10.0.0.1:6380/2', REDIS_PASSWORD: 'pw-secret', SESSION_SECRET: 'sess-secret,old-secret' }, processEnv: false })
  t.ok(Object.isFrozen(config))
  t.ok(Object.isFrozen(config.SESSION_SECRET))
  t.throws(() => { (config as { PORT: number }).PORT = 1 })
  t.equal(config.SESSION_SECRET[0], 'sess-secret', 'the app still reads the real values')
  for (const text of [JSON.stringify(config), inspect(config), JSON.stringify({ nested: { config } })]) {
    t.notMatch(text, /hunter2|pw-secret|sess-secret|old-secret/)
    t.match(text, /user:\[redacted\]@10\.0\.0\.1:6380\/2/)
  }
  t.equal(redactUrl('rediss://:p%40ss@h:1'), 'rediss://:[redacted]@h:1')
  t.equal(redactUrl('not a url'), '[redacted]')
})

t.test('the app logger never prints config secrets', async (t) => {
  const { Writable } = await import('node:stream')
  const { default: pino } = await import('pino')
  const { loggerOptions } = await import('../../../lib/config/logger.js')
  let out = ''
  const stream = new Writable({ write (chunk, _e, cb) { out += String(chunk); cb() } })
  const options = loggerOptions('info') as { redact: { paths: string[], censor: string } }
  const log = pino({ redact: options.redact }, stream)
  const config = loadConfig({ env: { REDIS_URL: 'redis://u:hunter2@h:1', REDIS_PASSWORD: 'pw-secret', SESSION_SECRET: 'sess-secret' }, processEnv: false })
  log.info({ config }, 'config')
  log.info({ nested: { config } }, 'nested')
  t.notMatch(out, /hunter2|pw-secret|sess-secret/)
  t.match(out, /u:\[redacted\]@h:1/)
})

t.test('a bare number under 1000 for a window, lifetime or long timeout is refused, naming the variable and a unit', async (t) => {
  t.same(problemsOf({ RATE_LIMIT_WINDOW: '60' }), [
    'RATE_LIMIT_WINDOW=60 would be 60 milliseconds: give a unit, e.g. RATE_LIMIT_WINDOW=60s (bare numbers are milliseconds and must be 1000 or more here)'
  ])
  t.same(problemsOf({ SESSION_TTL: 3600, CACHE_DEFAULT_TTL: '300' }).length, 1, 'a number of 1000 or more stays milliseconds')
  t.match(problemsOf({ CACHE_DEFAULT_TTL: '300' })[0], /^CACHE_DEFAULT_TTL=300 would be 300 milliseconds: give a unit, e\.g\. CACHE_DEFAULT_TTL=300s/)
  t.match(problemsOf({ SESSION_TTL: 30 })[0], /^SESSION_TTL=30 would be 30 milliseconds/, 'numbers passed in the env option too')
  const longOnes = ['REDIS_CONNECT_TIMEOUT', 'REDIS_FAILOVER_WAIT', 'SHUTDOWN_DRAIN_DELAY', 'SESSION_TTL', 'SESSION_IDLE_TIMEOUT', 'SESSION_ABSOLUTE_TIMEOUT',
    'CACHE_DEFAULT_TTL', 'CACHE_GRACE', 'RATE_LIMIT_WINDOW', 'RATE_LIMIT_BAN_DURATION']
  for (const name of longOnes) t.match(problemsOf({ [name]: '5' })[0], new RegExp(`^${name}=5 would be 5 milliseconds`), name)
  t.same(problemsOf({ CACHE_GRACE: '0', SHUTDOWN_DRAIN_DELAY: '0', REDIS_FAILOVER_WAIT: '0', RATE_LIMIT_WINDOW: '1500', SESSION_TTL: '1h' }), [], '0 (off), 1000+ and units are fine')
  t.same(problemsOf({ REDIS_COMMAND_TIMEOUT: '250', RATE_LIMIT_TIMEOUT: '100', REDIS_PING_INTERVAL: '200' }), [], 'sub-second timeouts keep bare milliseconds')
  // Every duration measured in seconds or more (its default is 1 s or longer, or 0 for off with a longer
  // use) refuses bare numbers, except those where a sub-second value is a real setting.
  const { describeVariables } = await import('../../../lib/config/schema.js')
  const subSecondUseful = new Set(['REDIS_COMMAND_TIMEOUT', 'REDIS_RETRY_MAX_DELAY'])
  const unguarded = describeVariables().filter(({ name, schema }) => schema['x-duration'] === true && schema['x-needs-unit'] !== true &&
    !subSecondUseful.has(name) && parseDuration(String(schema.default)) >= 1000).map(({ name }) => name)
  t.same(unguarded, [], 'long durations without the bare-number guard')
  t.match(problemsOf({ SESSION_TTL: 'soon' })[0], /^SESSION_TTL must be a duration with a unit, such as '30s', '5m' or '7d' \(or 1000 or more milliseconds\), got "soon"$/)
})

t.test('every refusal states the real rule', async (t) => {
  const { describeVariables } = await import('../../../lib/config/schema.js')
  // One bad value per kind of schema, derived from the schema itself so new variables are covered.
  for (const { name, schema } of describeVariables()) {
    const s = schema as Record<string, unknown> & { minimum?: number, maximum?: number, minLength?: number }
    const cases: Array<[string, RegExp]> = []
    // NODE_ENV: values other than the profiles run development (see the NODE_ENV test below).
    if (name === 'NODE_ENV') continue
    if (Array.isArray(s.enum)) cases.push(['nope', new RegExp(`^${name} must be one of ${s.enum.join(', ')}, got "nope"$`)])
    else if (s.type === 'boolean') cases.push(['yes', new RegExp(`^${name} must be true or false, got "yes"$`)])
    else if (s.type === 'integer') {
      cases.push(['1.5x', new RegExp(`^${name} must be an integer`)])
      if (s.minimum !== undefined) cases.push([String(s.minimum - 1), new RegExp(`^${name} must be an integer (from|of at least) ${s.minimum}`)])
      if (s.maximum !== undefined) cases.push([String(s.maximum + 1), new RegExp(`^${name} must be an integer.* ${s.maximum}, got`)])
    } else if (s['x-duration'] === true) cases.push(['5 fortnights', new RegExp(`^${name} must be a duration`)])
    else if (typeof s.pattern === 'string' && name !== 'REDIS_URL' && name !== 'REDIS_CACHE_URL') cases.push(['has space', new RegExp(`^${name} must be a value matching `)])
    else if ((s.minLength ?? 0) > 1) cases.push(['short', new RegExp(`^${name} must be at least ${s.minLength} characters, got `)])
    for (const [value, rule] of cases) {
      const problems = problemsOf({ [name]: value })
      t.equal(problems.length, 1, `${name}=${value}: one line`)
      t.match(problems[0], rule, `${name}=${value}`)
    }
  }
  t.same(problemsOf({ METRICS_TOKEN: 'short' }), ['METRICS_TOKEN must be at least 16 characters, got [redacted]'])
  t.same(problemsOf({ REDIS_CACHE_URL: 'http://x' }), ['REDIS_CACHE_URL must be a redis://, rediss://, valkey://, valkeys:// or unix:// URL, got [redacted]'])
  t.same(problemsOf({ SESSION_COOKIE_NAME: 'my sid' }), ['SESSION_COOKIE_NAME must be a value matching ^[A-Za-z0-9_.-]+$, got "my sid"'])
  // Rules across variables, each with the rule in the message.
  t.same(problemsOf({ REDIS_COMMAND_TIMEOUT: '0' }), ['REDIS_COMMAND_TIMEOUT must be more than 0: a command must never wait for ever'])
  t.same(problemsOf({ TRUST_PROXY: 'proxy.internal' }), ['TRUST_PROXY must be a comma-separated list of IP addresses or CIDRs, got "proxy.internal"'])
  t.same(problemsOf({ RATE_LIMIT_ALLOW_LIST: 'localhost' }), ['RATE_LIMIT_ALLOW_LIST must be a comma-separated list of IP addresses or CIDRs, got "localhost"'])
  t.same(problemsOf({ REDIS_CLUSTER_NAT_MAP: 'a=b' }), ['REDIS_CLUSTER_NAT_MAP must be a comma-separated list of internal-host:port=external-host:port, got "a=b"'])
  t.same(problemsOf({ REDIS_CLUSTER_NODES: 'a' }), ['REDIS_CLUSTER_NODES must be a comma-separated list of host:port, got "a"'])
  const strict = { NODE_ENV: 'production', REDIS_URL: 'rediss://h:1', SESSION_SECRET: SECRET, METRICS_TOKEN: 'm'.repeat(20) }
  t.same(problemsOf({ ...strict, SESSION_COOKIE_SECURE: 'false' }), ['SESSION_COOKIE_SECURE=false is refused in production: session cookies would travel in clear text'])
  t.same(problemsOf({ ...strict, SESSION_SECRET: 'a'.repeat(31) }), ['SESSION_SECRET must be at least 32 characters per secret in production'])
})

// Issue 28 item 3: configuration as real environments write it.
t.test('NODE_ENV: other values run the development profile with one warning; strict-looking aliases are refused', async (t) => {
  for (const value of ['local', 'dev', 'ci']) {
    const config = loadConfig({ env: { NODE_ENV: value }, processEnv: false })
    t.equal(config.NODE_ENV, 'development', `NODE_ENV=${value} runs the development profile`)
    t.equal(config.REDIS_WAIT_ON_BOOT, false, 'with its defaults')
    t.same(configWarnings(config), [`NODE_ENV=${value} is not one of development, test, staging, production: running the development profile (in-process stores allowed, insecure settings accepted)`])
  }
  t.same(problemsOf({ NODE_ENV: 'prod' }), ['NODE_ENV=prod is not a profile: did you mean production? (profiles: development, test, staging, production)'])
  t.match(problemsOf({ NODE_ENV: 'stage' })[0], /did you mean staging\?/)
  t.equal(loadConfig({ env: { NODE_ENV: 'Test' }, processEnv: false }).NODE_ENV, 'test', 'case-insensitive')
  t.same(configWarnings(loadConfig({ env: { NODE_ENV: 'test' }, processEnv: false })), [], 'a profile: no warning')
})

t.test('LOG_LEVEL is case-insensitive; only an explicit one governs the suite\'s loggers', async (t) => {
  const config = loadConfig({ env: { LOG_LEVEL: 'INFO' }, processEnv: false })
  t.equal(config.LOG_LEVEL, 'info')
  t.equal(suiteLogLevel(loadConfig({ env: { LOG_LEVEL: 'Error' }, processEnv: false })), 'error')
  t.equal(suiteLogLevel(loadConfig({ env: { NODE_ENV: 'test' }, processEnv: false })), undefined, 'the profile default leaves the app\'s level')
})

t.test('unknown variables under the suite\'s prefixes warn, with the variable meant', async (t) => {
  const config = loadConfig({ env: { REDIS_KEYPREFIX: 'app:', SESSION_TTl: '1d', RATE_LIMIT_MAXX: '5', CACHE_SOMETHING_ELSE_ENTIRELY: '1', REDIS_SERVICE_HOST: '10.0.0.3', REDIS_PORT_6379_TCP_ADDR: '10.0.0.3', OTHER_THING: 'x' }, processEnv: false })
  t.equal(config.REDIS_KEY_PREFIX, '', 'still ignored')
  t.same(configWarnings(config), [
    'REDIS_KEYPREFIX is not a variable the suite reads: did you mean REDIS_KEY_PREFIX? (it is ignored; see .env.example)',
    'SESSION_TTl is not a variable the suite reads: did you mean SESSION_TTL? (it is ignored; see .env.example)',
    'RATE_LIMIT_MAXX is not a variable the suite reads: did you mean RATE_LIMIT_MAX? (it is ignored; see .env.example)',
    'CACHE_SOMETHING_ELSE_ENTIRELY is not a variable the suite reads (it is ignored; see .env.example)'
  ], 'Kubernetes service links and other prefixes are left alone')
})

t.test('unix:// sockets and valkey:// / valkeys:// URLs are accepted', async (t) => {
  t.equal(loadConfig({ env: { REDIS_URL: 'unix:///run/redis.sock?db=2' }, processEnv: false }).REDIS_URL, 'unix:///run/redis.sock?db=2')
  t.equal(loadConfig({ env: { REDIS_URL: 'valkey://h:6379', REDIS_CACHE_URL: 'valkeys://c:6380' }, processEnv: false }).REDIS_CACHE_URL, 'valkeys://c:6380')
})

t.test('a ConfigError reads as one line per problem wherever it is printed: no stack, no internals', async (t) => {
  const err = new ConfigError(['REDIS_PORT must be an integer from 1 to 65535, got "x"', 'REDIS_TLS must be true or false, got "yes"'])
  t.equal(err.stack, 'fastify-redis-suite: REDIS_PORT must be an integer from 1 to 65535, got "x"\nfastify-redis-suite: REDIS_TLS must be true or false, got "yes"')
  t.notMatch(inspect(err), /\bat |problems:|code:/, 'inspect (what Node prints for an uncaught error) shows no frames and no fields')
  t.equal(err.code, 'FRS_CONFIG_INVALID')
  t.equal(err.problems.length, 2)
})
