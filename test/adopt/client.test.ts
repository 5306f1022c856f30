// Issue 26 item 3: the plugins and createCache take an app's own ioredis client, and the suite's
// commands on it stay bounded by the suite's command timeout whatever the client's settings (a
// default ioredis client queues commands while Redis is down and retries each 20 times: ~70 s).
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import redisSuite, { createCache, cachePlugin, configPlugin, locksPlugin, pubsubPlugin, rateLimitPlugin, redisPlugin, sessionPlugin } from '../../index.js'
import { useRedis } from '../helpers/index.js'

const TIMEOUT = 300
// The bound: REDIS_COMMAND_TIMEOUT + 100 ms. A loaded CI machine can run any timer late, the
// suite's as well as a reference one, so the bound is measured from a reference timer of TIMEOUT ms armed
// at the same moment: the read must answer within 100 ms of when that timer actually fired. An unbounded
// read reaches `elapsed`'s limit (TIMEOUT + 2 s) instead.
const BOUND = 100

/**
 * How long `read` took (or `limit` when it had not answered by then: the unbounded case), and how late
 * a TIMEOUT ms timer armed with it fired: the machine's own scheduling delay, not the suite's.
 */
async function elapsed (read: () => Promise<unknown>, limit: number): Promise<{ ms: number, value: unknown, late: number }> {
  const started = performance.now()
  let late = 0
  const reference = setTimeout(() => { late = performance.now() - started - TIMEOUT }, TIMEOUT)
  let timer: NodeJS.Timeout | undefined
  const value = await Promise.race([read(), new Promise((resolve) => { timer = setTimeout(() => resolve('no answer'), limit) })])
  const ms = performance.now() - started
  clearTimeout(timer)
  if (ms < TIMEOUT) clearTimeout(reference)
  else await new Promise((resolve) => setImmediate(resolve)) // the reference fired first (same timer list); let its callback be seen
  return { ms, value, late: Math.max(0, late) }
}

/** The bound on an answer, plus the machine's measured scheduling delay. */
function within (t: Test, measured: { ms: number, late: number }): void {
  const bound = TIMEOUT + BOUND + measured.late
  t.ok(measured.ms <= bound, `answered in ${Math.round(measured.ms)} ms (bound ${TIMEOUT} + ${BOUND} ms, + ${Math.round(measured.late)} ms the reference timer ran late)`)
}

function defaultClient (t: { teardown: (fn: () => unknown) => void }, port: number): Redis {
  const client = new Redis({ port, host: '127.0.0.1' }) // ioredis defaults: offline queue, 20 retries, no commandTimeout
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  return client
}

t.test('createCache on a default-options client: a read with Redis killed is a miss within commandTimeout', async (t) => {
  const redis = await useRedis(t)
  const client = defaultClient(t, redis.port)
  const cache = createCache({ redis: client, commandTimeout: TIMEOUT, memory: false })
  t.teardown(() => cache.close())
  await cache.set('k', 'v')
  t.equal(await cache.get('k'), 'v', 'served from Redis while it runs')
  await redis.kill()
  const read = await elapsed(() => cache.get('k'), TIMEOUT + 2_000)
  t.equal(read.value, undefined, 'a miss, not an error')
  within(t, read)
  t.equal(client.options.commandTimeout, undefined, 'the app\'s client itself is unchanged')
})

t.test('cachePlugin with client: a read with Redis killed answers within REDIS_COMMAND_TIMEOUT; the client is left open at close', async (t) => {
  const redis = await useRedis(t)
  const client = defaultClient(t, redis.port)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(configPlugin, { env: { NODE_ENV: 'test', REDIS_URL: `redis://127.0.0.1:${redis.port}`, REDIS_COMMAND_TIMEOUT: `${TIMEOUT}ms` }, processEnv: false })
  await app.register(redisPlugin, { client })
  await app.register(cachePlugin, { client, memory: false })
  await app.ready()
  t.equal(app.redis, client, 'app.redis is the app\'s client: the suite opened no connection of its own')
  await app.cache.set('k', 'v')
  t.equal(await app.cache.get('k'), 'v')
  await app.close()
  t.equal(await client.ping(), 'PONG', 'the app\'s client is still open after app.close()')

  const second = Fastify()
  t.teardown(() => second.close())
  await second.register(redisSuite, { env: { NODE_ENV: 'test', REDIS_URL: `redis://127.0.0.1:${redis.port}`, REDIS_COMMAND_TIMEOUT: `${TIMEOUT}ms` }, processEnv: false, redis: { client }, cache: { memory: false } })
  await second.ready()
  t.equal(second.redis, client, 'the suite runs on the app\'s client')
  await second.cache.set('k2', 'v2')
  await redis.kill()
  const read = await elapsed(() => second.cache.get('k2'), TIMEOUT + 2_000)
  t.equal(read.value, undefined, 'a miss')
  within(t, read)
  const locked = await elapsed(() => second.locks.tryAcquire('job', { ttl: '5s' }).then(() => 'acquired', (err: Error) => err.name), TIMEOUT + 2_000)
  t.not(locked.value, 'no answer', `a lock attempt answers too (${String(locked.value)} in ${Math.round(locked.ms)} ms)`)
})

t.test('each feature plugin takes its own client: its keys land on that server, none on the suite\'s', async (t) => {
  const suiteServer = await useRedis(t)
  const appServer = await useRedis(t)
  const client = defaultClient(t, appServer.port)
  // Connected, as an app's client is by the time it registers plugins: the rate limiter waits at boot
  // for its budget connection only when the client it is given is ready (one still connecting may be a
  // Redis that is down), so a first request could otherwise be decided in process, with no key written.
  if (client.status !== 'ready') await new Promise((resolve) => client.once('ready', resolve))
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(configPlugin, { env: { NODE_ENV: 'test', REDIS_URL: `redis://127.0.0.1:${suiteServer.port}`, SESSION_SECRET: 'a-session-secret-of-at-least-32-characters' }, processEnv: false })
  await app.register(redisPlugin)
  await app.register(cachePlugin, { client })
  await app.register(sessionPlugin, { client })
  await app.register(rateLimitPlugin, { client })
  await app.register(pubsubPlugin, { client })
  await app.register(locksPlugin, { client })
  app.get('/login', { config: { session: true } }, async (request) => {
    request.session.set('userId', 'u1')
    return { ok: true }
  })
  await app.ready()
  t.equal((await app.inject('/login')).statusCode, 200)
  await app.cache.set('k', 'v')
  t.ok(await app.locks.tryAcquire('job', { ttl: '5s' }), 'lock taken')
  let deliver: (message: unknown) => void = () => {}
  const received = new Promise((resolve) => { deliver = resolve })
  await app.pubsub.subscribe('news', (message) => deliver(message)) // resolves once SUBSCRIBE is acknowledged
  await app.pubsub.publish('news', { hello: 'world' })
  t.same(await received, { hello: 'world' }, 'pub/sub through the app\'s client and its duplicate')
  const keys = (await appServer.cli('KEYS', '*')).split('\n').sort()
  for (const kind of [/cache:/, /sess/, /rl:|rate/, /lock/]) t.ok(keys.some((key) => kind.test(key)), `a ${String(kind)} key on the app's server`)
  t.equal(await suiteServer.cli('DBSIZE'), '0', 'no key on the suite\'s own server')
})

t.test('a REDIS_KEY_PREFIX the app\'s client would not honour stops registration, naming both', async (t) => {
  const redis = await useRedis(t)
  const client = defaultClient(t, redis.port)
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => { await app.register(redisSuite, { env: { NODE_ENV: 'test', REDIS_KEY_PREFIX: 'shop:' }, processEnv: false, redis: { client } }).ready() },
    /REDIS_KEY_PREFIX=shop: is set, but the client passed as redis.client has keyPrefix "": .*Give the client keyPrefix: "shop:"/)
  const prefixed = new Redis({ port: redis.port, host: '127.0.0.1', keyPrefix: 'shop:' })
  prefixed.on('error', () => {})
  t.teardown(() => prefixed.disconnect())
  const ok = Fastify()
  t.teardown(() => ok.close())
  await ok.register(redisSuite, { env: { NODE_ENV: 'test', REDIS_KEY_PREFIX: 'shop:' }, processEnv: false, redis: { client: prefixed } })
  await ok.ready()
  await ok.cache.set('k', 1)
  t.match(await redis.cli('--scan', '--pattern', 'shop:cache:*'), /shop:cache:e:/, 'the suite\'s keys under the prefix')
})
