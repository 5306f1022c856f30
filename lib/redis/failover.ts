// REDIS_FAILOVER_WAIT (DESIGN.md §3): a failover is not an outage. While the connection is being
// re-established, and for at most `budgetMs` counted from the moment it was lost, commands wait in
// ioredis' offline queue instead of failing; the queue is sent as soon as the client is ready again.
// When the budget runs out the queue is rejected and the client is back to failing fast (offline
// queue off), so an outage older than the budget costs what it cost before: an immediate error, and
// no memory (the queue holds at most what arrives during one budget).
//
// The switch happens on connection events, once per outage: nothing is added to a command's path
// while connected (STYLE.md point 7). ioredis 6 reads `enableOfflineQueue`, `commandTimeout`,
// `maxRetriesPerRequest` and `retryStrategy` from `client.options` at the moment it needs them,
// which is what makes a per-outage switch possible without wrapping `sendCommand`.
//
// On Sentinel, `watchSentinels` adds a planned failover's early warning. The Sentinel that runs it
// announces `+try-failover` when SENTINEL FAILOVER is received, and sends REPLICAOF NO ONE to the
// replica two or three Sentinel ticks (50-100 ms each) later. A write the old master accepts after that
// promotion is lost when it is turned into a replica (about 8 s after +switch-master), and ioredis' own
// failoverDetector only moves on `+switch-master`, about a second after the promotion. So on the
// warning the client stops writing to the old master at once (new commands go to the offline queue),
// lets the commands already sent get their replies, disconnects, and stays away from the old master
// until `+switch-master` names the new one (or the failover is given up). When the watch sees the
// promoted replica answer as a master before the Sentinels name it (sentinel-watch.ts), `promoted()`
// connects there at once: until `+switch-master`, the client's Sentinel lookups of the old master's
// address are mapped to the new one (ioredis' natMap, read on every lookup).
import type { Cluster, NatMap, Redis, RedisOptions } from 'ioredis'
import { FailoverWaitExpiredError } from '../errors/index.js'

export interface FailoverWaitOptions {
  /** REDIS_FAILOVER_WAIT in ms; 0 disables the wait (every command fails fast while disconnected). */
  budgetMs: number
  /**
   * False when the link had already stopped answering before it closed (a frozen server or a
   * black-holed link, dropped after PING timeouts): that is an outage from its first failed PING, not a
   * failover, so nothing waits. Read on 'close' before anyone else marks the connection down.
   */
  answering?: () => boolean
  /** Called once per outage when the budget ran out with the connection still down. */
  onExpired?: (lostForMs: number, rejected: number) => void
}

/** ioredis internals this module reads; all exist in ioredis 6 (asserted by the tests). */
interface Internals {
  offlineQueue: { length: number }
  commandQueue: { length: number }
  reconnectTimeout: NodeJS.Timeout | null
  flushQueue: (error: Error, options: { offlineQueue: boolean, commandQueue: boolean }) => void
}

/** How long a hold waits for the replies to commands already sent before dropping them (unknown outcome). */
const DRAIN_MS = 200
/**
 * How long a hold keeps the client away from the old master when no Sentinel says how the failover
 * ended (Sentinel connections lost): past it the client reconnects wherever the Sentinels point.
 */
const HOLD_CEILING_MS = 10_000
/** How long a promotion followed early may go unconfirmed by the leader Sentinel (2 × its INFO period). */
const CONFIRM_MS = 2_000

/**
 * The bounded failover wait of one standalone or Sentinel client built with the bounded options
 * (offline queue off, `maxRetriesPerRequest: 0`). A Cluster client follows a failover inside each
 * command's redirections instead: ClusterFailoverWait, below.
 */
export class FailoverWait {
  readonly #client: Redis
  readonly #internals: Internals
  readonly #options: FailoverWaitOptions
  readonly #fastFail: Pick<RedisOptions, 'enableOfflineQueue' | 'commandTimeout' | 'maxRetriesPerRequest' | 'retryStrategy'>
  #connected: boolean
  #lostAt: number | undefined
  /** host:port of the last +switch-master followed. */
  #switchedTo: string | undefined
  #timer: NodeJS.Timeout | undefined
  /** The natMap the client was built with; restored when a redirect ends. */
  readonly #natMap: NatMap | null | undefined
  /** A promotion followed before the Sentinels name it: the client's lookups are redirected. */
  #redirected = false
  /** Set from `promoted()` until the leader confirms the promotion (or the redirect ends). */
  #unconfirmed: NodeJS.Timeout | undefined
  /** Set while a failover is announced and not yet settled: do not reconnect to the old master. */
  #held = false
  #heldSince = 0
  /** The next close is one we caused: reject what was in flight ourselves (ioredis will not, see #open). */
  #closingOnPurpose = false
  /**
   * A connection attempt under way when the new master was named: the Sentinels may have pointed it at
   * the old one, so it is dropped at its 'connect' and made again at once.
   */
  #redoConnect = false
  readonly #listeners: Array<['connect' | 'ready' | 'close' | 'end', () => void]>
  /**
   * The reconnect strategy while a failover is held (installed on this client only, so duplicates
   * made earlier keep their own): the next attempt waits for release(), never past the hold's ceiling.
   */
  readonly #heldRetry = (times: number): number | null | undefined => {
    const left = this.#holdLeft()
    if (left > 0) return left
    const retry = this.#fastFail.retryStrategy
    return retry == null ? undefined : retry(times) as number | null | undefined
  }

  constructor (client: Redis, options: FailoverWaitOptions) {
    this.#client = client
    this.#internals = client as unknown as Internals
    this.#options = options
    const settings = client.options
    this.#fastFail = {
      enableOfflineQueue: settings.enableOfflineQueue,
      commandTimeout: settings.commandTimeout,
      maxRetriesPerRequest: settings.maxRetriesPerRequest,
      retryStrategy: settings.retryStrategy
    }
    this.#natMap = settings.natMap
    this.#connected = client.status === 'ready'
    this.#listeners = [['connect', () => { this.#onConnect() }], ['ready', () => { this.#onReady() }],
      ['close', () => { this.#onClose() }], ['end', () => { this.#onEnd() }]]
    for (const [event, listener] of this.#listeners) client.on(event, listener)
  }

  /**
   * Milliseconds a command issued now may still wait for the connection (0 when connected or once
   * the budget is spent): a caller with its own deadline, like a session request, adds it.
   */
  waitLeft (): number {
    return this.#timer === undefined || this.#lostAt === undefined ? 0 : Math.max(0, this.#lostAt + this.#options.budgetMs - Date.now())
  }

  /** Stops following the connection and restores the fail-fast options. */
  detach (): void {
    for (const [event, listener] of this.#listeners) this.#client.off(event, listener)
    this.#held = false
    this.#endRedirect()
    this.#restore()
  }

  /**
   * A failover is announced: stop sending to the current master. New commands go to the offline queue
   * at once; the commands already sent get their replies (for up to DRAIN_MS, well inside the Sentinel
   * ticks before the promotion), then the client disconnects and holds every command until `release()`
   * or the end of the budget, and stays away from the old master until `release()`. True when this
   * call started the hold (false: already held, or the wait is off).
   */
  hold (): boolean {
    // Already following the promoted replica: a late announcement from another Sentinel changes nothing.
    if (this.#options.budgetMs <= 0 || this.#held || this.#redirected) return false
    this.#held = true
    this.#heldSince = Date.now()
    this.#client.options.retryStrategy = this.#heldRetry
    if (!this.#connected) {
      // Already down: keep away from the old master. An attempt under way or pending (RELIABILITY
      // finding 3) was pointed there by the Sentinels: #onConnect drops it before it is ready.
      this.#dropAttempt()
      return true
    }
    this.#connected = false
    this.#open(this.#heldSince)
    // ioredis writes a command only while `stream.writable`; the setter is Node's (it sets
    // `_writableState.writable`) and leaves reading, replies and end() as they were.
    const stream = (this.#client as unknown as { stream?: { writable: boolean } }).stream
    if (stream !== undefined) stream.writable = false
    const drain = (): void => {
      // Released meanwhile or not: this stream no longer takes commands, so it must go.
      if (this.#client.status !== 'ready') return
      if (this.#internals.commandQueue.length > 0 && Date.now() - this.#heldSince < DRAIN_MS) {
        setImmediate(drain)
        return
      }
      this.#closingOnPurpose = true
      this.#client.disconnect(true)
    }
    drain()
    return true
  }

  /**
   * `+switch-master` named the new master. Held: reconnect now. Not held (the announcement was missed):
   * leave the old master the same careful way as a hold, and reconnect at once. Already connected to
   * that address (a late +switch-master from another Sentinel): nothing to do. An address written
   * differently (a host name for an IP) costs one careful reconnect, never a failed command.
   */
  switched (host: string, port: number): void {
    this.#endRedirect() // the Sentinels name the new master themselves now
    // A repeat of the switch we already followed (each Sentinel announces it): the socket's address may
    // not be spelled as the Sentinels spell it (hostnames, IPv4-mapped IPv6), so remember what we followed.
    const target = `${host}:${port}`
    const followed = this.#switchedTo === target
    this.#switchedTo = target
    if (this.#held) {
      this.release()
      return
    }
    const stream = (this.#client as unknown as { stream?: { remoteAddress?: string, remotePort?: number } }).stream
    const onIt = stream?.remotePort === port && (stream.remoteAddress === host || followed)
    if (this.#client.status === 'ready' && onIt) return
    this.#move()
  }

  /**
   * The replica being promoted answers as a master (seen by the Sentinel watch's poll, up to a second
   * before the Sentinels name it): while the failover is held, connect to it now. Until `+switch-master`
   * (at most HOLD_CEILING_MS), the Sentinels' answer for the old master's address is mapped to it.
   */
  promoted (oldMaster: { host: string, port: number }, newMaster: { host: string, port: number }): void {
    if (!this.#held) return
    const from = `${oldMaster.host}:${oldMaster.port}`
    const to = this.#reachable(newMaster)
    const until = Date.now() + HOLD_CEILING_MS
    const natMap = this.#natMap
    this.#client.options.natMap = (key: string) => key === from && Date.now() < until ? to : lookup(natMap, key)
    this.#redirected = true
    this.#switchedTo = `${newMaster.host}:${newMaster.port}`
    this.#held = false
    // Until the leader Sentinel sees the promotion itself (`+promoted-slave`, at its next once-a-second
    // INFO), the failover is not committed: a leader lost in that second would leave the replica to be
    // turned back, with our writes. Unconfirmed after two INFO periods (the leader lost, or only slow
    // on a loaded machine): leave the replica and hold again, as before the promotion was seen, until
    // the Sentinels name a master or give up. Never back to the old master here: a slow leader still
    // completes the failover, and the old master would take writes its demotion then discards.
    this.#unconfirmed = setTimeout(() => {
      this.#unconfirmed = undefined
      if (this.#endRedirect()) this.hold()
    }, CONFIRM_MS)
    this.#unconfirmed.unref()
    this.#reconnectNow()
  }

  /** The leader Sentinel saw the promotion (`+promoted-slave`): the failover followed early is committed. */
  confirmed (): void {
    clearTimeout(this.#unconfirmed)
    this.#unconfirmed = undefined
  }

  /**
   * Every Sentinel gave the failover up: reconnect now. If the client had already followed the
   * promotion (a failover given up after it, by its timeout), go back to what the Sentinels name.
   */
  release (): void {
    const redirected = this.#endRedirect()
    if (this.#held) {
      this.#held = false
      this.#reconnectNow()
    } else if (redirected) {
      this.#move()
    }
  }

  /** An address as the Sentinels announce it → the one to connect to (the client's own natMap). */
  #reachable (address: { host: string, port: number }): { host: string, port: number } {
    return lookup(this.#natMap, `${address.host}:${address.port}`) ?? address
  }

  /** Ends a redirect of the Sentinels' answers; true when one was on. */
  #endRedirect (): boolean {
    this.confirmed()
    if (!this.#redirected) return false
    this.#redirected = false
    // ioredis' default is null, which its types do not spell.
    ;(this.#client.options as { natMap?: NatMap | null }).natMap = this.#natMap
    return true
  }

  /** Leaves the current master for the one the Sentinels name now, the careful way of a hold when connected. */
  #move (): void {
    if (this.#client.status !== 'ready') {
      this.#reconnectNow()
      return
    }
    if (this.hold()) this.#held = false // moving now: the reconnect after the drain is not held
  }

  /**
   * The Sentinels now name the new master: connect to it now. A pending reconnect (held, or a backoff)
   * is brought forward; an attempt already under way may have been pointed at the old master, so it is
   * made again (dropped at its 'connect', where ioredis can reconnect; never while it asks the
   * Sentinels, where a disconnect would end the client).
   */
  #reconnectNow (): void {
    const status = this.#client.status
    if (status === 'connecting' || status === 'connect') {
      this.#redoConnect = true
      this.#dropAttempt()
      return
    }
    if (status !== 'reconnecting') return
    const pending = this.#internals.reconnectTimeout
    if (pending !== null) clearTimeout(pending)
    this.#internals.reconnectTimeout = null
    this.#client.connect().catch(() => {})
  }

  /** Milliseconds the client still keeps away from the old master (0: not held, or past the ceiling). */
  #holdLeft (): number {
    if (!this.#held) return 0
    const left = this.#heldSince + HOLD_CEILING_MS - Date.now()
    if (left <= 0) this.#held = false
    return Math.max(0, left)
  }

  #onConnect (): void {
    // Socket open, handshake under way, nothing sent yet: an attempt that may reach the old master goes.
    if (this.#redoConnect || this.#holdLeft() > 0) this.#dropAttempt()
  }

  /**
   * Drops a connection attempt that has its socket (status 'connect', or 'connecting' once the
   * Sentinels have answered and the TCP connection is under way): destroyed, not ended, so no reply
   * still in flight (the ready check's INFO) can make it 'ready'; ioredis' close handler then
   * schedules the next attempt. An attempt still asking the Sentinels has no socket of its own yet
   * (`stream` is the previous, closed one) and is left alone: a disconnect there ends the client.
   */
  #dropAttempt (): void {
    const status = this.#client.status
    const stream = (this.#client as unknown as { stream?: { connecting: boolean, destroyed: boolean, destroy: () => void } }).stream
    if (stream === undefined || stream.destroyed) return
    if (status === 'connect' || (status === 'connecting' && stream.connecting)) stream.destroy()
  }

  #onReady (): void {
    // ioredis emits 'ready' (on the next tick) after it has sent the offline queue on the new stream.
    this.#connected = true
    this.#lostAt = undefined
    this.#held = false
    this.#restore()
  }

  #onClose (): void {
    if (this.#closingOnPurpose) {
      this.#closingOnPurpose = false
      // Whatever was still in flight after the drain has an unknown outcome: fail it, as a loss would.
      this.#internals.flushQueue(new Error('Connection is closed.'), { offlineQueue: false, commandQueue: true })
      return
    }
    if (this.#redoConnect) {
      this.#redoConnect = false
      this.#reconnectNow()
      return
    }
    // A failed reconnect attempt inside the same outage, boot, or the app closing: nothing to wait for.
    if (!this.#connected || this.#client.status === 'end') return
    this.#connected = false
    if (this.#options.budgetMs <= 0 || this.#options.answering?.() === false) return
    // ioredis emits 'close' on the next tick, after its close handler has rejected the commands in
    // flight (their outcome is unknown: a resent INCR could count twice).
    this.#open(Date.now())
  }

  #onEnd (): void {
    // No more reconnects (quit, disconnect, or REDIS_MAX_RETRIES spent): ioredis has already rejected
    // everything queued; keep the client failing fast.
    this.#connected = false
    this.#lostAt = undefined
    this.#held = false
    this.#redoConnect = false
    this.#endRedirect()
    this.#restore()
  }

  /** Opens the wait: queue commands until ready or until the budget from `lostAt` is spent. */
  #open (lostAt: number): void {
    this.#lostAt = lostAt
    const settings = this.#client.options
    // With `maxRetriesPerRequest: 0` ioredis empties the offline queue on every reconnect attempt.
    settings.maxRetriesPerRequest = null
    settings.enableOfflineQueue = true
    // A queued command's own timer starts when it is issued; it must outlast the wait for the
    // connection (the budget, enforced by #expire) plus the usual bound on the reply.
    settings.commandTimeout = this.#options.budgetMs + (this.#fastFail.commandTimeout ?? 0)
    this.#timer = setTimeout(() => { this.#expire() }, Math.max(0, lostAt + this.#options.budgetMs - Date.now()))
    this.#timer.unref()
  }

  #expire (): void {
    const since = this.#lostAt ?? Date.now()
    this.#restore()
    const rejected = this.#internals.offlineQueue.length
    this.#internals.flushQueue(new FailoverWaitExpiredError(`the Redis connection was lost ${Date.now() - since} ms ago and did not come back within REDIS_FAILOVER_WAIT (${this.#options.budgetMs} ms)`),
      { offlineQueue: true, commandQueue: false })
    this.#options.onExpired?.(Date.now() - since, rejected)
    // A failover still held past the budget: commands fail fast from now on, and the client keeps
    // away from the old master (it would accept writes the promotion then discards) until release().
    if (this.#held) this.#client.options.retryStrategy = this.#heldRetry
  }

  #restore (): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    Object.assign(this.#client.options, this.#fastFail)
  }
}

/** ioredis' natMap (an object or a function) applied to one "host:port". */
function lookup (natMap: NatMap | null | undefined, key: string): { host: string, port: number } | null {
  if (natMap == null) return null
  return typeof natMap === 'function' ? natMap(key) : natMap[key] ?? null
}

export interface ClusterFailoverWaitOptions {
  /** REDIS_FAILOVER_WAIT in ms; 0 disables the wait (a command gets the usual redirections only). */
  budgetMs: number
  /** REDIS_COMMAND_TIMEOUT in ms: the usual bound on one command, added to the wait. */
  commandTimeoutMs: number
  /** Called once per outage when the budget ran out with node connections still being lost. */
  onExpired?: (lostForMs: number) => void
}

/** ioredis Cluster internals this class adjusts; all exist in ioredis 6 (asserted by the tests). */
interface ClusterInternals {
  connectionPool: { redisOptions: RedisOptions }
}

/** How often, during a Cluster wait, the node clients' command timeout is brought to the deadline. */
const CLUSTER_TICK_MS = 100

/**
 * REDIS_FAILOVER_WAIT on Cluster. A Cluster client follows a failover inside each command: a lost
 * node's commands are retried every `retryDelayOnFailover` (CLUSTERDOWN every
 * `retryDelayOnClusterDown`), each retry refreshing the slots, and MOVED is followed at once. What
 * bounds that today is `maxRedirections` and the command timeout, both about one
 * REDIS_COMMAND_TIMEOUT: too short for a replica to take over (cluster-node-timeout + election).
 *
 * When the connection to a master of the slot map is lost (`-node`; a replica's, or one of a node the
 * slots no longer name, is not a failover), and for one budget from that moment, commands issued get
 * enough redirections and a command timeout reaching the end of the budget (plus the usual
 * REDIS_COMMAND_TIMEOUT for the reply); the timeout is moved every 100 ms, by a timer that exists only
 * during the wait. Past the budget the usual bounds come back, so a longer outage fails as fast as
 * before. A new wait opens only after a budget without node losses: while an outage lasts, the
 * retries keep losing connections to the dead node, so it does not grant itself a new budget.
 */
export class ClusterFailoverWait {
  readonly #cluster: Cluster
  readonly #options: ClusterFailoverWaitOptions
  readonly #maxRedirections: number
  #lostAt: number | undefined
  #lastLoss = Number.NEGATIVE_INFINITY
  #timer: NodeJS.Timeout | undefined
  readonly #onLoss = (node: Redis): void => { this.#loss(node) }

  constructor (cluster: Cluster, options: ClusterFailoverWaitOptions) {
    this.#cluster = cluster
    this.#options = options
    this.#maxRedirections = cluster.options.maxRedirections ?? 16
    cluster.on('-node', this.#onLoss)
  }

  /** Milliseconds a command issued now may still wait for the failover (0 outside a wait). */
  waitLeft (): number {
    return this.#lostAt === undefined ? 0 : Math.max(0, this.#lostAt + this.#options.budgetMs - Date.now())
  }

  detach (): void {
    this.#cluster.off('-node', this.#onLoss)
    if (this.#lostAt !== undefined) this.#end(false)
  }

  #loss (node: Redis): void {
    // At boot and on close the pool drops the connections it no longer needs: not a loss.
    if (this.#cluster.status !== 'ready') return
    // Only a master of the current slot map is a loss the commands wait out. The pool also drops a
    // replica's connection (commands never go there) and any node a slots refresh no longer lists (a
    // CLUSTER SLOTS answer may leave out a replica): counting those opened a wait before the real loss,
    // which then found the budget partly spent and no new one granted (RELIABILITY finding 4: requests
    // issued after a master's SIGKILL timed out at the end of a budget opened 2.6 s before it).
    if (!this.#servesSlots(node)) return
    const now = Date.now()
    const quiet = now - this.#lastLoss >= this.#options.budgetMs
    this.#lastLoss = now
    if (this.#lostAt !== undefined || !quiet || this.#options.budgetMs <= 0) return
    this.#lostAt = now
    // One retry cycle on a lost node can spend two redirections (a live node's MOVED to the dead one,
    // then its closed connection), and a retry that joins a delay already running waits less than
    // retryEvery: count two per period, so the command timeout (stretched below) is what bounds the
    // wait, not the count (RELIABILITY finding 4: requests issued after the loss once failed at 2.3 s
    // of a 4 s budget; a count spent twice as fast as assumed is the likely bound they hit).
    const retryEvery = Math.max(1, Math.min(this.#cluster.options.retryDelayOnFailover ?? 100, this.#cluster.options.retryDelayOnClusterDown ?? 100))
    this.#cluster.options.maxRedirections = this.#maxRedirections + 2 * Math.ceil((this.#options.budgetMs + this.#options.commandTimeoutMs) / retryEvery)
    this.#stretch()
    this.#timer = setInterval(() => { this.#stretch() }, CLUSTER_TICK_MS)
    this.#timer.unref()
  }

  /** Whether a node connection is the master of any slot in the client's slot map. */
  #servesSlots (node: Redis): boolean {
    const { host, port } = node.options
    const key = `${host ?? ''}:${port ?? ''}`
    // ioredis keys its slot map "host:port", as its pool names the node connections (getNodeKey).
    return this.#cluster.slots.some((owners) => owners?.[0] === key)
  }

  /** Command timeout for commands issued now: to the end of the budget, plus the usual bound. */
  #stretch (): void {
    const left = this.waitLeft()
    if (left <= 0) {
      this.#end(true)
      return
    }
    this.#setCommandTimeout(left + this.#options.commandTimeoutMs)
  }

  #end (expired: boolean): void {
    const lostAt = this.#lostAt ?? Date.now()
    clearInterval(this.#timer)
    this.#timer = undefined
    this.#lostAt = undefined
    this.#cluster.options.maxRedirections = this.#maxRedirections
    this.#setCommandTimeout(this.#options.commandTimeoutMs)
    // Still down when retries lost a node connection lately; otherwise the failover was over in time.
    if (expired && Date.now() - this.#lastLoss < 2 * CLUSTER_TICK_MS) this.#options.onExpired?.(Date.now() - lostAt)
  }

  #setCommandTimeout (ms: number): void {
    // The pool's copy is what new node connections (a MOVED to a new master) are built with.
    ;(this.#cluster as unknown as ClusterInternals).connectionPool.redisOptions.commandTimeout = ms
    for (const node of this.#cluster.nodes('all')) node.options.commandTimeout = ms
  }
}
