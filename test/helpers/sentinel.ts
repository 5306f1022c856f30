// startSentinelGroup(): one master, one replica and three sentinels with fast failure
// detection, returned only once every sentinel knows the master, the replica and the
// other sentinels, so a failover test can kill the master straight away.
import { rm } from 'node:fs/promises'
import { getFreePort } from './ports.js'
import { parseInfo, runRedisCli, type Address } from './redis-cli.js'
import { isAddressInUse, launchRedis, quoteConfigValue, type RedisServer } from './redis-process.js'
import { makeTempDir, startEach, startRedis } from './redis-server.js'
import type { TestCertificates } from './tls.js'
import { waitFor } from './wait.js'

export interface SentinelGroupOptions {
  /** The monitored master's name. Default 'mymaster'. */
  name?: string
  /** requirepass and masterauth of master and replica; sentinels use it as auth-pass. Sentinels themselves need none. */
  password?: string
  /** Bound on bringing the whole group up. Default 30000. */
  startTimeoutMs?: number
  /**
   * TLS-only master and replica (replication and Sentinel links over TLS too). `sentinels: true` also
   * makes the Sentinels TLS-only; otherwise clients reach them in plain text. Certificates are generated
   * once for the group unless given.
   */
  tls?: boolean | { sentinels?: boolean, certificates?: TestCertificates }
}

export interface SentinelGroup {
  name: string
  /** The master at startup. After a failover it may be a replica, or dead. */
  master: RedisServer
  /** The replica at startup: the one a failover promotes. */
  replica: RedisServer
  sentinels: RedisServer[]
  sentinelAddresses: Address[]
  password: string | undefined
  /** Set when the group runs TLS: the CA clients must trust. */
  certificates: TestCertificates | undefined
  /** The master as the sentinels currently see it (asks each live sentinel in turn). */
  getMasterAddress: () => Promise<Address>
  /** Stops sentinels first (no failover during shutdown), then the data nodes. */
  stop: () => Promise<void>
}

const SENTINELS = 3
const QUORUM = 2

interface SentinelTls { certificates: TestCertificates, tlsOnly: boolean }

async function startSentinel (name: string, master: Address, password: string | undefined, startTimeoutMs: number, tls?: SentinelTls): Promise<RedisServer> {
  const dir = await makeTempDir('sentinel')
  try {
    for (let attempt = 1; ; attempt++) {
      const port = await getFreePort()
      // With TLS data nodes, Sentinels reach master, replica and each other over TLS
      // (tls-replication) and announce their TLS port; clients use `port` (TLS-only or plain).
      const tlsPort = tls === undefined ? undefined : tls.tlsOnly ? port : await getFreePort()
      const configLines = [
        tls?.tlsOnly === true ? 'port 0' : `port ${port}`,
        ...(tls === undefined
          ? []
          : [`tls-port ${String(tlsPort)}`, 'tls-replication yes', 'tls-auth-clients no',
              `tls-cert-file ${quoteConfigValue(tls.certificates.server.certFile)}`,
              `tls-key-file ${quoteConfigValue(tls.certificates.server.keyFile)}`,
              `tls-ca-cert-file ${quoteConfigValue(tls.certificates.ca.certFile)}`]),
        'sentinel resolve-hostnames no',
        `sentinel monitor ${name} ${master.host} ${master.port} ${QUORUM}`,
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 5000`,
        `sentinel parallel-syncs ${name} 1`
      ]
      if (password !== undefined) configLines.push(`sentinel auth-pass ${name} ${quoteConfigValue(password)}`)
      try {
        const certs = tls?.certificates
        const tlsClient = tls?.tlsOnly === true && certs !== undefined
          ? { caFile: certs.ca.certFile, certFile: certs.client.certFile, keyFile: certs.client.keyFile }
          : undefined
        return await launchRedis({
          dir,
          port,
          configLines,
          sentinel: true,
          startTimeoutMs,
          endpoint: { host: '127.0.0.1', port, tls: tlsClient },
          url: `${tlsClient === undefined ? 'redis' : 'rediss'}://127.0.0.1:${port}`,
          certificates: certs
        })
      } catch (err) {
        if (attempt >= 4 || !isAddressInUse(err)) throw err
      }
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw err
  }
}

/** SENTINEL MASTER / REPLICAS replies come as JSON objects (RESP3 maps) with --json. */
async function sentinelQuery (sentinel: RedisServer, ...args: string[]): Promise<unknown> {
  return JSON.parse(await sentinel.cliWith({ json: true, timeoutMs: 2_000 }, 'SENTINEL', ...args)) as unknown
}

function field (record: unknown, key: string): string | undefined {
  if (record === null || typeof record !== 'object') return undefined
  const value: unknown = (record as Record<string, unknown>)[key]
  return typeof value === 'string' ? value : undefined
}

/** Throws (so waitFor reports it) until this sentinel sees the whole group healthy. */
async function assertSentinelReady (sentinel: RedisServer, name: string, replicaPort: number): Promise<true> {
  const master = await sentinelQuery(sentinel, 'MASTER', name)
  const flags = field(master, 'flags')
  if (flags !== 'master') throw new Error(`sentinel ${sentinel.port} sees master flags ${String(flags)}`)
  const others = field(master, 'num-other-sentinels')
  if (others !== String(SENTINELS - 1)) throw new Error(`sentinel ${sentinel.port} knows ${String(others)} other sentinels`)
  const replicas = await sentinelQuery(sentinel, 'REPLICAS', name)
  const replica = Array.isArray(replicas) ? replicas.find((r) => field(r, 'port') === String(replicaPort)) : undefined
  if (replica === undefined) throw new Error(`sentinel ${sentinel.port} does not know the replica yet`)
  if (field(replica, 'flags') !== 'slave' || field(replica, 'master-link-status') !== 'ok') {
    throw new Error(`sentinel ${sentinel.port} sees the replica as ${String(field(replica, 'flags'))}, link ${String(field(replica, 'master-link-status'))}`)
  }
  return true
}

export async function startSentinelGroup (options: SentinelGroupOptions = {}): Promise<SentinelGroup> {
  const { name = 'mymaster', password, startTimeoutMs = 30_000 } = options
  const tlsOption = options.tls === true ? {} : options.tls === false ? undefined : options.tls
  const deadline = Date.now() + startTimeoutMs
  const remaining = (): number => Math.max(1_000, deadline - Date.now())
  const started: RedisServer[] = []
  try {
    // The master generates the group's certificates in its own dir (removed with it) unless given.
    const masterTls = tlsOption === undefined ? {} : { tls: { certificates: tlsOption.certificates }, extraConfig: ['tls-replication yes'] }
    const master = await startRedis({ password, masterAuth: password, ...masterTls })
    started.push(master)
    const certificates = master.certificates
    const dataTls = certificates === undefined ? {} : { tls: { certificates }, extraConfig: ['tls-replication yes'] }
    const sentinelTls = certificates === undefined ? undefined : { certificates, tlsOnly: tlsOption?.sentinels === true }
    const replica = await startRedis({ password, masterAuth: password, replicaOf: master, ...dataTls })
    started.push(replica)
    // Sentinels find replicas through the master's INFO, refreshed only every 10 s: start
    // them once the replica is attached so the first INFO already lists it.
    await waitFor(async () => parseInfo(await replica.cli('INFO', 'replication')).get('master_link_status') === 'up',
      { what: 'the replica to sync with the master', timeoutMs: remaining() })

    const sentinels = await startEach(SENTINELS, () => startSentinel(name, master, password, remaining(), sentinelTls), started)
    await Promise.all(sentinels.map((sentinel) => waitFor(() => assertSentinelReady(sentinel, name, replica.port),
      { what: `sentinel ${sentinel.port} to see master, replica and the other sentinels`, timeoutMs: remaining(), intervalMs: 200 })))

    let stopping: Promise<void> | undefined
    return {
      name,
      master,
      replica,
      sentinels,
      sentinelAddresses: sentinels.map((s) => ({ host: s.host, port: s.port })),
      password,
      certificates,
      async getMasterAddress () {
        const failures: string[] = []
        for (const sentinel of sentinels) {
          if (!sentinel.isRunning()) continue
          try {
            const [host, port] = (await runRedisCli(sentinel.endpoint, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name], { timeoutMs: 1_000 })).split('\n')
            if (host !== undefined && host !== '' && port !== undefined) return { host, port: Number(port) }
            failures.push(`${sentinel.port}: no master named ${name}`)
          } catch (err) {
            failures.push(`${sentinel.port}: ${err instanceof Error ? err.message : String(err)}`)
          }
        }
        throw new Error(`no sentinel could name the master: ${failures.join('; ') || 'all sentinels are down'}`)
      },
      stop () {
        stopping ??= (async () => {
          await Promise.all(sentinels.map((s) => s.stop()))
          await Promise.all([replica.stop(), master.stop()])
        })()
        return stopping
      }
    }
  } catch (err) {
    await Promise.all(started.map((server) => server.stop()))
    throw err
  }
}
