import t from 'tap'
import { Counter, Registry } from 'prom-client'
import { Cluster, Redis } from 'ioredis'
import { BoundedLabel, CumulativeCounter, SuiteMetrics, bearerTokenMatches, classifyCommandError, traceRedisCommands } from '../../../lib/metrics/index.js'
import type { RedisState } from '../../../lib/redis/monitor.js'
import { checkServerSettings, stopSlotsRefreshOnClose } from '../../../lib/redis/index.js'
import { useCluster, useRedis } from '../../helpers/index.js'
import { sample } from '../../monitoring/prom.js'

const connected = (): RedisState => ({ status: 'connected', mode: 'standalone', latencyMs: 2, reconnects: 0, since: 0 })

t.test('CumulativeCounter adds only the growth, and all of it after a source restart', async (t) => {
  const registry = new Registry()
  const counter = new Counter({ name: 'x_total', help: 'x', labelNames: ['k'], registers: [registry] })
  const cumulative = new CumulativeCounter(counter)
  const value = async () => sample(await registry.metrics(), 'x_total', { k: 'a' })
  cumulative.sync({ k: 'a' }, 0)
  t.equal(await value(), 0, 'the series exists from its first sync')
  cumulative.sync({ k: 'a' }, 5)
  cumulative.sync({ k: 'a' }, 5)
  t.equal(await value(), 5)
  cumulative.sync({ k: 'a' }, 7)
  t.equal(await value(), 7)
  cumulative.sync({ k: 'a' }, 2) // the source restarted from zero and counted 2 since
  t.equal(await value(), 9, 'never decreases')
  cumulative.sync({ k: 'a' }, 'nope')
  cumulative.sync({ k: 'a' }, Number.NaN)
  cumulative.sync({ k: 'a' }, -1)
  t.equal(await value(), 9, 'non-numbers ignored')
})

t.test('BoundedLabel folds values past its bound into other', async (t) => {
  const label = new BoundedLabel(2)
  t.same(['a', 'b', 'c', 'a', 'd'].map((v) => label.value(v)), ['a', 'b', 'other', 'a', 'other'])
})

t.test('bearerTokenMatches', async (t) => {
  const token = 'a-long-enough-token'
  t.ok(bearerTokenMatches(`Bearer ${token}`, token))
  t.ok(bearerTokenMatches(`bearer ${token}`, token), 'the scheme is case-insensitive')
  t.notOk(bearerTokenMatches(undefined, token))
  t.notOk(bearerTokenMatches('', token))
  t.notOk(bearerTokenMatches(token, token), 'the scheme is required')
  t.notOk(bearerTokenMatches(`Bearer ${token}x`, token))
  t.notOk(bearerTokenMatches(`Bearer ${token.slice(0, -1)}`, token))
  t.notOk(bearerTokenMatches(`Basic ${token}`, token))
  t.notOk(bearerTokenMatches(`Bearer ${token} extra`, token))
})

t.test('SuiteMetrics: a failing source is reported and skipped; the others still scrape', async (t) => {
  const failures: string[] = []
  const metrics = new SuiteMetrics({
    processMetrics: false,
    onSourceError: (source) => failures.push(source),
    sources: {
      redisState: connected,
      cacheStats: () => { throw new Error('boom') },
      rateLimitStats: () => ({ allowed: 4, limited: 1, dryRunRefused: 2 }),
      sessionStats: async () => ({ loads: 3, saves: 1, errors: 0, regenerations: 2, active: null })
    }
  })
  const text = await metrics.metrics()
  t.same(failures, ['cache'])
  await metrics.metrics()
  t.same(failures, ['cache'], 'reported once, not at every scrape')
  t.equal(sample(text, 'rate_limit_decisions_total', { outcome: 'allowed' }), 4)
  t.equal(sample(text, 'rate_limit_decisions_total', { outcome: 'open' }), 0, 'missing fields count as zero')
  t.equal(sample(text, 'rate_limit_dry_run_refusals_total'), 2, 'what dry-run policies would have refused')
  t.equal(sample(text, 'session_loads_total'), 3, 'async stats are awaited')
  t.equal(sample(text, 'session_events_total', { event: 'regenerations' }), 2, 'unknown numeric fields are kept, by event')
  t.equal(sample(text, 'session_active'), undefined, 'active unknown (null): no sample')
  t.equal(sample(text, 'redis_client_ping_latency_seconds'), 0.002)
  t.equal(sample(text, 'process_cpu_seconds_total'), undefined, 'process metrics can be left out')
})

t.test('SuiteMetrics: features that are not registered have no series; command names are bounded', async (t) => {
  const metrics = new SuiteMetrics({ processMetrics: false, sources: { redisState: () => ({ ...connected(), latencyMs: null }) } })
  for (let i = 0; i < 150; i++) metrics.observeRedisCommand('main', `custom${i}`, 0.001, undefined)
  metrics.observeRedisCommand('main', 'GET', 0.001, 'timeout')
  const text = await metrics.metrics()
  t.notOk(/^# TYPE (cache_|session_|rate_limit_)/m.test(text))
  t.equal(sample(text, 'redis_client_ping_latency_seconds'), undefined, 'no PING yet: no sample')
  t.equal(sample(text, 'redis_client_command_duration_seconds_count', { command: 'other' }), 51, '100 names kept, the rest folded')
  t.equal(sample(text, 'redis_client_command_errors_total', { command: 'other', error: 'timeout' }), 1)
})

t.test('classifyCommandError', async (t) => {
  const reply = new Error('WRONGTYPE Operation against a key holding the wrong kind of value')
  reply.name = 'ReplyError'
  t.equal(classifyCommandError(reply), 'reply')
  t.equal(classifyCommandError(new Error('Command timed out')), 'timeout')
  t.equal(classifyCommandError(new Error('Connection is closed.')), 'connection')
  t.equal(classifyCommandError(new Error('something else')), 'other')
  t.equal(classifyCommandError('not an error'), 'other')
})

t.test('traceRedisCommands: only the traced servers, timeouts classified, nothing after stop', async (t) => {
  const [a, b] = await Promise.all([useRedis(t), useRedis(t)])
  const clientA = new Redis({ port: a.port, host: '127.0.0.1', commandTimeout: 200, lazyConnect: true })
  const clientB = new Redis({ port: b.port, host: '127.0.0.1', lazyConnect: true })
  clientA.on('error', () => {})
  t.teardown(() => { clientA.disconnect(); clientB.disconnect() })
  await Promise.all([clientA.connect(), clientB.connect()])
  const seen: Array<[string, string, string | undefined]> = []
  const stop = traceRedisCommands([{ name: 'main', client: clientA }], (connection, command, seconds, error) => {
    t.ok(seconds >= 0 && seconds < 5)
    seen.push([connection, command, error])
  })
  await clientA.set('k', 'v')
  await clientB.get('k')
  a.freeze()
  await t.rejects(clientA.get('k'), /timed out/)
  a.thaw()
  t.same(seen, [['main', 'set', undefined], ['main', 'get', 'timeout']])
  stop()
  await clientA.get('k')
  t.equal(seen.length, 2, 'unsubscribed')
})

t.test('traceRedisCommands: capability probes refused by the server or the ACL are not command errors (issue 28 item 5)', async (t) => {
  const redis = await useRedis(t, { acl: [{ username: 'app', password: 'probe-password-123', rules: '~* -@all +hello +ping +info +client|setname +get' }] })
  const client = new Redis({ port: redis.port, host: '127.0.0.1', username: 'app', password: 'probe-password-123', lazyConnect: true })
  client.on('error', () => {})
  t.teardown(() => { client.disconnect() })
  const seen: Array<[string, string | undefined]> = []
  const stop = traceRedisCommands([{ name: 'main', client }], (_connection, command, _seconds, error) => { seen.push([command, error]) })
  t.teardown(stop)
  // Traced from the first connect: ioredis' CLIENT SETINFO is refused (by the ACL here; by Redis 7.0 itself).
  await client.connect()
  t.same(await checkServerSettings(client, { warn: () => {}, debug: () => {} }), [], 'CONFIG GET refused, INFO answered: no warning for the default policy')
  await t.rejects(client.call('CONFIG', 'GET', 'maxclients'), /NOPERM/)
  t.same(seen.filter(([, error]) => error !== undefined).map(([command, error]) => [command.toLowerCase(), error]), [['config', 'reply']], 'only the app\'s own CONFIG GET counts as an error')
})

t.test('traceRedisCommands on a Cluster: commands to every master count for its connection, others not', async (t) => {
  const [cluster, other] = await Promise.all([useCluster(t, { masters: 3, replicasPerMaster: 0 }), useRedis(t)])
  const client = stopSlotsRefreshOnClose(new Cluster(cluster.startupNodes)) // lib/redis/cluster-close.ts
  const outside = new Redis({ port: other.port, host: '127.0.0.1' })
  t.teardown(() => { client.disconnect(); outside.disconnect() })
  await client.set('warm', '1') // the slot map is known, so every node is in the traced set
  const seen: Array<[string, string]> = []
  const stop = traceRedisCommands([{ name: 'cluster', client }], (connection, command) => { seen.push([connection, command]) })
  t.teardown(stop)
  // Keys spread over the three masters, interleaved with a server outside the cluster: the remembered
  // last address switches back and forth and must never carry one server's name to another.
  const keys = Array.from({ length: 30 }, (_, i) => `key-${i}`)
  for (const key of keys) {
    await client.set(key, 'v')
    await outside.get(key)
  }
  const sizes = await Promise.all(client.nodes('master').map((node) => node.dbsize()))
  t.ok(sizes.filter((size) => size > 0).length >= 2, `the keys reached several masters (${sizes.join(', ')})`)
  t.same([...new Set(seen.map(([connection]) => connection))], ['cluster'], 'one connection name')
  t.equal(seen.filter(([, command]) => command === 'set').length, keys.length, 'each SET on the cluster counted once')
  t.equal(seen.filter(([, command]) => command === 'get').length, 0, 'no GET of the server outside it')
})
