// The Redis connection: builds a bounded ioredis client from app.config, waits for it at boot with a
// clear error (or starts degraded), keeps the live state, and quits within a bound on close.
//
// Lifecycle (redisPlugin), one of three ways:
//   the app's client (useAppClient): bounded commands on it, a monitor, app.redis unless taken;
//     waits for it at registration (REDIS_WAIT_ON_BOOT); onClose quits what the suite made from it
//     (subscriber, created connections) and the client itself only with closeClient
//   no Redis (useMemory): the state says 'memory'; no hooks
//   its own clients (openOwnRedis): the main client (its failover waits, Sentinel watch, refusal
//     tracking, monitor) and the cache's (REDIS_CACHE_URL); waitOnBoot waits for both (or warns once
//     and starts degraded); decorateRedis registers @fastify/redis or decorates app.redis
//   decorates  app.redisState, app.redisMonitor, app.redisConnections (and app.redis, as above)
//   onClose    stops the monitor and watchers, then quits main, cache and subscriber, then the
//              connections made by redisConnections.create, each within min(REDIS_COMMAND_TIMEOUT, 2 s)
//   No request hooks: features read the state and their client.
import fp from 'fastify-plugin'
import fastifyRedis from '@fastify/redis'
// Keeps @fastify/redis's declaration merging in this module's .d.ts, for apps that import this entry point alone.
export type {} from '@fastify/redis'
import { Redis, Cluster, type ClusterOptions, type RedisOptions } from 'ioredis'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import { isRedisConfigured, suiteLogOptions } from '../lib/config/index.js'
import { ConfigError, RedisSetupError, RedisUnavailableError } from '../lib/errors/index.js'
import {
  buildConnectionPlan, type RedisConnectionPlan, RedisMonitor, describeError,
  type RedisState, checkServerSettings, ClusterFailoverWait, FailoverWait, watchSentinels, RefusalTracker, traceRefusals, boundCommands, unbound,
  stopSlotsRefreshOnClose
} from '../lib/redis/index.js'

export { RedisUnavailableError } from '../lib/errors/index.js'
export type RedisClient = Redis | Cluster

export interface RedisPluginOptions {
  /**
   * An ioredis Redis or Cluster the app already has (its `app.redis` from @fastify/redis, say): the
   * suite sends its commands on it instead of building its own from REDIS_*, each bounded by
   * REDIS_COMMAND_TIMEOUT whatever the client's settings. Its keyPrefix, TLS and topology are the
   * client's; REDIS_FAILOVER_WAIT does not apply. The pub/sub subscriber is a duplicate of it.
   */
  client?: RedisClient
  /** Quit `client` when the app closes. Default false: the app that made it closes it (as @fastify/redis does). */
  closeClient?: boolean
}

export interface RedisConnections {
  /** Sessions, rate limits and anything that must not be evicted. Undefined without Redis. */
  main: RedisClient | undefined
  /** The cache's client: REDIS_CACHE_URL's when set, else the main one. */
  cache: RedisClient | undefined
  /** A dedicated connection for SUBSCRIBE, created on first use and closed with the app. */
  subscriber: () => RedisClient | undefined
  /**
   * Milliseconds a command sent on `main` now may still wait for a lost connection to come back
   * (REDIS_FAILOVER_WAIT, counted from the loss); 0 when connected. A request deadline adds it.
   */
  failoverWaitLeft: () => number
  /** Where the main connection goes (host:port, the Sentinel group or the Cluster seeds), for log lines. */
  address: string
  /**
   * A new connection for another library (BullMQ, a queue, a lock library) with the suite's TLS, ACL,
   * Sentinel or Cluster and reconnect settings, but none of its per-command bounds: no keyPrefix, no
   * commandTimeout, offline queue on, `maxRetriesPerRequest: null` (what BullMQ requires). `overrides`
   * are ioredis options applied last (in Cluster mode, to every node). `name` is its CLIENT SETNAME.
   * Closed when the app closes (after the app's own onClose hooks, which should close the library first).
   */
  create: (name: string, overrides?: Partial<RedisOptions>) => RedisClient
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Live connection state, kept by a background PING; reading it never touches Redis. */
    readonly redisState: RedisState
    redisMonitor: RedisMonitor
    redisConnections: RedisConnections
  }
}

/** With REDIS_WAIT_ON_BOOT=false, how long boot waits for the first connection attempt's outcome. */
const BOOT_PEEK_MS = 500

async function redisPlugin (app: FastifyInstance, options: RedisPluginOptions = {}): Promise<void> {
  const config = app.config
  const log = app.log.child({ plugin: 'redis' }, suiteLogOptions(app.config))
  if (options.client !== undefined) {
    await useAppClient(app, options.client, options.closeClient === true, log)
    return
  }
  if (!isRedisConfigured(config)) {
    useMemory(app, log)
    return
  }
  const tooLong = bootWaitProblem(config.REDIS_WAIT_ON_BOOT, config.REDIS_CONNECT_TIMEOUT, app.initialConfig.pluginTimeout)
  if (tooLong !== undefined) throw new ConfigError([tooLong])

  const own = openOwnRedis(app, buildConnectionPlan(config), log)
  if (!config.REDIS_TLS_REJECT_UNAUTHORIZED) {
    log.warn('REDIS_TLS_REJECT_UNAUTHORIZED=false: the Redis server certificate is not verified')
  }
  await waitOnBoot(own, config, log)
  await decorateRedis(app, own.main, log)
  decorateState(app, own.monitor, own.connections)
  app.addHook('onClose', async () => { await own.close() })
}

/** No Redis configured: the state says so, features run on their in-process stores. */
function useMemory (app: FastifyInstance, log: FastifyBaseLogger): void {
  log.warn('No Redis configured (REDIS_URL is not set): running on in-process stores, which are per process and lost on restart')
  const monitor = new RedisMonitor(undefined, { ...monitorOptions(app, log), mode: 'memory', address: 'in-process' })
  decorateState(app, monitor, {
    main: undefined,
    cache: undefined,
    subscriber: () => undefined,
    failoverWaitLeft: () => 0,
    address: 'in-process',
    create: () => { throw new RedisSetupError('app.redisConnections.create: no Redis is configured (REDIS_URL is not set)') }
  })
}

/** The suite's own clients and what watches them, opened at registration. */
interface OwnRedis {
  plan: RedisConnectionPlan
  main: RedisClient
  cache: RedisClient
  cachePlan: RedisConnectionPlan | undefined
  monitor: RedisMonitor
  connections: RedisConnections
  /** onClose: stops the watchers, then quits every client within a bound (main, cache, subscriber, then the created ones). */
  close: () => Promise<void>
  /** A boot that failed: stops the watchers and drops the clients at once. */
  abort: () => void
}

function openOwnRedis (app: FastifyInstance, plan: RedisConnectionPlan, log: FastifyBaseLogger): OwnRedis {
  const config = app.config
  const watchingSentinels = plan.mode === 'sentinel' && config.REDIS_FAILOVER_WAIT > 0
  // Our Sentinel watch replaces ioredis' failoverDetector, which drops the connection on every
  // +switch-master any Sentinel publishes (for any master name, and again when a slower Sentinel
  // repeats it after the client has already moved), failing the commands in flight on the new master.
  if (watchingSentinels) plan.options.failoverDetector = false
  const main = createClient(plan)
  if (watchingSentinels && main instanceof Redis) {
    // Only the main client is held and switched by our watch; its copies (the rate limiter's, the
    // subscriber, stream readers, the cache's) keep ioredis' detector, or they would write to the old
    // master until Sentinel demotes it and lose those writes (rate-limit counts).
    const duplicate = main.duplicate.bind(main)
    main.duplicate = (override?: Partial<RedisOptions>) => duplicate({ failoverDetector: true, ...override })
  }
  // Its 'close' listener runs before the monitor's: the state still says whether PINGs were answered.
  const { failoverWait, clusterWait } = failoverWaits(main, plan, config, log, () => monitor.state.status !== 'disconnected')
  const stopWatching = watchingSentinels && failoverWait !== undefined ? watchSentinelFailover(plan, config, failoverWait, log) : () => {}
  // Refusals (OOM, MISCONF, READONLY, NOPERM) on the main connection: what sessions and rate limits use.
  const refusals = new RefusalTracker({ logger: log })
  const stopRefusals = traceRefusals([main], refusals)
  const monitor = new RedisMonitor(main, { ...monitorOptions(app, log), mode: plan.mode, address: plan.address, refusals })
  const extra: RedisClient[] = []
  const created: RedisClient[] = []
  const cachePlan = config.REDIS_CACHE_URL === undefined ? undefined : buildConnectionPlan(config, config.REDIS_CACHE_URL, { standalone: true })
  const cache = cachePlan === undefined ? main : track(extra, createClient(cachePlan))
  const failoverWaitLeft = failoverWait !== undefined
    ? () => failoverWait.waitLeft()
    : clusterWait !== undefined ? () => clusterWait.waitLeft() : () => 0
  const connections = ownConnections(main, cache, plan, { extra, created, failoverWaitLeft }, app.config, log)
  // The cache connection's trouble shows as cache misses and in its own log lines, not in health.
  for (const client of extra) client.on('error', () => {})
  const stopWatchers = (): void => { monitor.stop(); stopRefusals(); stopWatching() }
  return {
    plan,
    main,
    cache,
    cachePlan,
    monitor,
    connections,
    close: async () => {
      stopWatchers()
      failoverWait?.detach()
      clusterWait?.detach()
      const timeout = Math.min(config.REDIS_COMMAND_TIMEOUT, 2_000)
      await Promise.all([main, ...extra].map((client) => quitWithin(client, timeout)))
      await Promise.all(created.map((client) => quitWithin(client, timeout)))
    },
    abort: () => {
      stopWatchers()
      main.disconnect()
      for (const client of extra) client.disconnect()
    }
  }
}

/**
 * Sessions and locks send their commands whatever the state; rate limits and the cache skip Redis
 * while it is not ready, so only the main client needs the wait. A Cluster follows its failover
 * inside one command's redirections, which the Cluster wait stretches to the budget.
 */
function failoverWaits (main: RedisClient, plan: RedisConnectionPlan, config: FastifyInstance['config'], log: FastifyBaseLogger,
  answering: () => boolean): { failoverWait: FailoverWait | undefined, clusterWait: ClusterFailoverWait | undefined } {
  const failoverWait = main instanceof Redis
    ? new FailoverWait(main, {
      budgetMs: config.REDIS_FAILOVER_WAIT,
      answering,
      onExpired: (lostForMs, rejected) => {
        log.warn({ redis: { mode: plan.mode, lostForMs, rejected } }, 'REDIS_FAILOVER_WAIT spent and the connection is still down: commands fail fast until it is back')
      }
    })
    : undefined
  const clusterWait = main instanceof Cluster && config.REDIS_FAILOVER_WAIT > 0
    ? new ClusterFailoverWait(main, {
      budgetMs: config.REDIS_FAILOVER_WAIT,
      commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT,
      onExpired: (lostForMs) => {
        log.warn({ redis: { mode: plan.mode, lostForMs } }, 'REDIS_FAILOVER_WAIT spent and a Cluster node is still unreachable: commands on its slots fail fast until the slots are served again')
      }
    })
    : undefined
  return { failoverWait, clusterWait }
}

/** Our Sentinel watch: holds the main client's commands through a failover and moves it to the new master. Returns its stop. */
function watchSentinelFailover (plan: { mode: string, options: RedisOptions }, config: FastifyInstance['config'], failoverWait: FailoverWait, log: FastifyBaseLogger): () => void {
  return watchSentinels({
    sentinels: plan.options.sentinels ?? [],
    name: config.REDIS_SENTINEL_NAME,
    connection: sentinelConnection(plan.options),
    dataConnection: dataNodeConnection(plan.options),
    onPromoting: () => {
      if (failoverWait.hold()) log.info({ redis: { mode: plan.mode } }, 'Sentinel failover announced: holding commands until the new master is named')
    },
    onPromoted: (oldMaster, newMaster) => {
      log.info({ redis: { mode: plan.mode, master: `${newMaster.host}:${newMaster.port}` } }, 'Sentinel failover: the promoted replica answers as master; moving to it')
      failoverWait.promoted(oldMaster, newMaster)
    },
    onConfirmed: () => { failoverWait.confirmed() },
    onSwitched: (host, port) => { failoverWait.switched(host, port) },
    onSettled: () => { failoverWait.release() }
  })
}

/** app.redisConnections on the suite's own clients: the subscriber made on first use, created ones closed with the app. */
function ownConnections (main: RedisClient, cache: RedisClient, plan: RedisConnectionPlan,
  { extra, created, failoverWaitLeft }: { extra: RedisClient[], created: RedisClient[], failoverWaitLeft: () => number },
  config: FastifyInstance['config'], log: FastifyBaseLogger): RedisConnections {
  let subscriber: RedisClient | undefined
  return {
    main,
    cache,
    subscriber: () => {
      if (subscriber === undefined) {
        // autoResubscribe off: ioredis re-subscribes on 'ready' without handling the rejection when the
        // link drops again at once (an unhandledRejection, fatal by default); the cache's invalidation
        // bus and the pub/sub transport subscribe again themselves on every 'ready'.
        subscriber = track(extra, main.isCluster ? (main as Cluster).duplicate() : (main as Redis).duplicate({ autoResubscribe: false }))
        subscriber.on('error', () => {}) // its state is the main connection's; errors are reported there
        subscriber.connect().catch(() => {})
      }
      return subscriber
    },
    failoverWaitLeft,
    address: plan.address,
    create: (name, overrides) => track(created, connectionFor(buildConnectionPlan(config), name, overrides, log))
  }
}

/** The first connection: waited for (REDIS_WAIT_ON_BOOT), else peeked at briefly and warned about once. */
async function waitOnBoot (own: OwnRedis, config: FastifyInstance['config'], log: FastifyBaseLogger): Promise<void> {
  const { main, cache, cachePlan, plan, monitor } = own
  const ready = Promise.all([
    connect(main, plan, config.REDIS_CONNECT_TIMEOUT),
    cachePlan === undefined ? undefined : connect(cache, cachePlan, config.REDIS_CONNECT_TIMEOUT)
  ])
  monitor.start()
  if (!config.REDIS_WAIT_ON_BOOT) {
    await startDegraded(main, plan, ready, config, log)
    return
  }
  try {
    await ready
  } catch (err) {
    own.abort()
    throw err
  }
}

/**
 * Starting degraded is allowed, but never silently: one warning naming the address as soon as the
 * first attempt fails (a refused port answers in a millisecond; a black hole at the short bound
 * below), so the features' start-up lines that follow can say what they really use.
 */
async function startDegraded (main: RedisClient, plan: RedisConnectionPlan, ready: Promise<unknown>, config: FastifyInstance['config'], log: FastifyBaseLogger): Promise<void> {
  let warned = false
  const warnOnce = (cause: string): void => {
    if (warned) return
    warned = true
    log.warn({ redis: { mode: plan.mode, address: plan.address } }, `Redis at ${plan.address} is not reachable${cause}: starting degraded (REDIS_WAIT_ON_BOOT=false), features use their fallbacks and the connection is retried in the background`)
  }
  let firstError: ((err: Error) => void) | undefined
  const settled = new Promise<void>((resolve) => {
    firstError = (err: Error) => { warnOnce(` (${describeError(err)})`); resolve() }
    main.once('error', firstError)
    ready.then(() => { resolve() }, () => { resolve() })
  })
  let timer: NodeJS.Timeout | undefined
  await Promise.race([settled, new Promise<void>((resolve) => { timer = setTimeout(resolve, Math.min(config.REDIS_CONNECT_TIMEOUT, BOOT_PEEK_MS)) })])
  clearTimeout(timer)
  if (firstError !== undefined) main.off('error', firstError)
  if (main.status !== 'ready') warnOnce('')
  ready.catch((err: Error) => { warnOnce(` (${err.message})`) })
}

/** app.redis (unless the app's own @fastify/redis has it), and the server settings check once connected. */
async function decorateRedis (app: FastifyInstance, main: RedisClient, log: FastifyBaseLogger): Promise<void> {
  if (otherRedis(app, log)) {
    if (main.status === 'ready') checkServerSettings(main, log).catch(() => {})
    else main.once('ready', () => { checkServerSettings(main, log).catch(() => {}) })
  } else if (main.status === 'ready') {
    // Connected: @fastify/redis decorates app.redis. We keep closing it ourselves, within a bound.
    await app.register(fastifyRedis, { client: main as Redis, closeClient: false })
    checkServerSettings(main, log).catch(() => {})
  } else {
    // Starting degraded: @fastify/redis would hold boot until Redis answers, so decorate directly.
    app.decorate('redis', main as never)
    main.once('ready', () => { checkServerSettings(main, log).catch(() => {}) })
  }
}

/**
 * True when `app.redis` is already someone else's (@fastify/redis registered by the app, with or
 * without a namespace): it stays theirs, and the suite's connection is `app.redisConnections.main`.
 */
function otherRedis (app: FastifyInstance, log: FastifyBaseLogger): boolean {
  if (!app.hasDecorator('redis')) return false
  log.info('app.redis is already decorated (by @fastify/redis?): it stays as it is; the suite\'s connection is app.redisConnections.main (pass redis: { client } to share one client)')
  return true
}

/** The suite on the app's own client: bounded commands on it, a monitor of it, no failover wait of ours. */
async function useAppClient (app: FastifyInstance, client: RedisClient, closeClient: boolean, log: FastifyBaseLogger): Promise<void> {
  const config = app.config
  const timeout = Math.min(config.REDIS_COMMAND_TIMEOUT, 2_000)
  const mode = client.isCluster ? 'cluster' : (client as Redis).options.sentinels != null ? 'sentinel' : 'standalone'
  const address = client.isCluster ? 'the app\'s Cluster client' : `${(client as Redis).options.host ?? '?'}:${(client as Redis).options.port ?? '?'}`
  const problem = appClientProblem(client, config)
  if (problem !== undefined) throw new RedisSetupError(problem)
  const tooLong = bootWaitProblem(config.REDIS_WAIT_ON_BOOT, config.REDIS_CONNECT_TIMEOUT, app.initialConfig.pluginTimeout)
  if (tooLong !== undefined) throw new ConfigError([tooLong])
  const main = boundCommands(client, config.REDIS_COMMAND_TIMEOUT)
  const extra: RedisClient[] = []
  const created: RedisClient[] = []
  let subscriber: RedisClient | undefined
  // Refusals (OOM, MISCONF, READONLY, NOPERM) count on the app's client as on the suite's own.
  const refusals = new RefusalTracker({ logger: log })
  const stopRefusals = traceRefusals([client], refusals)
  const monitor = new RedisMonitor(main, { ...monitorOptions(app, log), mode, address, refusals })
  decorateState(app, monitor, {
    main,
    cache: main,
    subscriber: () => {
      if (subscriber === undefined) {
        subscriber = track(extra, client.isCluster ? stopSlotsRefreshOnClose((client as Cluster).duplicate()) : (client as Redis).duplicate({ autoResubscribe: false, lazyConnect: true }))
        subscriber.on('error', () => {})
        subscriber.connect().catch(() => {})
      }
      return subscriber
    },
    failoverWaitLeft: () => 0,
    address,
    // The app's client carries the connection settings: a duplicate with the bounds taken off.
    create: (name, overrides) => {
      const copy = client.isCluster
        ? stopSlotsRefreshOnClose((client as Cluster).duplicate(undefined, unboundedCluster((client as Cluster).options.redisOptions, name, overrides)))
        : (client as Redis).duplicate({ ...unboundedOptions(name), ...overrides })
      copy.on('error', (err: Error) => { log.debug({ connection: name, err: { message: err.message } }, 'redisConnections.create: connection error') })
      return track(created, copy)
    }
  })
  if (!otherRedis(app, log)) app.decorate('redis', client as never)
  if (client.status === 'wait') client.connect().catch(() => {})
  if (client.status !== 'ready' && config.REDIS_WAIT_ON_BOOT) await appClientReady(client, address, config.REDIS_CONNECT_TIMEOUT)
  if (client.status === 'ready') checkServerSettings(main, log).catch(() => {})
  else client.once('ready', () => { checkServerSettings(main, log).catch(() => {}) })
  monitor.start()
  app.addHook('onClose', async () => {
    monitor.stop()
    stopRefusals()
    await Promise.all([...extra, ...created, ...(closeClient ? [client] : [])].map((c) => quitWithin(unbound(c), timeout)))
  })
}

/** The app's client ready within the connect timeout, else RedisUnavailableError. */
function appClientReady (client: RedisClient, address: string, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady)
      reject(new RedisUnavailableError(`Redis (the client passed as redis.client, ${address}) did not become ready within ${timeoutMs}ms. Set REDIS_WAIT_ON_BOOT=false to start degraded`))
    }, timeoutMs)
    const onReady = (): void => { clearTimeout(timer); resolve() }
    client.once('ready', onReady)
  })
}

/**
 * Why the suite must not run on an app's client: settings the operator gave the suite that the
 * client would silently not honour (a key prefix for a shared Redis; TLS verification in production).
 */
function appClientProblem (client: RedisClient, config: FastifyInstance['config']): string | undefined {
  const options = (client.isCluster ? (client as Cluster).options.redisOptions : (client as Redis).options) ?? {}
  const keyPrefix = (client.isCluster ? (client as Cluster).options.keyPrefix : undefined) ?? options.keyPrefix ?? ''
  if (config.REDIS_KEY_PREFIX !== '' && config.REDIS_KEY_PREFIX !== keyPrefix) {
    return `REDIS_KEY_PREFIX=${config.REDIS_KEY_PREFIX} is set, but the client passed as redis.client has keyPrefix ${JSON.stringify(keyPrefix)}: the suite's keys take the client's prefix. Give the client keyPrefix: ${JSON.stringify(config.REDIS_KEY_PREFIX)}, or unset REDIS_KEY_PREFIX`
  }
  const tls = options.tls as { rejectUnauthorized?: boolean } | undefined
  if ((config.NODE_ENV === 'production' || config.NODE_ENV === 'staging') && tls?.rejectUnauthorized === false) {
    return `the client passed as redis.client does not verify the server's TLS certificate (tls.rejectUnauthorized: false), which ${config.NODE_ENV} refuses: give it the CA instead (tls.ca)`
  }
  return undefined
}

/** Cluster options for a connection without the suite's bounds, at both levels (Cluster reads keyPrefix and the offline queue at its own). */
function unboundedCluster (redisOptions: RedisOptions | undefined, name: string, overrides: Partial<RedisOptions> | undefined): Partial<ClusterOptions> {
  return { keyPrefix: '', enableOfflineQueue: true, redisOptions: { ...redisOptions, ...unboundedOptions(name), ...overrides } }
}

/** What the suite's connections add for its own commands, taken off for another library's. */
function unboundedOptions (name: string): Partial<RedisOptions> {
  return {
    keyPrefix: '',
    commandTimeout: undefined,
    enableOfflineQueue: true,
    maxRetriesPerRequest: null,
    autoResendUnfulfilledCommands: true,
    lazyConnect: false,
    connectionName: name
  }
}

/** redisConnections.create: the plan's connection settings, without the suite's per-command bounds. */
function connectionFor (plan: RedisConnectionPlan, name: string, overrides: Partial<RedisOptions> | undefined, log: FastifyBaseLogger): RedisClient {
  const client = plan.mode === 'cluster'
    ? stopSlotsRefreshOnClose(new Cluster(plan.nodes, { ...plan.options, lazyConnect: false, ...unboundedCluster(plan.options.redisOptions, name, overrides) } satisfies ClusterOptions))
    : new Redis({ ...plan.options, ...unboundedOptions(name), ...overrides })
  // The library reports its own errors; without a listener ioredis would print each to stderr.
  client.on('error', (err: Error) => { log.debug({ connection: name, err: { message: err.message } }, 'redisConnections.create: connection error') })
  return client
}

function monitorOptions (app: FastifyInstance, log: FastifyBaseLogger) {
  const config = app.config
  return {
    pingInterval: config.REDIS_PING_INTERVAL,
    pingTimeout: config.REDIS_PING_TIMEOUT,
    degradedLatency: config.REDIS_DEGRADED_LATENCY,
    logger: log
  }
}

function decorateState (app: FastifyInstance, monitor: RedisMonitor, connections: RedisConnections): void {
  app.decorate('redisState', { getter: () => monitor.state })
  app.decorate('redisMonitor', monitor)
  app.decorate('redisConnections', connections)
}

/** A Cluster, and every copy made of it, ends its periodic slots refresh when closed (see lib/redis/cluster-close.ts). */
function createClient (plan: RedisConnectionPlan): RedisClient {
  return plan.mode === 'cluster' ? stopSlotsRefreshOnClose(new Cluster(plan.nodes, plan.options)) : new Redis(plan.options)
}

/** The Sentinels' own credentials and TLS (REDIS_SENTINEL_*), for the failover watch. */
function sentinelConnection (options: RedisOptions): RedisOptions {
  return {
    username: options.sentinelUsername,
    password: options.sentinelPassword,
    ...(options.sentinelTLS === undefined ? {} : { tls: options.sentinelTLS }),
    connectTimeout: options.connectTimeout,
    keepAlive: options.keepAlive,
    retryStrategy: options.sentinelReconnectStrategy ?? options.retryStrategy
  }
}

/** Options for a connection to one master or replica of a Sentinel group: the data nodes' credentials and TLS. */
function dataNodeConnection (options: RedisOptions): RedisOptions {
  return {
    username: options.username,
    password: options.password,
    ...(options.enableTLSForSentinelMode === true && options.tls !== undefined ? { tls: options.tls } : {}),
    connectTimeout: options.connectTimeout,
    keepAlive: options.keepAlive
  }
}

function track (list: RedisClient[], client: RedisClient): RedisClient {
  list.push(client)
  return client
}

/** Time the suite's other plugins need after Redis answered (scripts, subscriptions), within pluginTimeout. */
const AFTER_CONNECT_MS = 2_000

/**
 * Boot waits up to REDIS_CONNECT_TIMEOUT for Redis, and Fastify gives the whole suite pluginTimeout to
 * register: a longer wait would end in Fastify's "Plugin did not start in time", which names neither.
 */
export function bootWaitProblem (waitOnBoot: boolean, connectTimeoutMs: number, pluginTimeoutMs: number | undefined): string | undefined {
  if (!waitOnBoot || pluginTimeoutMs === undefined || pluginTimeoutMs <= 0) return undefined
  if (connectTimeoutMs + AFTER_CONNECT_MS <= pluginTimeoutMs) return undefined
  return `REDIS_CONNECT_TIMEOUT=${connectTimeoutMs}ms does not fit Fastify's pluginTimeout (${pluginTimeoutMs}ms): boot waits that long for Redis and the suite must register within pluginTimeout. ` +
    `Create Fastify with { pluginTimeout: ${connectTimeoutMs + 5_000} } (REDIS_CONNECT_TIMEOUT + 5 s, as the demo server does), or lower REDIS_CONNECT_TIMEOUT`
}

/** Resolves on 'ready'; rejects with one clear line on timeout or on errors retrying cannot fix. */
function connect (client: RedisClient, plan: RedisConnectionPlan, timeout: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let lastError: Error | undefined
    const finish = (err?: Error): void => {
      clearTimeout(timer)
      client.off('ready', onReady)
      client.off('error', onError)
      if (err === undefined) resolve()
      else reject(err)
    }
    const onReady = (): void => finish()
    const onError = (err: Error): void => {
      lastError = err
      const fatal = fatalReason(err)
      if (fatal !== undefined) finish(new RedisUnavailableError(`Redis at ${plan.address} ${fatal}`))
    }
    const timer = setTimeout(() => {
      const cause = lastError === undefined ? '' : ` (last error: ${describeError(lastError)})`
      finish(new RedisUnavailableError(`Redis at ${plan.address} did not become ready within ${timeout}ms${cause}${hint(lastError, plan)}. ` +
        'Check REDIS_URL, or set REDIS_WAIT_ON_BOOT=false to start degraded'))
    }, timeout)
    client.on('ready', onReady)
    client.on('error', onError)
    client.connect().catch(() => {}) // failures arrive as 'error' events and retries
  })
}

/** Errors no reconnect can fix: fail boot at once instead of at the timeout. */
function fatalReason (err: Error): string | undefined {
  const message = err.message
  if (/^(WRONGPASS|NOAUTH|NOPERM)/.test(message)) return `refused the credentials: ${describeError(err)}. Check REDIS_USERNAME and REDIS_PASSWORD (or the URL)`
  const code = (err as NodeJS.ErrnoException).code ?? ''
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code)) return `failed TLS verification (${code}): set REDIS_TLS_CA to the CA that signed the server certificate`
  if (code === 'ENOTFOUND') return 'has a host name that does not resolve (ENOTFOUND)'
  return undefined
}

function hint (err: Error | undefined, plan: RedisConnectionPlan): string {
  const tls = plan.mode === 'cluster' ? plan.options.redisOptions?.tls !== undefined : plan.options.tls !== undefined
  if (err !== undefined && !tls && /ECONNRESET|Connection is closed/.test(err.message)) {
    return '; the server closed the connection: if it only accepts TLS, use rediss:// or REDIS_TLS=true'
  }
  return ''
}

/** QUIT lets pending replies arrive; a frozen server must not hold shutdown, so disconnect after `ms`. */
export async function quitWithin (client: RedisClient, ms: number): Promise<void> {
  if (client.status === 'end') return
  if (client.status !== 'ready') {
    client.disconnect()
    return
  }
  let timer: NodeJS.Timeout | undefined
  await Promise.race([
    client.quit().catch(() => {}),
    new Promise<void>((resolve) => { timer = setTimeout(resolve, ms) })
  ])
  clearTimeout(timer)
  if ((client.status as string) !== 'end') client.disconnect()
}

export { RedisSetupError }
// The least-privilege ACL rule for the suite's user: `import { suiteAclRule } from 'fastify-redis-suite/redis'`.
export { suiteAclRule, SUITE_ACL_COMMANDS, type SuiteAclOptions } from '../lib/redis/index.js'
export default fp(redisPlugin, { name: 'redis-suite-redis', fastify: '5.x', dependencies: ['redis-suite-config'] })

/** The connection one feature plugin uses, from its `client` option or the suite's main connection. */
export interface FeatureConnection {
  /** Undefined without Redis (in-process stores). */
  redis: RedisClient | undefined
  /** Whether commands may be sent now; undefined without Redis. */
  isReady: (() => boolean) | undefined
  failoverWaitLeft: () => number
  /** True when `redis` is the plugin's own `client` option (its copies are the plugin's to close). */
  own: boolean
}

/**
 * A feature's `client` option wins: its commands bounded by REDIS_COMMAND_TIMEOUT, its own status as
 * readiness, no failover wait. Else the suite's main connection and its monitor.
 */
export function featureConnection (app: FastifyInstance, client: RedisClient | undefined): FeatureConnection {
  if (client !== undefined) {
    return { redis: boundCommands(client, app.config.REDIS_COMMAND_TIMEOUT), isReady: () => client.status === 'ready', failoverWaitLeft: () => 0, own: true }
  }
  const main = app.redisConnections.main
  return {
    redis: main,
    isReady: main === undefined ? undefined : () => app.redisMonitor.isReady(),
    failoverWaitLeft: () => app.redisConnections.failoverWaitLeft(),
    own: false
  }
}
