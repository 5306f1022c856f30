// startCluster(): a Redis Cluster of real processes (3 masters + 1 replica each by
// default) with a 1 s node timeout for fast failover, returned only once every node
// reports cluster_state:ok with all 16384 slots served and every replica in sync.
import { runRedisCli, parseInfo, type Address } from './redis-cli.js'
import type { RedisServer } from './redis-process.js'
import { startEach, startRedis } from './redis-server.js'
import { waitFor } from './wait.js'

export interface ClusterOptions {
  /** At least 3 (redis-cli --cluster create refuses fewer). Default 3. */
  masters?: number
  replicasPerMaster?: number
  /** requirepass and masterauth on every node. */
  password?: string
  /** cluster-node-timeout. Default 1000. */
  nodeTimeoutMs?: number
  /** Bound on bringing the cluster up. Default 30000. */
  startTimeoutMs?: number
  /** TLS-only nodes (client, cluster bus and replication links), one certificate set for all. */
  tls?: boolean
}

export interface RedisCluster {
  nodes: RedisServer[]
  startupNodes: Address[]
  password: string | undefined
  /** The nodes the cluster currently considers healthy masters. */
  masters: () => Promise<RedisServer[]>
  /** The nodes the cluster currently considers healthy replicas. */
  replicas: () => Promise<RedisServer[]>
  stop: () => Promise<void>
}

const SLOTS = 16384

interface ClusterNodeLine {
  port: number
  flags: string[]
}

/** CLUSTER NODES lines: "<id> <ip:port@cport[,hostname]> <flags> ..." */
function parseClusterNodes (text: string): ClusterNodeLine[] {
  return text.split('\n').filter((line) => line.trim() !== '').map((line) => {
    const [, address = '', flags = ''] = line.split(' ')
    const port = Number(address.split('@')[0]?.split(':').pop())
    return { port, flags: flags.split(',') }
  })
}

async function assertNodeReady (node: RedisServer, nodeCount: number, masterCount: number): Promise<true> {
  const info = parseInfo(await node.cliWith({ timeoutMs: 2_000 }, 'CLUSTER', 'INFO'))
  const expected: Record<string, string> = {
    cluster_state: 'ok',
    cluster_slots_assigned: String(SLOTS),
    cluster_slots_ok: String(SLOTS),
    cluster_known_nodes: String(nodeCount),
    cluster_size: String(masterCount)
  }
  for (const [key, value] of Object.entries(expected)) {
    if (info.get(key) !== value) throw new Error(`node ${node.port} has ${key}:${String(info.get(key))}, want ${value}`)
  }
  const replication = parseInfo(await node.cliWith({ timeoutMs: 2_000 }, 'INFO', 'replication'))
  if (replication.get('role') === 'slave' && replication.get('master_link_status') !== 'up') {
    throw new Error(`replica ${node.port} is not in sync with its master yet`)
  }
  return true
}

export async function startCluster (options: ClusterOptions = {}): Promise<RedisCluster> {
  const { masters = 3, replicasPerMaster = 1, password, nodeTimeoutMs = 1_000, startTimeoutMs = 30_000, tls = false } = options
  if (masters < 3) throw new Error('a Redis Cluster needs at least 3 masters')
  const deadline = Date.now() + startTimeoutMs
  const remaining = (): number => Math.max(1_000, deadline - Date.now())
  const nodeCount = masters * (1 + replicasPerMaster)
  const started: RedisServer[] = []
  try {
    const nodeOptions = { password, masterAuth: password, cluster: { nodeTimeoutMs }, ...(tls ? { extraConfig: ['tls-cluster yes', 'tls-replication yes'] } : {}) }
    // With TLS the first node generates the certificates (in its dir) and the others reuse them.
    const seed = tls ? await startRedis({ ...nodeOptions, tls: true, startTimeoutMs: remaining() }) : undefined
    if (seed !== undefined) started.push(seed)
    const certificates = seed?.certificates
    const rest = await startEach(nodeCount - (seed === undefined ? 0 : 1),
      () => startRedis({ ...nodeOptions, ...(certificates === undefined ? {} : { tls: { certificates } }), startTimeoutMs: remaining() }), started)
    const nodes = seed === undefined ? rest : [seed, ...rest]
    const first = nodes[0]
    if (first === undefined) throw new Error('unreachable: a cluster has nodes')
    // redis-cli picks masters and replicas itself; --cluster-yes accepts its plan.
    await runRedisCli(first.endpoint, ['--cluster', 'create', ...nodes.map((n) => `${n.host}:${n.port}`),
      '--cluster-replicas', String(replicasPerMaster), '--cluster-yes'], { timeoutMs: remaining() })
    await Promise.all(nodes.map((node) => waitFor(() => assertNodeReady(node, nodeCount, masters),
      { what: `cluster node ${node.port} to report cluster_state:ok`, timeoutMs: remaining(), intervalMs: 200 })))

    const byRole = async (role: 'master' | 'slave'): Promise<RedisServer[]> => {
      const failures: string[] = []
      for (const node of nodes) {
        if (!node.isRunning()) continue
        try {
          const lines = parseClusterNodes(await node.cliWith({ timeoutMs: 2_000 }, 'CLUSTER', 'NODES'))
          const ports = new Set(lines.filter((l) => l.flags.includes(role) && !l.flags.includes('fail') && !l.flags.includes('fail?')).map((l) => l.port))
          return nodes.filter((n) => ports.has(n.port))
        } catch (err) {
          failures.push(`${node.port}: ${err instanceof Error ? err.message : String(err)}`)
        }
      }
      throw new Error(`no cluster node answered CLUSTER NODES: ${failures.join('; ') || 'all nodes are down'}`)
    }
    let stopping: Promise<void> | undefined
    return {
      nodes,
      startupNodes: nodes.map((n) => ({ host: n.host, port: n.port })),
      password,
      masters: () => byRole('master'),
      replicas: () => byRole('slave'),
      stop () {
        stopping ??= Promise.all(nodes.map((n) => n.stop())).then(() => undefined)
        return stopping
      }
    }
  } catch (err) {
    await Promise.all(started.map((node) => node.stop()))
    throw err
  }
}
