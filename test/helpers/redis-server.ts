// startRedis(): a standalone redis-server for one test, configured from a few options
// (password, ACL users, AOF, maxmemory, TLS, replication, cluster mode) on a free port.
import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { getFreePort } from './ports.js'
import type { Address, RedisEndpoint } from './redis-cli.js'
import { isAddressInUse, launchRedis, quoteConfigValue, type RedisServer } from './redis-process.js'
import { generateCertificates, type TestCertificates } from './tls.js'

export type { RedisServer } from './redis-process.js'

export interface AclUser {
  username: string
  password: string
  /**
   * Raw ACL rules after the password, e.g. '~app:* +@all -@dangerous'. Note that Redis 7
   * users start with no pub/sub channels: add '&*' or 'allchannels' if the user subscribes.
   */
  rules: string
}

export interface TlsServerOptions {
  /** tls-auth-clients: true → yes, false → no, 'optional'. Default false. */
  requireClientCert?: boolean | 'optional'
  /** Reuse certificates (e.g. one set for many servers); generated in the server dir if absent. */
  certificates?: TestCertificates
}

export type MaxmemoryPolicy = 'noeviction' | 'allkeys-lru' | 'allkeys-lfu' | 'allkeys-random' |
  'volatile-lru' | 'volatile-lfu' | 'volatile-random' | 'volatile-ttl'

export interface RedisServerOptions {
  /** A fixed port; by default a free one is picked (and re-picked if it is taken meanwhile). */
  port?: number
  /** requirepass: the password of the default user. */
  password?: string
  acl?: AclUser[]
  /** AOF with this appendfsync; default false: no persistence at all (save ''). */
  appendonly?: 'everysec' | 'always' | false
  /** e.g. '10mb' or a number of bytes. */
  maxmemory?: string | number
  maxmemoryPolicy?: MaxmemoryPolicy
  /** true for a TLS-only server with generated certificates and no client certificate required. */
  tls?: boolean | TlsServerOptions
  replicaOf?: Address
  /** masterauth, for a replica of a password-protected master. */
  masterAuth?: string
  /** cluster-enabled yes, with its own cluster bus port (not port + 10000). */
  cluster?: boolean | { nodeTimeoutMs?: number }
  /** Raw config lines appended last (so they win). */
  extraConfig?: string[]
  /** Bound on startup, readiness included. Default 15000. */
  startTimeoutMs?: number
  /** The server binary (e.g. serverFromEnv('REDIS74_SERVER')); default the run's, see REDIS_SERVER_BIN. */
  bin?: string
}

const PORT_ATTEMPTS = 4

/** The temp dir prefix of everything the helpers create (handy for `pgrep -f frs-`). */
export const TEMP_PREFIX = 'frs-'

export function makeTempDir (kind: string): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), `${TEMP_PREFIX}${kind}-`))
}

function aclUserLine (user: AclUser): string {
  // The password goes in as its SHA-256 ('#<hex>') so no quoting issue can arise.
  const hash = createHash('sha256').update(user.password).digest('hex')
  return `user ${user.username} on #${hash} ${user.rules}`
}

function tlsOptions (tls: RedisServerOptions['tls']): TlsServerOptions | undefined {
  if (tls === undefined || tls === false) return undefined
  return tls === true ? {} : tls
}

function authClientsValue (requireClientCert: TlsServerOptions['requireClientCert']): string {
  if (requireClientCert === 'optional') return 'optional'
  return requireClientCert === true ? 'yes' : 'no'
}

/** The config lines for these options on this port (the launcher adds bind/dir/logfile). */
export function buildRedisConfig (options: RedisServerOptions, port: number, clusterBusPort: number | undefined,
  certificates: TestCertificates | undefined): string[] {
  const lines: string[] = []
  const tls = tlsOptions(options.tls)
  if (tls !== undefined && certificates !== undefined) {
    lines.push('port 0', `tls-port ${port}`,
      `tls-cert-file ${quoteConfigValue(certificates.server.certFile)}`,
      `tls-key-file ${quoteConfigValue(certificates.server.keyFile)}`,
      `tls-ca-cert-file ${quoteConfigValue(certificates.ca.certFile)}`,
      `tls-auth-clients ${authClientsValue(tls.requireClientCert)}`)
  } else {
    lines.push(`port ${port}`)
  }
  lines.push('save ""')
  if (options.appendonly === undefined || options.appendonly === false) {
    lines.push('appendonly no')
  } else {
    lines.push('appendonly yes', `appendfsync ${options.appendonly}`)
  }
  // Replicas sync at once instead of waiting 5 s for more replicas to join.
  lines.push('repl-diskless-sync-delay 0')
  // DEBUG SLEEP and friends help tests simulate a slow server; loopback clients only.
  lines.push('enable-debug-command local')
  if (options.password !== undefined) lines.push(`requirepass ${quoteConfigValue(options.password)}`)
  for (const user of options.acl ?? []) lines.push(aclUserLine(user))
  if (options.maxmemory !== undefined) lines.push(`maxmemory ${options.maxmemory}`)
  if (options.maxmemoryPolicy !== undefined) lines.push(`maxmemory-policy ${options.maxmemoryPolicy}`)
  if (options.replicaOf !== undefined) lines.push(`replicaof ${options.replicaOf.host} ${options.replicaOf.port}`)
  if (options.masterAuth !== undefined) lines.push(`masterauth ${quoteConfigValue(options.masterAuth)}`)
  if (options.cluster !== undefined && options.cluster !== false) {
    const nodeTimeoutMs = options.cluster === true ? 1_000 : options.cluster.nodeTimeoutMs ?? 1_000
    lines.push('cluster-enabled yes', 'cluster-config-file nodes.conf', `cluster-node-timeout ${nodeTimeoutMs}`)
    if (clusterBusPort !== undefined) lines.push(`cluster-port ${clusterBusPort}`)
  }
  lines.push(...options.extraConfig ?? [])
  return lines
}

/** Starts a redis-server in a fresh temp dir and waits until it answers PING. */
export async function startRedis (options: RedisServerOptions = {}): Promise<RedisServer> {
  const dir = await makeTempDir('redis')
  try {
    const tls = tlsOptions(options.tls)
    const certificates = tls === undefined
      ? undefined
      : tls.certificates ?? await generateCertificates(path.join(dir, 'tls'))
    const clustered = options.cluster !== undefined && options.cluster !== false
    for (let attempt = 1; ; attempt++) {
      const port = options.port ?? await getFreePort()
      const clusterBusPort = clustered ? await getFreePort() : undefined
      const endpoint: RedisEndpoint = {
        host: '127.0.0.1',
        port,
        password: options.password,
        // Always present the client certificate: harmless when the server does not ask for it.
        tls: certificates === undefined
          ? undefined
          : { caFile: certificates.ca.certFile, certFile: certificates.client.certFile, keyFile: certificates.client.keyFile }
      }
      try {
        return await launchRedis({
          dir,
          port,
          configLines: buildRedisConfig(options, port, clusterBusPort, certificates),
          endpoint,
          url: `${certificates === undefined ? 'redis' : 'rediss'}://127.0.0.1:${port}`,
          password: options.password,
          certificates,
          startTimeoutMs: options.startTimeoutMs,
          ...(options.bin === undefined ? {} : { bin: options.bin })
        })
      } catch (err) {
        if (options.port !== undefined || attempt >= PORT_ATTEMPTS || !isAddressInUse(err)) throw err
      }
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw err
  }
}

/**
 * Starts `count` servers in parallel. Every server that did start is pushed to `started`
 * (even when another failed) so the caller can stop them all before rethrowing.
 */
export async function startEach (count: number, start: () => Promise<RedisServer>, started: RedisServer[]): Promise<RedisServer[]> {
  const results = await Promise.allSettled(Array.from({ length: count }, start))
  const servers: RedisServer[] = []
  for (const result of results) {
    if (result.status === 'fulfilled') {
      started.push(result.value)
      servers.push(result.value)
    }
  }
  const failure = results.find((result) => result.status === 'rejected')
  if (failure !== undefined) throw failure.reason
  return servers
}
