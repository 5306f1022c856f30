// TRUST_PROXY takes effect only through Fastify's own trustProxy, so registering the suite into an app
// whose Fastify disagrees must fail, naming the fix (issue 14 item 10).
import { spawnSync } from 'node:child_process'
import { Writable } from 'node:stream'
import t from 'tap'
import Fastify, { type FastifyServerOptions } from 'fastify'
import redisSuite from '../../index.js'
import configPlugin from '../../plugins/config.js'
import { ConfigError } from '../../lib/errors/index.js'
import { TS_NODE_ARGS } from '../helpers/index.js'

// Fastify accepts a hop count at run time although its types leave numbers out.
async function register (trustProxy: FastifyServerOptions['trustProxy'] | number, TRUST_PROXY: string): Promise<string> {
  const app = Fastify({ trustProxy: trustProxy as FastifyServerOptions['trustProxy'] })
  try {
    await app.register(configPlugin, { env: { NODE_ENV: 'test', TRUST_PROXY }, processEnv: false })
    await app.ready()
    return 'ok'
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    return err.message
  } finally {
    await app.close()
  }
}

t.test('the whole suite refuses TRUST_PROXY when the app created Fastify without trustProxy', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => {
    await app.register(redisSuite, { env: { NODE_ENV: 'test', TRUST_PROXY: '10.0.0.1' }, processEnv: false })
    await app.ready()
  }, { name: 'ConfigError', code: 'FRS_CONFIG_INVALID', message: /TRUST_PROXY=10\.0\.0\.1 but Fastify was created without trustProxy.*create Fastify with \{ trustProxy: \['10\.0\.0\.1'\] \}/ })
})

t.test('each disagreement names the fix; agreement passes', async (t) => {
  t.equal(await register(undefined, ''), 'ok', 'no proxy on either side')
  t.equal(await register(false, ''), 'ok')
  t.equal(await register(['10.0.0.1', '10.1.0.0/16'], '10.1.0.0/16,10.0.0.1'), 'ok', 'same list in any order')
  t.equal(await register('10.0.0.1, 10.1.0.0/16', '10.0.0.1,10.1.0.0/16'), 'ok', "Fastify's comma-separated string form")
  t.equal(await register(1, ''), 'ok', 'a hop count is the app\'s own policy when TRUST_PROXY is empty')
  t.match(await register(['10.0.0.1'], ''), /Fastify trusts the proxies 10\.0\.0\.1 \(trustProxy\) but TRUST_PROXY is empty: set TRUST_PROXY=10\.0\.0\.1/)
  t.match(await register(['10.0.0.2'], '10.0.0.1'), /TRUST_PROXY=10\.0\.0\.1 and Fastify's trustProxy \(10\.0\.0\.2\) disagree: create Fastify with \{ trustProxy: \['10\.0\.0\.1'\] \}/)
  t.match(await register(true, ''), /trustProxy: true, which believes any client's X-Forwarded-For.*list the proxies in TRUST_PROXY/)
  t.match(await register(true, '10.0.0.1'), /trustProxy: true.*create Fastify with \{ trustProxy: \['10\.0\.0\.1'\] \}/)
  t.match(await register(2, '10.0.0.1'), /TRUST_PROXY=10\.0\.0\.1 but Fastify was created with a trustProxy hop count/)
})

t.test('with Fastify created from config.TRUST_PROXY, request.ip is the forwarded client', async (t) => {
  const { loadConfig } = await import('../../lib/config/load.js')
  const config = loadConfig({ env: { NODE_ENV: 'test', TRUST_PROXY: '10.0.0.1' }, processEnv: false })
  const app = Fastify({ trustProxy: [...config.TRUST_PROXY] })
  t.teardown(() => app.close())
  await app.register(configPlugin, { config })
  app.get('/ip', async (request) => ({ ip: request.ip, protocol: request.protocol }))
  const viaProxy = await app.inject({ url: '/ip', remoteAddress: '10.0.0.1', headers: { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https' } })
  t.same(viaProxy.json(), { ip: '203.0.113.9', protocol: 'https' })
  const direct = await app.inject({ url: '/ip', remoteAddress: '198.51.100.4', headers: { 'x-forwarded-for': '203.0.113.9' } })
  t.equal(direct.json().ip, '198.51.100.4', 'an address not in TRUST_PROXY cannot pick its own IP')
})

t.test('registered with env (issue 15 item 3): env overrides process.env, which fills in the rest; processEnv: false ignores it', async (t) => {
  process.env.REDIS_DB = '4'
  process.env.PORT = '3999'
  t.teardown(() => { delete process.env.REDIS_DB; delete process.env.PORT })
  const configOf = async (options: { processEnv?: boolean }) => {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(configPlugin, { env: { NODE_ENV: 'test', REDIS_DB: '2' }, dotenvPath: false, ...options })
    await app.ready()
    return app.config
  }
  const merged = await configOf({})
  t.equal(merged.REDIS_DB, 2, 'the env option wins')
  t.equal(merged.PORT, 3999, 'process.env fills in what env does not set')
  const alone = await configOf({ processEnv: false })
  t.equal(alone.REDIS_DB, 2)
  t.equal(alone.PORT, 3000, 'process.env ignored: the schema default')
})

// Issue 28 item 3: configuration as real environments write it, in an app that is not the demo.
t.test('in an app of its own, an unknown NODE_ENV and a misspelt variable are one warning each; an explicit LOG_LEVEL governs the suite\'s lines', async (t) => {
  const lines: Array<{ level: number, msg: string, plugin?: string }> = []
  const stream = new Writable({ write (chunk, _encoding, callback) { lines.push(JSON.parse(String(chunk))); callback() } })
  const app = Fastify({ logger: { level: 'info', stream } })
  t.teardown(() => app.close())
  await app.register(redisSuite, { env: { NODE_ENV: 'local', REDIS_KEYPREFIX: 'app:' }, processEnv: false })
  await app.ready()
  t.equal(app.config.NODE_ENV, 'development')
  const warnings = lines.filter((line) => line.level === 40 && line.plugin === 'config').map((line) => line.msg)
  t.same(warnings, [
    'NODE_ENV=local is not one of development, test, staging, production: running the development profile (in-process stores allowed, insecure settings accepted)',
    'REDIS_KEYPREFIX is not a variable the suite reads: did you mean REDIS_KEY_PREFIX? (it is ignored; see .env.example)'
  ])
  t.ok(lines.some((line) => line.level === 40 && line.plugin === 'redis'), 'without LOG_LEVEL the suite logs at the app\'s level (the no-Redis warning)')

  const quiet: Array<{ level: number, plugin?: string }> = []
  const quietStream = new Writable({ write (chunk, _encoding, callback) { quiet.push(JSON.parse(String(chunk))); callback() } })
  const other = Fastify({ logger: { level: 'info', stream: quietStream } })
  t.teardown(() => other.close())
  await other.register(redisSuite, { env: { NODE_ENV: 'development', LOG_LEVEL: 'ERROR' }, processEnv: false })
  await other.ready()
  t.same(quiet.filter((line) => line.plugin !== undefined && line.level < 50), [], 'LOG_LEVEL=ERROR: no info or warn line from the suite')
})

t.test('in an app of its own, a bad variable that reaches the top level prints one line naming it, not a stack', async (t) => {
  const index = new URL('../../index.ts', import.meta.url).href
  const script = `import Fastify from 'fastify'; import suite from '${index}'; const app = Fastify(); await app.register(suite, { env: { REDIS_PORT: 'abc' }, processEnv: false }); await app.ready()`
  const child = spawnSync(process.execPath, [...TS_NODE_ARGS, '--input-type=module', '-e', script], { cwd: new URL('../..', import.meta.url), encoding: 'utf8', timeout: 60_000 })
  t.not(child.status, 0)
  t.match(child.stderr, /fastify-redis-suite: REDIS_PORT must be an integer from 1 to 65535, got "abc"/)
  t.notMatch(child.stderr, /^\s+at /m, `no stack frames:\n${child.stderr}`)
})
