// Pins the bounded-behaviour overrides, so an ioredis upgrade or a refactor cannot silently undo them.
import t from 'tap'
import { loadConfig } from '../../../lib/config/load.js'
import { buildConnectionPlan, retryStrategy, parseRedisUrl } from '../../../lib/redis/options.js'

const config = (env: Record<string, string>) => loadConfig({ env: { NODE_ENV: 'test', ...env }, processEnv: false })

t.test('standalone options override the ioredis defaults that let commands wait', async (t) => {
  const plan = buildConnectionPlan(config({ REDIS_URL: 'redis://user:pw@redis.internal:6380/2' }))
  if (plan.mode === 'cluster') throw new Error('expected a standalone plan')
  t.equal(plan.mode, 'standalone')
  t.equal(plan.address, 'redis.internal:6380', 'the address used in messages has no credentials')
  t.match(plan.options, {
    host: 'redis.internal',
    port: 6380,
    db: 2,
    username: 'user',
    password: 'pw',
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: 1000,
    connectTimeout: 5000,
    lazyConnect: true
  })
  t.equal(plan.options.tls, undefined)
  t.equal(typeof plan.options.reconnectOnError, 'function')
  t.equal((plan.options.reconnectOnError as (e: Error) => unknown)(new Error('READONLY You can\'t write against a read only replica.')), 2)
})

t.test('retry: exponential from REDIS_RETRY_DELAY, capped near REDIS_RETRY_MAX_DELAY, REDIS_MAX_RETRIES honoured', async (t) => {
  const forever = retryStrategy(config({}))
  const delays = Array.from({ length: 12 }, (_, i) => forever(i + 1) as number)
  t.ok(delays[0]! >= 50 && delays[0]! <= 55, `first delay ${delays[0]}`)
  t.ok(delays[2]! >= 200 && delays[2]! <= 220)
  t.ok(delays.every((d) => d <= 1100), 'never above the cap plus 10% jitter')
  t.ok(delays[11]! >= 1000, 'reaches the cap')
  t.not(forever(10_000), null, '0 retries for ever')
  const bounded = retryStrategy(config({ REDIS_MAX_RETRIES: '3' }))
  t.type(bounded(3), 'number')
  t.equal(bounded(4), null, 'gives up after REDIS_MAX_RETRIES')
})

t.test('TLS from rediss:// or REDIS_TLS, verified by default, PEM inline or from a file', async (t) => {
  const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'
  const viaUrl = buildConnectionPlan(config({ REDIS_URL: 'rediss://h:6379', REDIS_TLS_CA: pem }))
  t.match(viaUrl.mode === 'cluster' ? {} : viaUrl.options.tls, { rejectUnauthorized: true, ca: pem })
  const viaFlag = buildConnectionPlan(config({ REDIS_HOST: 'h', REDIS_TLS: 'true', REDIS_TLS_SERVERNAME: 'redis.example' }))
  t.match(viaFlag.mode === 'cluster' ? {} : viaFlag.options.tls, { servername: 'redis.example', rejectUnauthorized: true })
  t.throws(() => buildConnectionPlan(config({ REDIS_HOST: 'h', REDIS_TLS: 'true', REDIS_TLS_CA: '/no/such/ca.pem' })),
    { code: 'FRS_REDIS_SETUP', message: /REDIS_TLS_CA must be a PEM or a readable file: cannot read \/no\/such\/ca.pem \(ENOENT\)/ })
})

t.test('Sentinel and Cluster plans', async (t) => {
  const sentinel = buildConnectionPlan(config({ REDIS_SENTINELS: 's1:26379,s2:26380', REDIS_SENTINEL_NAME: 'main', REDIS_PASSWORD: 'pw', REDIS_SENTINEL_PASSWORD: 'spw' }))
  t.equal(sentinel.mode, 'sentinel')
  t.match(sentinel.mode === 'sentinel' ? sentinel.options : {}, {
    sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26380 }],
    name: 'main',
    password: 'pw',
    sentinelPassword: 'spw',
    failoverDetector: true,
    enableOfflineQueue: false
  })
  const cluster = buildConnectionPlan(config({ REDIS_CLUSTER_NODES: 'n1:7000,n2:7001', REDIS_PASSWORD: 'pw', REDIS_COMMAND_TIMEOUT: '1s' }))
  if (cluster.mode !== 'cluster') throw new Error('expected a cluster plan')
  t.same(cluster.nodes, [{ host: 'n1', port: 7000 }, { host: 'n2', port: 7001 }])
  t.equal(cluster.options.enableOfflineQueue, false)
  t.equal(typeof cluster.options.clusterRetryStrategy, 'function')
  t.match(cluster.options.redisOptions, { password: 'pw', commandTimeout: 1000, maxRetriesPerRequest: 0 })
  t.notOk('db' in (cluster.options.redisOptions ?? {}), 'no SELECT on cluster nodes')
  t.ok(cluster.options.retryDelayOnFailover! * cluster.options.maxRedirections! <= 1000, 'failover retries fit in one command timeout')
  const nat = buildConnectionPlan(config({ REDIS_CLUSTER_NODES: 'n1:7000', REDIS_CLUSTER_NAT_MAP: '10.0.0.5:7000=203.0.113.5:17000' }))
  t.same(nat.mode === 'cluster' ? nat.options.natMap : undefined, { '10.0.0.5:7000': { host: '203.0.113.5', port: 17000 } })
  t.throws(() => config({ REDIS_CLUSTER_NAT_MAP: '10.0.0.5:7000' }), /REDIS_CLUSTER_NAT_MAP must be a comma-separated list of internal-host:port=external-host:port/)
})

t.test('URL parsing', async (t) => {
  t.match(parseRedisUrl('rediss://:p%40ss@[::1]:7000/3'), { host: '::1', port: 7000, db: 3, password: 'p@ss', tls: true })
  t.throws(() => parseRedisUrl('redis://h/x'), /database \(the path\) must be a number/)
})
