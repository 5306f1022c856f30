// Issue 26 item 3 on Cluster: "every plugin accepts an existing ioredis Redis or Cluster". The suite on
// an app's own default-options Cluster client: app.redis is that client, the cache, sessions, locks and
// pub/sub work through it (and its duplicate for SUBSCRIBE), a redisConnections.create() connection has
// no key prefix, and the client is left open at close.
import t from 'tap'
import Fastify from 'fastify'
import { Cluster } from 'ioredis'
import { useCluster } from '../helpers/index.js'
import redisSuite from '../../index.js'
import { stopSlotsRefreshOnClose } from '../../lib/redis/index.js'

t.test('the suite on an app\'s Cluster client: cache, sessions, locks and pub/sub through it; left open at close', async (t) => {
  const cluster = await useCluster(t)
  // Closed during a slots refresh, an ioredis Cluster keeps refreshing for ever (lib/redis/cluster-close.ts).
  const client = stopSlotsRefreshOnClose(new Cluster(cluster.startupNodes))
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  await new Promise((resolve) => client.once('ready', resolve))
  const app = Fastify()
  t.teardown(() => app.close())
  const nodes = cluster.startupNodes.map((a) => `${a.host}:${a.port}`).join(',')
  await app.register(redisSuite, {
    env: { NODE_ENV: 'test', REDIS_CLUSTER_NODES: nodes, SESSION_SECRET: 'a-session-secret-of-at-least-32-characters', RATE_LIMIT_GLOBAL: 'false', METRICS_ENABLED: 'false' },
    processEnv: false,
    redis: { client }
  })
  app.post('/login', { config: { session: true } }, async (request) => {
    request.session.set('userId', 'u1')
    return { ok: true }
  })
  app.get('/me', { config: { session: true } }, async (request) => ({ userId: request.session.get('userId') ?? null }))
  await app.ready()
  t.equal(app.redis, client, 'app.redis is the app\'s Cluster client')
  t.equal(app.redisState.mode, 'cluster')

  await app.cache.set('k', { v: 1 })
  t.same(await app.cache.get('k'), { v: 1 }, 'the cache')
  const login = await app.inject({ method: 'POST', url: '/login' })
  const sid = login.cookies.find((c) => c.name === 'sid')?.value ?? ''
  t.same((await app.inject({ url: '/me', cookies: { sid } })).json(), { userId: 'u1' }, 'a session stored and read back')
  t.ok(await app.locks.tryAcquire('job', { ttl: '5s' }), 'a lock')
  let deliver: (message: unknown) => void = () => {}
  const received = new Promise((resolve) => { deliver = resolve })
  await app.pubsub.subscribe('news', (message) => deliver(message))
  await app.pubsub.publish('news', { hello: 'world' })
  t.same(await received, { hello: 'world' }, 'pub/sub through the client and its duplicate')
  const other = app.redisConnections.create('other-library') as Cluster
  t.equal(other.options.keyPrefix ?? '', '', 'a connection for another library: no key prefix')

  await app.close()
  t.equal(await client.set('still-open', '1'), 'OK', 'the app\'s client is still open after app.close()')
})
