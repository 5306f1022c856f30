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
// On Sentinel, `watchSentinels` adds a planned failover's early warning: the leader Sentinel announces
// `+failover-state-send-slaveof-noone` about one Sentinel tick (100 ms) before it promotes the replica.
// Writes the old master accepts after the promotion are lost when it is turned into a replica, and
// ioredis' own failoverDetector only moves on `+switch-master`, about a second later. So on the warning
// the client lets its commands in flight finish, disconnects, and holds every new command (within the
// budget) until `+switch-master` names the new master.
import { Redis, type RedisOptions, type SentinelAddress } from 'ioredis'

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

/** The error a waiting command gets when the connection did not come back within the budget. */
export class FailoverWaitExpiredError extends Error {
  override name = 'FailoverWaitExpiredError'
  readonly code = 'FRS_REDIS_FAILOVER_WAIT_EXPIRED'
}

/** ioredis internals this module reads; all exist in ioredis 6 (asserted by the tests). */
interface Internals {
  offlineQueue: { length: number }
  commandQueue: { length: number }
  reconnectTimeout: NodeJS.Timeout | null
  flushQueue: (error: Error, options: { offlineQueue: boolean, commandQueue: boolean }) => void
}

const DRAIN_POLLS = 50

/**
 * The bounded failover wait of one standalone or Sentinel client built with the bounded options
 * (offline queue off, `maxRetriesPerRequest: 0`). Cluster clients are not handled here: they follow a
 * failover through MOVED redirections and slot refreshes inside one command's retries.
 */
export class FailoverWait {
  readonly #client: Redis
  readonly #internals: Internals
  readonly #options: FailoverWaitOptions
  readonly #fastFail: Pick<RedisOptions, 'enableOfflineQueue' | 'commandTimeout' | 'maxRetriesPerRequest' | 'retryStrategy'>
  #connected: boolean
  #lostAt: number | undefined
  #timer: NodeJS.Timeout | undefined
  /** Set while a planned failover is announced and not yet switched: do not reconnect to the old master. */
  #held = false
  /** The next close is one we caused: reject what was in flight ourselves (ioredis will not, see #open). */
  #closingOnPurpose = false
  readonly #listeners: Array<['ready' | 'close' | 'end', () => void]>

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
    this.#connected = client.status === 'ready'
    this.#listeners = [['ready', () => { this.#onReady() }], ['close', () => { this.#onClose() }], ['end', () => { this.#onEnd() }]]
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
    this.#restore()
  }

  /**
   * A planned failover is announced: stop sending to the current master. Commands in flight finish
   * first (polled for a few ms, well inside the Sentinel tick before the promotion), then the client
   * disconnects and holds new commands until `release()` or the end of the budget.
   */
  hold (): void {
    if (this.#options.budgetMs <= 0 || this.#held) return
    this.#held = true
    if (!this.#connected) return // already down: just do not reconnect to the old master early
    let polls = 0
    const drain = (): void => {
      if (!this.#held || !this.#connected) return
      if (this.#internals.commandQueue.length > 0 && polls++ < DRAIN_POLLS) {
        setImmediate(drain)
        return
      }
      this.#connected = false
      this.#open(Date.now())
      this.#closingOnPurpose = true
      this.#client.disconnect(true)
    }
    drain()
  }

  /** The new master is named (or the failover was given up): reconnect now. */
  release (): void {
    if (!this.#held) return
    this.#held = false
    if (this.#client.status !== 'reconnecting') return
    // Replace the held reconnect (scheduled for the end of the budget) by one now.
    const pending = this.#internals.reconnectTimeout
    if (pending !== null) clearTimeout(pending)
    this.#internals.reconnectTimeout = null
    this.#client.connect().catch(() => {})
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
    const retry = this.#fastFail.retryStrategy
    // While held, the next reconnect waits for release() (or the end of the budget).
    settings.retryStrategy = (times: number) => this.#held ? Math.max(0, lostAt + this.#options.budgetMs - Date.now()) : retry?.(times)
    this.#timer = setTimeout(() => { this.#expire() }, Math.max(0, lostAt + this.#options.budgetMs - Date.now()))
    this.#timer.unref()
  }

  #expire (): void {
    const since = this.#lostAt ?? Date.now()
    const wasHeld = this.#held
    this.#held = false
    this.#restore()
    const rejected = this.#internals.offlineQueue.length
    this.#internals.flushQueue(new FailoverWaitExpiredError(`the Redis connection was lost ${Date.now() - since} ms ago and did not come back within REDIS_FAILOVER_WAIT (${this.#options.budgetMs} ms)`),
      { offlineQueue: true, commandQueue: false })
    this.#options.onExpired?.(Date.now() - since, rejected)
    if (wasHeld && this.#client.status === 'reconnecting') this.#client.connect().catch(() => {})
  }

  #restore (): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    Object.assign(this.#client.options, this.#fastFail)
  }
}

export interface SentinelWatchOptions {
  sentinels: ReadonlyArray<Partial<SentinelAddress>>
  /** The master name (REDIS_SENTINEL_NAME). */
  name: string
  /** Options for the connections to the Sentinels: credentials, TLS, reconnect strategy. */
  connection: RedisOptions
  /** The promotion is about to happen: stop writing to the old master. */
  onPromoting: () => void
  /** The new master is named, or the failover ended without one: reconnect. */
  onSettled: () => void
}

const PROMOTING = '+failover-state-send-slaveof-noone'
const SETTLED = ['+switch-master', '-failover-abort-not-elected', '-failover-abort-slave-timeout', '-failover-abort-no-good-slave', '+failover-end-for-timeout']

/**
 * Subscribes to every configured Sentinel's failover events for one master. Failures are quiet: the
 * main client's reconnects (and ioredis' failoverDetector) still follow a failover without it, only
 * later. Returns a function that closes the Sentinel connections.
 */
export function watchSentinels (options: SentinelWatchOptions): () => void {
  const clients = options.sentinels.map((address) => {
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
    client.subscribe(PROMOTING, ...SETTLED).catch(() => {})
    client.on('message', (channel: string, message: string) => {
      // Instance events end with "@ <master-name> <ip> <port>"; +switch-master starts with the name.
      const ours = channel === '+switch-master' ? message.startsWith(`${options.name} `) : message.includes(`@ ${options.name} `)
      if (!ours) return
      if (channel === PROMOTING) options.onPromoting()
      else options.onSettled()
    })
    return client
  })
  return () => { for (const client of clients) client.disconnect() }
}
