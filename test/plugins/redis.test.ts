import t from 'tap'
import { useRedis } from '../helpers/index.js'
import { buildServer } from '../../server.js'
import { buildTestApp, timeUntil } from '../helper.js'

const PASSWORD = 'p4ss-w0rd-never-logged'

t.test('standalone with a password: connected, health routes answer, no password in any log line', async (t) => {
  const redis = await useRedis(t, { password: PASSWORD })
  // A loaded test machine must not turn a slow PING into 'degraded': this test is not about latency.
  const { app, rawLogs } = await buildTestApp(t, { REDIS_URL: `redis://:${PASSWORD}@127.0.0.1:${redis.port}/0`, REDIS_DEGRADED_LATENCY: '10s' }, 'debug')
  t.equal(app.redisState.status, 'connected')
  t.equal(app.redisState.mode, 'standalone')
  t.equal(await app.redis.set('k', 'v'), 'OK')

  await timeUntil(() => app.redisMonitor.serverInfo !== undefined, 3_000, 'INFO gathered')
  const res = await app.inject('/health/redis')
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.match(body, { status: 'connected', mode: 'standalone', role: 'master', version: /^7\./ })
  t.ok(body.memoryUsedBytes > 0)
  t.equal((await app.inject('/health')).json().checks.redis.status, 'connected')
  t.equal((await app.inject('/health/ready')).statusCode, 200)
  t.equal((await app.inject({ method: 'HEAD', url: '/health/ready' })).statusCode, 200)

  await app.close()
  t.notMatch(rawLogs(), PASSWORD, 'the password appears in no log line')
  t.match(rawLogs(), /persistence is off/, 'start-up diagnostics warn about a server without persistence')
})

t.test('least-privilege ACL user restricted to the key prefix connects', async (t) => {
  const redis = await useRedis(t, {
    acl: [{ username: 'app', password: PASSWORD, rules: '~app:* &* -@all +@read +@write +@connection +@keyspace +@scripting +info +@pubsub -@dangerous' }]
  })
  const { app, rawLogs } = await buildTestApp(t, { REDIS_URL: `redis://app:${PASSWORD}@127.0.0.1:${redis.port}`, REDIS_KEY_PREFIX: 'app:' })
  t.equal(app.redisState.status, 'connected')
  await app.redis.set('k', 'v')
  t.equal(await redis.cli('GET', 'app:k'), 'v', 'keys carry the prefix the ACL allows')
  t.notMatch(rawLogs(), /persistence is off/, 'CONFIG GET denied by the ACL is skipped quietly')
  t.notMatch(rawLogs(), PASSWORD)
})

t.test('wrong credentials fail boot at once with a clear message', async (t) => {
  const redis = await useRedis(t, { password: PASSWORD })
  const started = Date.now()
  await t.rejects(buildServer({ env: { NODE_ENV: 'test', REDIS_URL: `redis://:wrong-one@127.0.0.1:${redis.port}`, REDIS_WAIT_ON_BOOT: 'true' }, logger: false }),
    { code: 'FRS_REDIS_UNAVAILABLE', message: new RegExp(`Redis at 127.0.0.1:${redis.port} refused the credentials`) })
  t.ok(Date.now() - started < 5_000, 'before the connect timeout')
})

t.test('boot with Redis unreachable: a clear error within the connect timeout, or a degraded start', async (t) => {
  const redis = await useRedis(t)
  const port = redis.port
  await redis.stop()
  const started = Date.now()
  let error: Error | undefined
  try {
    await buildServer({ env: { NODE_ENV: 'test', REDIS_URL: `redis://:secret-pw@127.0.0.1:${port}`, REDIS_WAIT_ON_BOOT: 'true', REDIS_CONNECT_TIMEOUT: '1s' }, logger: false })
  } catch (err) {
    error = err as Error
  }
  const elapsed = Date.now() - started
  t.match(error, { code: 'FRS_REDIS_UNAVAILABLE' })
  t.match(error?.message, new RegExp(`Redis at 127.0.0.1:${port} did not become ready within 1000ms \\(last error: .*ECONNREFUSED`))
  t.notMatch(error?.message, /secret-pw|plugin did not start in time/)
  t.ok(elapsed < 3_000, `failed in ${elapsed}ms`)

  const { app } = await buildTestApp(t, { REDIS_URL: `redis://127.0.0.1:${port}`, REDIS_WAIT_ON_BOOT: 'false' })
  t.equal(app.redisState.status, 'disconnected', 'started degraded')
  t.equal((await app.inject('/health/live')).statusCode, 200)
  t.equal((await app.inject('/health/redis')).statusCode, 503)
  t.equal((await app.inject('/health/ready')).statusCode, 503)
  await t.rejects(app.redis.get('k'), /enableOfflineQueue/, 'commands fail at once instead of queueing')
})

t.test('SIGKILL: disconnected at once, live stays 200, connected again soon after a restart', async (t) => {
  const redis = await useRedis(t)
  const { app, logs } = await buildTestApp(t, { REDIS_URL: redis.url })
  const linesBefore = logs().length
  await redis.kill()
  const detected = await timeUntil(() => app.redisState.status === 'disconnected', 1_000, 'disconnected after SIGKILL')
  t.equal((await app.inject('/health/redis')).json().status, 'disconnected')
  t.equal((await app.inject('/health/redis')).statusCode, 503)
  t.equal((await app.inject('/health/live')).statusCode, 200)

  // Let the backoff grow to its cap, so the restart measures the worst case.
  await new Promise((resolve) => setTimeout(resolve, 3_000))
  await redis.restart()
  const recovered = await timeUntil(() => app.redisState.status === 'connected', 1_500, 'connected after restart')
  t.equal(app.redisState.reconnects, 1)
  t.comment(`detection ${detected}ms, recovery ${recovered}ms after the restart`)

  const changes = logs().slice(linesBefore).filter((line) => line.msg?.startsWith('Redis '))
  t.same(changes.map((line) => line.msg), ['Redis disconnected', 'Redis connected'], 'one log line per state change, not per failed retry')
})

t.test('SIGSTOP: commands settle within the command timeout and health leaves connected', async (t) => {
  const redis = await useRedis(t)
  const { app } = await buildTestApp(t, { REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT: '500ms', REDIS_PING_INTERVAL: '300ms', REDIS_PING_TIMEOUT: '200ms' })
  redis.freeze()
  t.teardown(() => redis.thaw())
  const started = Date.now()
  const settled = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => app.redis.set(`k${i}`, 'v')))
  const elapsed = Date.now() - started
  t.ok(settled.every((r) => r.status === 'rejected'), 'every command rejects')
  // Bounds with a second of slack for a loaded machine: without the timeouts the commands and the state
  // would wait for the thaw, which never comes before these deadlines.
  t.ok(elapsed <= 500 + 1_000, `settled in ${elapsed}ms (command timeout 500ms)`)
  await timeUntil(() => app.redisState.status !== 'connected', 300 + 200 + 1_000, 'left connected within ping interval + timeout')
  redis.thaw()
  await timeUntil(() => app.redisState.status === 'connected', 3_000, 'connected again after thaw')
})

t.test('unix:// sockets and valkey:// URLs connect (issue 28 item 3)', async (t) => {
  const redis = await useRedis(t, { password: 'sock-password', extraConfig: ['unixsocket redis.sock', 'unixsocketperm 700'] })
  const socket = `${redis.dir}/redis.sock`
  const { app } = await buildTestApp(t, { REDIS_URL: `unix://${socket}?db=3`, REDIS_PASSWORD: 'sock-password' })
  t.equal(app.redisState.status, 'connected')
  await app.redis.set('via-socket', '1')
  t.equal(await redis.cli('-n', '3', 'GET', 'via-socket'), '1', 'the database from ?db= is used')
  const viaValkey = await buildTestApp(t, { REDIS_URL: `valkey://:sock-password@127.0.0.1:${redis.port}/3` })
  t.equal(await viaValkey.app.redis.get('via-socket'), '1')
})
