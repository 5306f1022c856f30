// TLS, mutual TLS, Sentinel and Cluster against real redis-server processes.
import t from 'tap'
import type { Redis } from 'ioredis'
import { useRedis, useSentinelGroup, useCluster, waitFor } from '../helpers/index.js'
import { buildServer } from '../../server.js'
import { buildTestApp, timeUntil } from '../helper.js'

t.test('TLS with CA verification connects; an unknown CA is refused; plaintext to the TLS port fails clearly', async (t) => {
  const redis = await useRedis(t, { tls: true })
  const certs = redis.certificates!
  const { app } = await buildTestApp(t, { REDIS_URL: `rediss://127.0.0.1:${redis.port}`, REDIS_TLS_CA: certs.ca.certFile })
  t.equal(app.redisState.status, 'connected')
  t.equal(await app.redis.ping(), 'PONG')

  await t.rejects(buildServer({ env: { NODE_ENV: 'test', REDIS_URL: `rediss://127.0.0.1:${redis.port}`, REDIS_TLS_CA: certs.otherCa.cert, REDIS_CONNECT_TIMEOUT: '2s' }, logger: false }),
    { code: 'FRS_REDIS_UNAVAILABLE', message: /failed TLS verification .*set REDIS_TLS_CA/ }, 'a certificate from an unknown CA is refused')

  await t.rejects(buildServer({ env: { NODE_ENV: 'test', REDIS_URL: `redis://127.0.0.1:${redis.port}`, REDIS_CONNECT_TIMEOUT: '1s' }, logger: false }),
    { code: 'FRS_REDIS_UNAVAILABLE', message: /use rediss:\/\/ or REDIS_TLS=true/ }, 'plaintext to a TLS port names the fix')
})

t.test('mutual TLS: a client certificate is required and presented', async (t) => {
  const redis = await useRedis(t, { tls: { requireClientCert: true } })
  const certs = redis.certificates!
  const { app } = await buildTestApp(t, {
    REDIS_HOST: '127.0.0.1',
    REDIS_PORT: String(redis.port),
    REDIS_TLS: 'true',
    REDIS_TLS_CA: certs.ca.cert,
    REDIS_TLS_CERT: certs.client.certFile,
    REDIS_TLS_KEY: certs.client.keyFile,
    REDIS_TLS_SERVERNAME: 'localhost'
  })
  t.equal(app.redisState.status, 'connected')
  t.equal(await app.redis.set('k', 'v'), 'OK')
  await t.rejects(buildServer({ env: { NODE_ENV: 'test', REDIS_URL: `rediss://127.0.0.1:${redis.port}`, REDIS_TLS_CA: certs.ca.cert, REDIS_CONNECT_TIMEOUT: '1s' }, logger: false }),
    { code: 'FRS_REDIS_UNAVAILABLE' }, 'without a client certificate the server refuses')
})

t.test('Sentinel: connects to the master; after SIGKILL of the master, writes resume on the promoted replica', async (t) => {
  const group = await useSentinelGroup(t, { password: 'sentinel-group-pw' })
  const env = {
    REDIS_SENTINELS: group.sentinelAddresses.map((a) => `${a.host}:${a.port}`).join(','),
    REDIS_SENTINEL_NAME: group.name,
    REDIS_PASSWORD: 'sentinel-group-pw'
  }
  const { app } = await buildTestApp(t, env)
  // A second instance, to see the cache's invalidations cross over after the failover.
  const other = (await buildTestApp(t, env)).app
  t.equal(app.redisState.status, 'connected')
  t.equal(app.redisState.mode, 'sentinel')
  // Our Sentinel watch holds and moves the main client only; its copies (rate limiter, subscriber,
  // stream readers, cache) keep ioredis' failoverDetector so they never write to a demoted master.
  const main = app.redisConnections.main as Redis
  t.equal(main.options.failoverDetector, false, 'the main client is moved by the watch')
  const copy = main.duplicate({ lazyConnect: true })
  t.equal(copy.options.failoverDetector, true, 'a copy keeps ioredis\' failoverDetector')
  copy.disconnect()
  await app.redis.set('before', '1')

  await group.master.kill()
  const killedAt = Date.now()
  // Sentinel needs down-after (1 s) plus an election; measure until a write succeeds again.
  await timeUntil(async () => (await app.redis.set('after', '1').catch(() => null)) === 'OK', 15_000, 'writes resume after failover')
  const resumed = Date.now() - killedAt
  t.equal(app.redisState.status === 'disconnected', false)
  t.equal(await app.redis.get('before'), '1', 'data replicated before the kill is there')
  // The client follows the promoted replica as soon as it answers as a master, up to a second before
  // the Sentinels name it: wait for their view too.
  await waitFor(async () => (await group.getMasterAddress()).port === group.replica.port, { timeoutMs: 10_000, what: 'the Sentinels name the promoted replica' })
  t.equal((await app.redis.info('server')).includes(`tcp_port:${group.replica.port}`), true, 'the client writes to the promoted replica')
  t.comment(`writes resumed ${resumed}ms after SIGKILL of the master`)

  // The subscriber connections (ioredis' failoverDetector, autoResubscribe off) find the new master
  // and the cache's bus subscribes again there: a write after the failover reaches the other instance.
  await waitFor(async () => await group.replica.cli('PUBSUB', 'NUMSUB', 'cache:invalidate') === 'cache:invalidate\n2', { timeoutMs: 10_000, what: 'both instances subscribed on the promoted replica' })
  await timeUntil(async () => (await app.cache.set('k', 'one').then(() => other.cache.get('k'))) === 'one', 5_000, 'the other instance reads the entry')
  await app.cache.set('k', 'two')
  await timeUntil(async () => (await other.cache.get('k')) === 'two', 2_000, 'the write after the failover invalidated the other instance\'s memory copy')
  t.pass('cache invalidations cross instances after the failover')
})

t.test('Cluster: connects; after SIGKILL of a master, commands resume once its replica takes over', async (t) => {
  const cluster = await useCluster(t)
  const { app } = await buildTestApp(t, {
    REDIS_CLUSTER_NODES: cluster.startupNodes.map((a) => `${a.host}:${a.port}`).join(',')
  })
  t.equal(app.redisState.status, 'connected')
  t.equal(app.redisState.mode, 'cluster')
  const keys = Array.from({ length: 30 }, (_, i) => `key-${i}`)
  const direct = app.redis as unknown as { set: (k: string, v: string) => Promise<string> }
  // No prefix and no hash tag: the keys spread over every master, so the victim owns some of them.
  for (const key of keys) await direct.set(key, 'v')
  const [victim] = await cluster.masters()
  await victim!.kill()
  const killedAt = Date.now()
  await timeUntil(async () => {
    const results = await Promise.allSettled(keys.map((key) => direct.set(key, 'v2')))
    return results.every((r) => r.status === 'fulfilled')
  }, 15_000, 'all slots writable again')
  t.comment(`every key writable again ${Date.now() - killedAt}ms after SIGKILL of a master`)
  await timeUntil(() => app.redisState.status === 'connected', 10_000, 'state connected again')
  t.pass('cluster recovered')
})
