// DESIGN.md §3: TLS, when configured, applies to every connection in every topology. Each group here
// speaks TLS only on its data nodes, so a plaintext connection anywhere would fail the test.
import t from 'tap'
import { buildConnectionPlan } from '../../lib/redis/options.js'
import { loadConfig } from '../../lib/config/load.js'
import { useCluster, useSentinelGroup } from '../helpers/index.js'
import { waitFor } from '../helpers/wait.js'
import { buildTestApp } from '../helper.js'

t.test('plan: TLS to the data nodes follows REDIS_TLS, TLS to the Sentinels follows REDIS_SENTINEL_TLS', async (t) => {
  const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'
  const plan = (env: Record<string, string>) => {
    const built = buildConnectionPlan(loadConfig({ env: { NODE_ENV: 'test', REDIS_SENTINELS: 's1:26379', REDIS_TLS_CA: pem, ...env } }))
    if (built.mode !== 'sentinel') throw new Error('expected a sentinel plan')
    return built.options
  }
  const dataOnly = plan({ REDIS_TLS: 'true' })
  t.equal(dataOnly.enableTLSForSentinelMode, true, 'master and replicas over TLS')
  t.match(dataOnly.tls, { ca: pem, rejectUnauthorized: true })
  t.equal(dataOnly.sentinelTLS, undefined, 'Sentinels in plain text, as REDIS_SENTINEL_TLS says')
  const viaUrl = plan({ REDIS_URL: 'rediss://:pw@ignored:6379' })
  t.equal(viaUrl.enableTLSForSentinelMode, true, 'rediss:// asks for TLS to the data nodes too')
  const sentinelsOnly = plan({ REDIS_SENTINEL_TLS: 'true' })
  t.equal(sentinelsOnly.enableTLSForSentinelMode, false)
  t.equal(sentinelsOnly.tls, undefined)
  t.match(sentinelsOnly.sentinelTLS, { ca: pem, rejectUnauthorized: true }, 'Sentinel TLS verifies with the same CA')
  const both = plan({ REDIS_TLS: 'true', REDIS_SENTINEL_TLS: 'true' })
  t.equal(both.enableTLSForSentinelMode, true)
  t.match(both.sentinelTLS, { ca: pem })
})

t.test('Sentinel: plain Sentinels, TLS-only master: REDIS_TLS=true reaches the master over TLS', async (t) => {
  const group = await useSentinelGroup(t, { password: 'tls-group-pw', tls: true })
  const { app } = await buildTestApp(t, {
    REDIS_SENTINELS: group.sentinelAddresses.map((a) => `${a.host}:${a.port}`).join(','),
    REDIS_SENTINEL_NAME: group.name,
    REDIS_PASSWORD: 'tls-group-pw',
    REDIS_TLS: 'true',
    REDIS_TLS_CA: group.certificates!.ca.certFile
  })
  t.equal(app.redisState.status, 'connected')
  t.equal(app.redisState.mode, 'sentinel')
  t.equal(await app.redis.set('over-tls', '1'), 'OK')
  t.equal(await group.master.cli('GET', 'over-tls'), '1', 'the write reached the TLS-only master')
  const clients = await group.master.cli('CLIENT', 'LIST')
  t.match(clients, /name=fastify-redis-suite/, 'the suite\'s connection is on the master')
  // The dedicated subscriber connection (pub/sub, the cache's invalidations) is a second link to the
  // TLS-only master: a message only comes back if it connected over TLS too.
  const received: unknown[] = []
  const unsubscribe = await app.pubsub.subscribe('tls-events', (message) => { received.push(message) })
  t.equal(await app.pubsub.publish('tls-events', { n: 1 }), 1, 'one subscriber on the master')
  await waitFor(() => received.length === 1, { timeoutMs: 2_000, what: 'the message over the subscriber connection' })
  await unsubscribe()
  t.ok((await group.master.cli('CLIENT', 'LIST')).split('\n').some((line) => / sub=1 /.test(line)), 'a subscribed client on the master')
})

t.test('Sentinel: TLS-only Sentinels and master: REDIS_SENTINEL_TLS=true and REDIS_TLS=true', async (t) => {
  const group = await useSentinelGroup(t, { password: 'tls-group-pw', tls: { sentinels: true } })
  const { app } = await buildTestApp(t, {
    REDIS_SENTINELS: group.sentinelAddresses.map((a) => `${a.host}:${a.port}`).join(','),
    REDIS_SENTINEL_NAME: group.name,
    REDIS_PASSWORD: 'tls-group-pw',
    REDIS_TLS: 'true',
    REDIS_SENTINEL_TLS: 'true',
    REDIS_TLS_CA: group.certificates!.ca.cert
  })
  t.equal(app.redisState.status, 'connected')
  t.equal(await app.redis.set('all-tls', '1'), 'OK')
})

t.test('Cluster: TLS-only nodes, one startup node: the discovered nodes are reached over TLS too', async (t) => {
  const cluster = await useCluster(t, { tls: true, replicasPerMaster: 0 })
  const [seed] = cluster.startupNodes
  const { app } = await buildTestApp(t, {
    REDIS_CLUSTER_NODES: `${seed!.host}:${seed!.port}`,
    REDIS_TLS: 'true',
    REDIS_TLS_CA: cluster.nodes[0]!.certificates!.ca.certFile,
    REDIS_DEGRADED_LATENCY: '10s' // a TLS handshake per node on a busy machine is not what this tests
  })
  t.equal(app.redisState.status, 'connected')
  t.equal(app.redisState.mode, 'cluster')
  // No prefix and no hash tag: keys spread over every master, including the ones only discovered.
  const direct = app.redis as unknown as { set: (k: string, v: string) => Promise<string>, get: (k: string) => Promise<string | null> }
  const keys = Array.from({ length: 30 }, (_, i) => `tls-key-${i}`)
  for (const key of keys) t.equal(await direct.set(key, 'v'), 'OK')
  const holders = await Promise.all(cluster.nodes.map(async (node) => Number(await node.cli('DBSIZE'))))
  t.ok(holders.filter((n) => n > 0).length === cluster.nodes.length, `every node holds keys (${holders.join(', ')})`)
})
