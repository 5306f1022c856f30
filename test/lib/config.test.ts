import t from 'tap'
import { inspect } from 'node:util'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig, ConfigError, redactUrl, isRedisConfigured } from '../../lib/config.js'

const SECRET = 'x'.repeat(32)

function problemsOf (env: Record<string, string>): readonly string[] {
  try {
    loadConfig({ env })
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
  return []
}

t.test('defaults are applied and typed values decoded', async (t) => {
  const config = loadConfig({ env: {} })
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
    }
  })
  t.equal(config.REDIS_PORT, 6380)
  t.equal(config.REDIS_TLS, true)
  t.equal(config.REDIS_RETRY_DELAY, 100)
  t.equal(config.REDIS_CONNECT_TIMEOUT, 2000)
  t.same(config.REDIS_SENTINELS, ['a:26379', 'b:26380'])
  t.same(config.SESSION_SECRET, ['new', 'old'])
  t.equal(isRedisConfigured(config), true)
})

t.test('the env option replaces process.env; unknown variables are dropped; empty means unset', async (t) => {
  process.env.REDIS_PORT = 'not-a-port'
  t.teardown(() => { delete process.env.REDIS_PORT })
  const config = loadConfig({ env: { SOMETHING_ELSE: '1', REDIS_HOST: '' } })
  t.equal(config.REDIS_PORT, 6379)
  t.notOk('SOMETHING_ELSE' in config)
  t.equal(config.REDIS_HOST, undefined)
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
  t.match(problems.join('\n'), /NODE_ENV must be one of development, test, staging, production/)
  t.match(problems.join('\n'), /REDIS_TLS must be true or false/)
  t.match(problems.join('\n'), /REDIS_COMMAND_TIMEOUT must be a duration/)
  t.match(problems.join('\n'), /REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL, got \[redacted\]/)
  t.match(problemsOf({ REDIS_SENTINELS: 'nohostport' })[0], /REDIS_SENTINELS must be a comma-separated list of host:port/)
  t.match(problemsOf({ REDIS_TLS_CERT: '/a.pem' })[0], /REDIS_TLS_CERT and REDIS_TLS_KEY must be set together/)
  t.match(problemsOf({ REDIS_RETRY_DELAY: '2s', REDIS_RETRY_MAX_DELAY: '1s' })[0], /REDIS_RETRY_MAX_DELAY must be at least REDIS_RETRY_DELAY/)
  t.match(problemsOf({ REDIS_SENTINELS: 'a:1', REDIS_CLUSTER_NODES: 'b:2' })[0], /choose Sentinel or Cluster/)
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
  const config = loadConfig({ env: { REDIS_URL: 'redis://user:hunter2@10.0.0.1:6380/2', REDIS_PASSWORD: 'pw-secret', SESSION_SECRET: 'sess-secret,old-secret' } })
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
  const { loggerOptions } = await import('../../lib/logger.js')
  let out = ''
  const stream = new Writable({ write (chunk, _e, cb) { out += String(chunk); cb() } })
  const options = loggerOptions('info') as { redact: { paths: string[], censor: string } }
  const log = pino({ redact: options.redact }, stream)
  const config = loadConfig({ env: { REDIS_URL: 'redis://u:hunter2@h:1', REDIS_PASSWORD: 'pw-secret', SESSION_SECRET: 'sess-secret' } })
  log.info({ config }, 'config')
  log.info({ nested: { config } }, 'nested')
  t.notMatch(out, /hunter2|pw-secret|sess-secret/)
  t.match(out, /u:\[redacted\]@h:1/)
})
