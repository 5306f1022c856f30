// Config → ioredis options. Every default that would let a request wait on Redis for long is
// overridden here, in one place, and asserted by test/lib/redis/options.test.ts so an ioredis upgrade
// cannot silently undo it (ioredis 6 defaults: offline queue on, 20 retries per request, no command
// timeout: ~70 s of waiting while Redis is down and for ever on a frozen server).
import { readFileSync } from 'node:fs'
import type { ConnectionOptions } from 'node:tls'
import type { ClusterOptions, RedisOptions, SentinelAddress } from 'ioredis'
import type { Config } from '../config/index.js'
import { RedisSetupError } from '../errors/index.js'

export type RedisMode = 'standalone' | 'sentinel' | 'cluster'

export type RedisConnectionPlan =
  | { mode: 'standalone' | 'sentinel', options: RedisOptions, address: string }
  | { mode: 'cluster', nodes: Array<{ host: string, port: number }>, options: ClusterOptions, address: string }

/**
 * Decide the mode and build the client options. `url` overrides REDIS_URL; a separate URL
 * (REDIS_CACHE_URL) names one server, so `standalone` keeps it from taking the main connection's
 * Cluster or Sentinel topology (which would put the cache back on the sessions' noeviction store).
 */
export function buildConnectionPlan (config: Config, url = config.REDIS_URL, { standalone = false } = {}): RedisConnectionPlan {
  const base = { ...boundedOptions(config), ...credentials(config, url) }
  const tls = tlsOptions(config, url)
  if (!standalone && config.REDIS_CLUSTER_NODES.length > 0) {
    const nodes = config.REDIS_CLUSTER_NODES.map(parseHostPort)
    const { retryStrategy, enableOfflineQueue, ...perNode } = base
    return {
      mode: 'cluster',
      nodes,
      address: describeNodes(nodes),
      options: {
        clusterRetryStrategy: retryStrategy,
        enableOfflineQueue,
        keyPrefix: config.REDIS_KEY_PREFIX,
        // After a master dies its replica takes over in cluster-node-timeout + election (~2 s with a
        // 1 s timeout). Redirect and failover retries must stay inside one command timeout.
        retryDelayOnFailover: Math.max(50, Math.floor(config.REDIS_COMMAND_TIMEOUT / 10)),
        retryDelayOnClusterDown: Math.max(50, Math.floor(config.REDIS_COMMAND_TIMEOUT / 10)),
        retryDelayOnTryAgain: 50,
        maxRedirections: 8,
        slotsRefreshTimeout: Math.min(config.REDIS_CONNECT_TIMEOUT, 2_000),
        slotsRefreshInterval: 5_000,
        ...(config.REDIS_CLUSTER_NAT_MAP.length === 0 ? {} : { natMap: natMap(config.REDIS_CLUSTER_NAT_MAP) }),
        redisOptions: { ...omitDb(perNode), ...(tls === undefined ? {} : { tls }) }
      }
    }
  }
  if (!standalone && config.REDIS_SENTINELS.length > 0) {
    const sentinels: SentinelAddress[] = config.REDIS_SENTINELS.map(parseHostPort)
    return {
      mode: 'sentinel',
      address: `sentinel ${config.REDIS_SENTINEL_NAME}@${describeNodes(sentinels as Array<{ host: string, port: number }>)}`,
      options: {
        ...base,
        keyPrefix: config.REDIS_KEY_PREFIX,
        sentinels,
        name: config.REDIS_SENTINEL_NAME,
        sentinelUsername: config.REDIS_SENTINEL_USERNAME,
        sentinelPassword: config.REDIS_SENTINEL_PASSWORD,
        // ioredis names these backwards from what one expects: `enableTLSForSentinelMode` + `tls` is TLS
        // to the master and replicas (the data: REDIS_TLS / rediss://), `sentinelTLS` is TLS to the
        // Sentinels (REDIS_SENTINEL_TLS). Each follows its own setting, with the same CA and client cert.
        enableTLSForSentinelMode: tls !== undefined,
        ...(tls === undefined ? {} : { tls }),
        ...(config.REDIS_SENTINEL_TLS ? { sentinelTLS: tls ?? tlsSettings(config) } : {}),
        // Sentinels tell us about a failover at once instead of waiting for the old master to fail.
        failoverDetector: true,
        sentinelRetryStrategy: (times: number) => Math.min(config.REDIS_RETRY_DELAY * 2 ** (times - 1), config.REDIS_RETRY_MAX_DELAY),
        sentinelReconnectStrategy: () => config.REDIS_RETRY_MAX_DELAY
      }
    }
  }
  const target = url === undefined ? { host: config.REDIS_HOST ?? '127.0.0.1', port: config.REDIS_PORT, db: config.REDIS_DB } : pickAddress(parseRedisUrl(url))
  return {
    mode: 'standalone',
    address: 'path' in target ? target.path : `${target.host}:${target.port}`,
    options: { ...base, ...target, keyPrefix: config.REDIS_KEY_PREFIX, ...(tls === undefined ? {} : { tls }) }
  }
}

/** The bounded-behaviour overrides, shared by every mode. */
export function boundedOptions (config: Config): RedisOptions {
  return {
    connectTimeout: config.REDIS_CONNECT_TIMEOUT,
    commandTimeout: config.REDIS_COMMAND_TIMEOUT,
    // Never queue while disconnected: a command fails at once and the feature's fallback answers.
    enableOfflineQueue: false,
    // Commands in flight when the connection drops fail then, instead of being resent later
    // (a resent INCR would count twice, and the caller has long moved on).
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    enableReadyCheck: true,
    maxLoadingRetryTime: config.REDIS_CONNECT_TIMEOUT,
    retryStrategy: retryStrategy(config),
    // After a failover a client may still reach the demoted master; reconnect to find the new one.
    reconnectOnError: (err: Error) => err.message.startsWith('READONLY') ? 2 : false,
    keepAlive: 10_000,
    connectionName: 'fastify-redis-suite',
    lazyConnect: true
  }
}

/** Exponential backoff from REDIS_RETRY_DELAY, capped at REDIS_RETRY_MAX_DELAY, plus up to 10% jitter. */
export function retryStrategy (config: Config): (times: number) => number | null {
  return (times: number) => {
    if (config.REDIS_MAX_RETRIES > 0 && times > config.REDIS_MAX_RETRIES) return null
    const delay = Math.min(config.REDIS_RETRY_DELAY * 2 ** Math.min(times - 1, 20), config.REDIS_RETRY_MAX_DELAY)
    return Math.round(delay + Math.random() * delay * 0.1)
  }
}

function credentials (config: Config, url: string | undefined): Pick<RedisOptions, 'username' | 'password'> {
  const fromUrl: { username?: string, password?: string } = url === undefined ? {} : parseRedisUrl(url)
  return {
    username: fromUrl.username ?? config.REDIS_USERNAME,
    password: fromUrl.password ?? config.REDIS_PASSWORD
  }
}

export function parseRedisUrl (url: string): { host: string, port: number, path?: string, db: number, username?: string, password?: string, tls: boolean } {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new RedisSetupError('REDIS_URL is not a valid URL')
  }
  if (parsed.protocol === 'unix:') {
    // unix:///run/redis.sock?db=2: the socket path, the database in the query (the path is taken);
    // credentials come from REDIS_USERNAME and REDIS_PASSWORD (a URL cannot hold them without a host).
    const db = Number(parsed.searchParams.get('db') ?? 0)
    if (!Number.isInteger(db) || db < 0) throw new RedisSetupError('REDIS_URL database (?db=) must be a number, as in unix:///run/redis.sock?db=0')
    if (parsed.pathname === '' || parsed.pathname === '/') throw new RedisSetupError('REDIS_URL must name the socket, as in unix:///run/redis.sock')
    return { host: '', port: 0, path: decodeURIComponent(parsed.pathname), db, tls: false }
  }
  const db = parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : 0
  if (!Number.isInteger(db) || db < 0) throw new RedisSetupError('REDIS_URL database (the path) must be a number, as in redis://host:6379/0')
  return {
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1',
    port: parsed.port === '' ? 6379 : Number(parsed.port),
    db,
    ...(parsed.username === '' ? {} : { username: decodeURIComponent(parsed.username) }),
    ...(parsed.password === '' ? {} : { password: decodeURIComponent(parsed.password) }),
    // valkeys:// is rediss:// under Valkey's name: the same protocol over TLS.
    tls: parsed.protocol === 'rediss:' || parsed.protocol === 'valkeys:'
  }
}

function tlsOptions (config: Config, url: string | undefined): ConnectionOptions | undefined {
  const wanted = config.REDIS_TLS || (url !== undefined && /^(rediss|valkeys):\/\//.test(url))
  return wanted ? tlsSettings(config) : undefined
}

/** The REDIS_TLS_* settings as Node TLS options; used for data nodes and Sentinels alike. */
function tlsSettings (config: Config): ConnectionOptions {
  return {
    rejectUnauthorized: config.REDIS_TLS_REJECT_UNAUTHORIZED,
    ...(config.REDIS_TLS_CA === undefined ? {} : { ca: readPem('REDIS_TLS_CA', config.REDIS_TLS_CA) }),
    ...(config.REDIS_TLS_CERT === undefined ? {} : { cert: readPem('REDIS_TLS_CERT', config.REDIS_TLS_CERT) }),
    ...(config.REDIS_TLS_KEY === undefined ? {} : { key: readPem('REDIS_TLS_KEY', config.REDIS_TLS_KEY) }),
    ...(config.REDIS_TLS_SERVERNAME === undefined ? {} : { servername: config.REDIS_TLS_SERVERNAME })
  }
}

/** A PEM given inline, or a path to one. */
function readPem (name: string, value: string): string {
  if (value.includes('-----BEGIN')) return value
  try {
    return readFileSync(value, 'utf8')
  } catch (err) {
    throw new RedisSetupError(`${name} must be a PEM or a readable file: cannot read ${value} (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
  }
}

function parseHostPort (entry: string): { host: string, port: number } {
  const index = entry.lastIndexOf(':')
  return { host: entry.slice(0, index).replace(/^\[(.*)\]$/, '$1'), port: Number(entry.slice(index + 1)) }
}

/** 'internal:port=external:port' pairs → ioredis' natMap. */
function natMap (pairs: readonly string[]): Record<string, { host: string, port: number }> {
  return Object.fromEntries(pairs.map((pair) => {
    const [internal = '', external = ''] = pair.split('=')
    return [internal, parseHostPort(external)]
  }))
}

function describeNodes (nodes: Array<{ host?: string | undefined, port?: number | undefined }>): string {
  return nodes.map((node) => `${node.host ?? '?'}:${node.port ?? '?'}`).join(',')
}

function pickAddress ({ host, port, path, db }: { host: string, port: number, path?: string, db: number }): { host: string, port: number, db: number } | { path: string, db: number } {
  return path === undefined ? { host, port, db } : { path, db }
}

/** Cluster nodes have no databases; SELECT would fail. */
function omitDb (options: RedisOptions): RedisOptions {
  const rest = { ...options }
  delete rest.db
  return rest
}
