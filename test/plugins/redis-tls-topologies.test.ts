// DESIGN.md §3: TLS, when configured, applies to every connection in every topology. Each group here
// speaks TLS only on its data nodes, so a plaintext connection anywhere would fail the test.
import t from 'tap'
import { buildConnectionPlan } from '../../lib/redis/options.js'
import { loadConfig } from '../../lib/config/load.js'
import { TLSSocket } from 'node:tls'
import { parseInfo, sleep, useCluster, useSentinelGroup } from '../helpers/index.js'
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

// Issue 19 on the TLS-only setup: the Sentinel watch (TLS to the Sentinels) announces the failover,
// the promotion poll asks the promoted replica INFO replication over TLS (it only listens on TLS), and
// the client moves there over TLS before +switch-master, with writes in flight all along.
t.test('Sentinel: TLS-only Sentinels and master: a planned SENTINEL FAILOVER under writes moves the client over TLS, 0 failed writes', async (t) => {
  const group = await useSentinelGroup(t, { password: 'tls-group-pw', tls: { sentinels: true } })
  const { app, logs } = await buildTestApp(t, {
    REDIS_SENTINELS: group.sentinelAddresses.map((a) => `${a.host}:${a.port}`).join(','),
    REDIS_SENTINEL_NAME: group.name,
    REDIS_PASSWORD: 'tls-group-pw',
    REDIS_TLS: 'true',
    REDIS_SENTINEL_TLS: 'true',
    REDIS_TLS_CA: group.certificates!.ca.cert,
    REDIS_FAILOVER_WAIT: '2s',
    REDIS_DEGRADED_LATENCY: '10s' // TLS handshakes on a busy machine are not what this tests
  })
  t.equal(app.redisState.status, 'connected')
  const runId = async (cli: (...args: string[]) => Promise<string>): Promise<string | undefined> => parseInfo(await cli('INFO', 'server')).get('run_id')
  const [oldMaster, newMaster] = [await runId((...a) => group.master.cli(...a)), await runId((...a) => group.replica.cli(...a))]
  t.equal(await runId((...a) => app.redis.call(a[0]!, ...a.slice(1)) as Promise<string>), oldMaster, 'the client starts on the TLS-only master')

  // A write every 5 ms (SET of its own key + INCR of one counter), none awaited before the next.
  interface Outcome { i: number, ok: boolean, error?: string, startedAt: number, ms: number }
  const outcomes: Array<Promise<Outcome>> = []
  const state = { stop: false }
  const load = (async () => {
    for (let i = 0; !state.stop; i++) {
      const startedAt = Date.now()
      outcomes.push(Promise.all([app.redis.set(`tls-fo:${i}`, String(i)), app.redis.incr('tls-fo:count')]).then(
        () => ({ i, ok: true, startedAt, ms: Date.now() - startedAt }),
        (err: Error) => ({ i, ok: false, error: err.message, startedAt, ms: Date.now() - startedAt })))
      await sleep(5)
    }
  })()
  await sleep(500)
  const failoverAt = Date.now()
  t.equal(await group.sentinels[0]!.cli('SENTINEL', 'FAILOVER', group.name), 'OK')
  await waitFor(async () => (await group.getMasterAddress()).port === group.replica.port, { timeoutMs: 20_000, what: 'the Sentinels name the new master' })
  await waitFor(async () => app.redis.status === 'ready' && parseInfo(await app.redis.info('server')).get('run_id') === newMaster,
    { timeoutMs: 20_000, what: 'the client reaches the new master' })
  await sleep(500) // writes served by the new master
  state.stop = true
  await load
  const results = await Promise.all(outcomes)
  const failed = results.filter((r) => !r.ok)
  const moved = logs().find((l) => /promoted replica answers as master/.test(l.msg ?? ''))
  const values = await app.redis.mget(results.map((r) => `tls-fo:${r.i}`))
  const lost = results.filter((r, n) => r.ok && values[n] !== String(r.i))
  t.comment(`${results.length} writes (SET + INCR), ${failed.length} failed, ${lost.length} lost; longest ${Math.max(...results.map((r) => r.ms))} ms; ` +
    `client moved ${moved === undefined ? '-' : Number(moved.time) - failoverAt} ms after SENTINEL FAILOVER`)
  if (failed.length > 0) t.comment(`failures: ${[...new Set(failed.map((r) => r.error))].slice(0, 3).join(' | ')}`)

  t.equal(failed.length, 0, 'no write failed')
  t.equal(lost.length, 0, 'no acknowledged write lost')
  t.equal(await app.redis.get('tls-fo:count'), String(results.length), 'every INCR counted once, on the master that stayed')
  t.ok(moved, 'the promotion poll (INFO replication to the promoted replica, over TLS) saw the promotion and the client followed it')
  t.equal(parseInfo(await app.redis.info('replication')).get('role'), 'master', 'the client is on a master')
  const stream = (app.redis as unknown as { stream?: unknown }).stream
  t.ok(stream instanceof TLSSocket && stream.encrypted, 'over TLS')
  t.match(await group.replica.cli('CLIENT', 'LIST'), /name=fastify-redis-suite/, 'the suite\'s connection is on the promoted node (TLS-only)')
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
