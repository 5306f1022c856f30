// Live connection state for health, features and metrics. Socket events give instant detection of a
// closed connection; a background PING with its own timeout catches what events cannot (a frozen
// server, a black-holed link, slowness). Health routes read the cached state and never wait on Redis.
import { EventEmitter } from 'node:events'
import type { Cluster, Redis } from 'ioredis'
import type { RedisMode } from './options.js'
import type { RefusalKind, RefusalTracker } from './refusals.js'

export type RedisStatus = 'connected' | 'degraded' | 'disconnected'
export type RedisStateMode = RedisMode | 'memory'

export interface RedisState {
  status: RedisStatus
  mode: RedisStateMode
  /** Round trip of the last background PING; null before the first one and while disconnected. */
  latencyMs: number | null
  /** The last error seen, always with `lastErrorAt`: after a recovery it says when, not that it is current. */
  lastError?: string
  /** Epoch ms of `lastError`. */
  lastErrorAt?: number
  reconnects: number
  /** Epoch ms of the last status change. */
  since: number
  /** Commands Redis refused since start, by kind (OOM, MISCONF, READONLY, NOPERM): see refusals.ts. */
  refusals?: Readonly<Record<RefusalKind, number>>
}

export interface RedisServerInfo {
  version: string
  uptimeS: number
  memoryUsedBytes: number
  memoryUsed: string
  connectedClients: number
  role: string
}

export interface MonitorLogger {
  info: (obj: object, msg: string) => void
  warn: (obj: object, msg: string) => void
}

export interface RedisMonitorOptions {
  mode: RedisStateMode
  /** Where the client connects, for log lines (never with a password). */
  address: string
  pingInterval: number
  pingTimeout: number
  degradedLatency: number
  /** How often INFO is refreshed for /health/redis. */
  infoInterval?: number
  /** Consecutive PING timeouts after which the connection is dropped and re-opened (half-open links). */
  reconnectAfterTimeouts?: number
  logger: MonitorLogger
  /** Refusals seen on the connection: while an episode lasts, the state is degraded with its reason. */
  refusals?: RefusalTracker | undefined
}

export interface RedisMonitorEvents {
  change: [state: RedisState, previous: RedisState]
  /** The connection came back after a loss: anything pushed while it was down was missed. */
  reconnected: []
}

type Client = Redis | Cluster

export class RedisMonitor extends EventEmitter<RedisMonitorEvents> {
  readonly #client: Client | undefined
  readonly #options: Required<Omit<RedisMonitorOptions, 'refusals'>>
  readonly #refusals: RefusalTracker | undefined
  #state: RedisState
  #info: RedisServerInfo | undefined
  #timer: NodeJS.Timeout | undefined
  #lastInfoAt = 0
  #timeouts = 0
  #everReady = false
  #announced = false
  #stopped = false

  constructor (client: Client | undefined, options: RedisMonitorOptions) {
    super()
    this.#client = client
    const { refusals, ...rest } = options
    this.#refusals = refusals
    this.#options = { infoInterval: 5_000, reconnectAfterTimeouts: 3, ...rest }
    const memory = client === undefined
    this.#state = { status: memory ? 'connected' : 'disconnected', mode: options.mode, latencyMs: memory ? 0 : null, reconnects: 0, since: Date.now() }
    if (client !== undefined) this.#listen(client)
  }

  get state (): RedisState {
    const refusals = this.#refusals?.counts()
    return refusals === undefined ? { ...this.#state } : { ...this.#state, refusals }
  }

  get serverInfo (): RedisServerInfo | undefined {
    return this.#info
  }

  /** True when a command sent now can be expected to run: features skip Redis otherwise. */
  isReady (): boolean {
    return this.#client !== undefined && this.#client.status === 'ready' && this.#state.status !== 'disconnected'
  }

  start (): void {
    if (this.#client === undefined || this.#timer !== undefined) return
    this.#schedule(0)
  }

  /** Stops the PING loop; the disconnect that follows is planned and logged at info, not as an outage. */
  stop (): void {
    this.#stopped = true
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #listen (client: Client): void {
    client.on('ready', () => {
      this.#timeouts = 0
      if (this.#everReady) {
        this.#state.reconnects++
        this.emit('reconnected')
      }
      this.#everReady = true
      this.#set('connected')
      // Measure at once rather than waiting a full interval.
      if (this.#timer !== undefined) this.#schedule(0)
    })
    const down = (): void => { this.#set('disconnected') }
    client.on('close', down)
    client.on('end', down)
    client.on('reconnecting', down)
    // Without an 'error' listener ioredis prints every failed reconnect to stderr.
    client.on('error', (err: Error) => { this.#recordError(err) })
    client.on('node error', (err: Error) => { this.#recordError(err) })
  }

  #schedule (delay: number): void {
    if (this.#stopped) return
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => { this.#check().catch(() => {}) }, delay)
    this.#timer.unref()
  }

  async #check (): Promise<void> {
    const client = this.#client
    const started = Date.now()
    if (client !== undefined && client.status === 'ready') {
      try {
        let latency = await this.#ping(client)
        // A slow answer may be a busy event loop's (the reply waited unread in the socket), not
        // Redis': ask once more, after yielding, before reporting degraded.
        if (latency > this.#options.degradedLatency) {
          await new Promise<void>((resolve) => { setImmediate(resolve) })
          if (client.status === 'ready') latency = await this.#ping(client)
        }
        this.#timeouts = 0
        this.#state.latencyMs = latency
        // PING answers fast while Redis refuses every write: a refusal episode is degraded too, with its reason.
        const refusal = this.#refusals?.active()
        if (refusal !== undefined) this.#recordError(refusal.reason)
        this.#set(latency > this.#options.degradedLatency || refusal !== undefined ? 'degraded' : 'connected')
        if (Date.now() - this.#lastInfoAt >= this.#options.infoInterval) await this.#refreshInfo(client)
      } catch (err) {
        this.#onPingFailure(client, err as Error)
      }
    }
    this.#schedule(Math.max(0, this.#options.pingInterval - (Date.now() - started)))
  }

  /** One PING's round trip in ms, bounded by pingTimeout of loop time (see withinLoopTime). */
  async #ping (client: Client): Promise<number> {
    const sent = Date.now()
    await withinLoopTime(client.ping(), this.#options.pingTimeout)
    return Date.now() - sent
  }

  #recordError (err: Error | string): void {
    this.#state.lastError = typeof err === 'string' ? err : describeError(err)
    this.#state.lastErrorAt = Date.now()
  }

  #onPingFailure (client: Client, err: Error): void {
    this.#recordError(err)
    if (err.message.startsWith('LOADING')) {
      this.#set('degraded')
      return
    }
    this.#set('disconnected')
    if (err instanceof PingTimeoutError && ++this.#timeouts >= this.#options.reconnectAfterTimeouts) {
      // A frozen server or a black-holed link keeps the socket open: drop it and reconnect.
      this.#timeouts = 0
      client.disconnect(true)
    }
  }

  async #refreshInfo (client: Client): Promise<void> {
    this.#lastInfoAt = Date.now()
    try {
      const node = isCluster(client) ? client.nodes('master')[0] : client
      if (node === undefined) return
      const text = await withinLoopTime(node.info(), this.#options.pingTimeout)
      this.#info = parseInfo(text)
      if (isCluster(client)) {
        const clusterInfo = await withinLoopTime(node.cluster('INFO') as Promise<string>, this.#options.pingTimeout)
        if (!clusterInfo.includes('cluster_state:ok')) {
          this.#recordError('cluster_state is not ok: some slots are unavailable')
          this.#set('degraded')
        }
      }
    } catch {
      // INFO may be denied by the ACL or slow; health falls back to what it has.
    }
  }

  #set (status: RedisStatus): void {
    if (this.#state.status === status) return
    const previous = { ...this.#state }
    this.#state.status = status
    this.#state.since = Date.now()
    // A latency measured before the loss says nothing about a link that is down.
    if (status === 'disconnected') this.#state.latencyMs = null
    if (this.#stopped) {
      // app.close(): the disconnect is ours, not an outage.
      this.#options.logger.info({ redis: { mode: this.#state.mode, address: this.#options.address, status } }, 'Redis connection closed (app closing)')
    } else {
      const fields = { redis: { mode: this.#state.mode, address: this.#options.address, status, previous: previous.status, lastError: this.#state.lastError } }
      // The first connect is the start-up line of the connection: it says where.
      if (status === 'connected' && !this.#announced) this.#options.logger.info(fields, `Redis connected: ${this.#state.mode} at ${this.#options.address}`)
      else if (status === 'connected') this.#options.logger.info(fields, `Redis ${status}`)
      else this.#options.logger.warn(fields, `Redis ${status}`)
    }
    if (status === 'connected') this.#announced = true
    this.emit('change', this.state, previous)
  }
}

class PingTimeoutError extends Error {}

/** Lateness of a timer beyond which the loop counts as having been blocked (normal jitter is a few ms). */
const LOOP_BLOCKED_MS = 20

/**
 * `promise`, or a PingTimeoutError once `ms` of waiting has passed in which the event loop was free to
 * read the reply. A blocked or starved loop (a long synchronous task, a run of microtasks that never
 * yields) delays timers and socket reads alike, and timers run first: a plain deadline would fire
 * before the socket holding the answer is read and call a healthy Redis down. So a deadline that
 * fires late (the loop was blocked meanwhile) starts a fresh wait, and one that fires on time still
 * lets an I/O poll phase run (setImmediate comes after it) before it is a timeout. A frozen server
 * is still caught one `ms` after the loop is free again.
 */
const MAX_REARMS = 3

function withinLoopTime<T> (promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false
    let timer: NodeJS.Timeout | undefined
    // A loop that lags all the time (GC, CPU-bound handlers) must not keep a frozen Redis looking
    // connected: at most MAX_REARMS fresh waits, then a late deadline counts as a timeout too.
    let rearms = 0
    const arm = (): void => {
      const due = performance.now() + ms
      timer = setTimeout(() => {
        const late = performance.now() - due
        setImmediate(() => {
          if (settled) return
          if (late > Math.max(LOOP_BLOCKED_MS, ms / 4) && rearms++ < MAX_REARMS) {
            arm()
            return
          }
          settled = true
          reject(new PingTimeoutError(`no reply within ${ms}ms`))
        })
      }, ms)
    }
    promise.then((value) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(value)
    }, (err: unknown) => {
      // A late rejection after the timeout is expected: it is dropped here, never unhandled.
      if (settled) return
      settled = true
      clearTimeout(timer)
      reject(err)
    })
    arm()
  })
}

function isCluster (client: Client): client is Cluster {
  return client.isCluster
}

/** An error's message without anything that could carry credentials. */
export function describeError (err: Error): string {
  const code = (err as NodeJS.ErrnoException).code
  const message = err.message.replace(/\/\/[^@\s/]*@/g, '//[redacted]@')
  return code !== undefined && !message.includes(code) ? `${code}: ${message}` : message
}

export function parseInfo (text: string): RedisServerInfo {
  const fields = new Map<string, string>()
  for (const line of text.split('\r\n')) {
    const index = line.indexOf(':')
    if (index > 0) fields.set(line.slice(0, index), line.slice(index + 1))
  }
  return {
    version: fields.get('redis_version') ?? 'unknown',
    uptimeS: Number(fields.get('uptime_in_seconds') ?? 0),
    memoryUsedBytes: Number(fields.get('used_memory') ?? 0),
    memoryUsed: fields.get('used_memory_human') ?? '0B',
    connectedClients: Number(fields.get('connected_clients') ?? 0),
    role: fields.get('role') ?? 'unknown'
  }
}
