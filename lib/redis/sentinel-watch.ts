// The Sentinel side of REDIS_FAILOVER_WAIT (DESIGN.md §3): one subscription per configured Sentinel to
// the failover events of our master, and, while a replica is being promoted, a poll of that replica.
//
// Why the poll: the Sentinels only name the new master (`+switch-master`) after their next INFO of the
// promoted replica, which they send once a second, so a client that waits for them stays away from a
// master that already takes writes for up to a second (0.81–0.86 s of a 2.2–2.35 s gap, measured in
// test/faults/failover-sentinel.test.ts). The Sentinel running the failover announces the replica it
// promotes (`+selected-slave`) before it sends it REPLICAOF NO ONE; from then on this module asks that
// replica `INFO replication` every PROMOTION_POLL_MS, and reports it the moment it answers
// `role:master`. INFO, not ROLE: INFO is already in the suite's ACL rule (ioredis' ready check).
import { Redis, type RedisOptions, type SentinelAddress } from 'ioredis'

export interface Address { host: string, port: number }

export interface SentinelWatchOptions {
  sentinels: ReadonlyArray<Partial<SentinelAddress>>
  /** The master name (REDIS_SENTINEL_NAME). */
  name: string
  /** Options for the connections to the Sentinels: credentials, TLS, reconnect strategy. */
  connection: RedisOptions
  /**
   * Options for a connection to a data node (credentials, TLS of the master and replicas), for the
   * promotion poll; without them the client waits for `+switch-master`.
   */
  dataConnection?: RedisOptions
  /** A failover of this master started: stop writing to the old master before the promotion. */
  onPromoting: () => void
  /** The replica being promoted answers as a master, before the Sentinels name it. */
  onPromoted?: (oldMaster: Address, newMaster: Address) => void
  /** The leader Sentinel saw the promotion (`+promoted-slave`): the failover is committed. */
  onConfirmed?: () => void
  /** `+switch-master`: the new master's address. */
  onSwitched: (host: string, port: number) => void
  /** Every Sentinel that started a failover gave it up: reconnect. */
  onSettled: () => void
}

/**
 * The events that announce a failover, earliest first: `+try-failover` comes with SENTINEL FAILOVER
 * (or, unplanned, once the master is objectively down), two or three ticks before REPLICAOF NO ONE;
 * the later ones are there in case the first was missed (a Sentinel connection re-established late).
 * `+selected-slave` and `+failover-state-wait-promotion` also name the replica being promoted.
 */
const STARTED = ['+try-failover', '+selected-slave', '+failover-state-send-slaveof-noone', '+failover-state-wait-promotion']
const NAMES_REPLICA = new Set(['+selected-slave', '+failover-state-wait-promotion'])
const SWITCHED = '+switch-master'
const PROMOTED = '+promoted-slave'
/**
 * One Sentinel gave up its failover attempt (not elected, no replica, timeout). Not
 * `+failover-end-for-timeout`: that one ends the replicas' reconfiguration, and `+switch-master` follows.
 */
const ABORTED = ['-failover-abort-not-elected', '-failover-abort-slave-timeout', '-failover-abort-no-good-slave']

/** How often the replica being promoted is asked for its role. */
const PROMOTION_POLL_MS = 20
/** A promotion not seen within this long is left to the Sentinels (their failover timeout is longer). */
const PROMOTION_POLL_FOR_MS = 10_000

/**
 * Subscribes to every configured Sentinel's failover events for one master. Failures are quiet: the
 * main client's reconnects still follow a failover without it, only later (the main client's copies
 * keep ioredis' failoverDetector, see plugins/redis.ts). Returns a function that closes the Sentinel
 * connections and any promotion poll.
 */
export function watchSentinels (options: SentinelWatchOptions): () => void {
  // Sentinel events name the master as "master <name> <ip> <port>" (master events), "<type> <id>
  // <ip> <port> @ <name> <ip> <port>" (replica and Sentinel events), or "<name> <old> <new>"
  // (+switch-master).
  const masterEvent = `master ${options.name} `
  const instanceEvent = `@ ${options.name} `
  // The Sentinels running a failover of ours: in an unplanned one several try and all but the
  // elected one abort, so one abort settles nothing while another Sentinel still runs it.
  const running = new Set<number>()
  let poll: { replica: string, stop: () => void } | undefined
  const stopPoll = (): void => {
    poll?.stop()
    poll = undefined
  }
  const pollReplica = (message: string): void => {
    // "slave <ip>:<port> <ip> <port> @ <name> <master-ip> <master-port>"
    const [type, , host, port, , , masterHost, masterPort] = message.split(' ')
    if (type !== 'slave' || options.dataConnection === undefined || options.onPromoted === undefined ||
      host === undefined || port === undefined || masterHost === undefined || masterPort === undefined) return
    const replica = `${host}:${port}`
    if (poll?.replica === replica) return
    stopPoll()
    const onPromoted = options.onPromoted
    const oldMaster = { host: masterHost, port: Number(masterPort) }
    const newMaster = { host, port: Number(port) }
    poll = {
      replica,
      stop: awaitPromotion({ ...options.dataConnection, ...newMaster }, () => {
        poll = undefined
        onPromoted(oldMaster, newMaster)
      })
    }
  }
  const clients = options.sentinels.map((address, index) => {
    const client = new Redis({
      ...options.connection,
      host: address.host,
      port: address.port,
      ...(address.family === undefined ? {} : { family: address.family }),
      // A subscriber's commands are SUBSCRIBE only; queueing them until connected is what we want.
      enableOfflineQueue: true,
      lazyConnect: false,
      connectionName: 'fastify-redis-suite-failover-watch'
    })
    client.on('error', () => {})
    client.subscribe(...STARTED, SWITCHED, PROMOTED, ...ABORTED).catch(() => {})
    client.on('message', (channel: string, message: string) => {
      if (channel === SWITCHED) {
        // "<name> <old-ip> <old-port> <new-ip> <new-port>"
        const [name, , , host, port] = message.split(' ')
        if (name !== options.name || host === undefined || port === undefined) return
        running.clear()
        stopPoll()
        options.onSwitched(host, Number(port))
        return
      }
      if (!message.startsWith(masterEvent) && !message.includes(instanceEvent)) return
      if (channel === PROMOTED) {
        options.onConfirmed?.()
      } else if (STARTED.includes(channel)) {
        running.add(index)
        options.onPromoting()
        if (NAMES_REPLICA.has(channel)) pollReplica(message)
      } else if (running.delete(index) && running.size === 0) {
        stopPoll()
        options.onSettled()
      }
    })
    return client
  })
  return () => {
    stopPoll()
    for (const client of clients) client.disconnect()
  }
}

/**
 * Asks one data node `INFO replication` every PROMOTION_POLL_MS until it answers `role:master` (then
 * calls `onPromoted` once), for at most PROMOTION_POLL_FOR_MS. Returns a function that stops it.
 */
function awaitPromotion (connection: RedisOptions, onPromoted: () => void): () => void {
  const client = new Redis({
    ...connection,
    // Waits for the connection, bounded by each INFO's own timeout; retries every poll interval.
    enableOfflineQueue: true,
    maxRetriesPerRequest: null,
    retryStrategy: () => PROMOTION_POLL_MS,
    commandTimeout: 500,
    lazyConnect: false,
    connectionName: 'fastify-redis-suite-promotion-watch'
  })
  client.on('error', () => {})
  const until = Date.now() + PROMOTION_POLL_FOR_MS
  let stopped = false
  const stop = (): void => {
    stopped = true
    client.disconnect()
  }
  const ask = (): void => {
    if (stopped) return
    if (Date.now() > until) {
      stop()
      return
    }
    client.info('replication').then((info) => {
      if (stopped) return
      if (!/^role:master\r?$/m.test(info)) {
        setTimeout(ask, PROMOTION_POLL_MS).unref()
        return
      }
      stop()
      onPromoted()
    }, () => { setTimeout(ask, PROMOTION_POLL_MS).unref() })
  }
  ask()
  return stop
}
