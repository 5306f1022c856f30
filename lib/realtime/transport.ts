// Where pub/sub messages travel: Redis (PUBLISH on the main connection, SUBSCRIBE on a dedicated
// subscriber connection made on first use) or, in memory mode, this process.
//
// Redis pub/sub is fire-and-forget: a message published while the subscriber is disconnected is
// lost. On every 'ready' the transport re-sends SUBSCRIBE/PSUBSCRIBE for what it should hear
// (idempotent in Redis); the suite's subscriber connection has ioredis' own autoResubscribe off (its
// rejection goes unhandled when the link drops again at once), so this is what restores them. Under RESP3 (ioredis 6's default)
// messages arrive as push frames and ioredis still emits them as 'message' / 'pmessage'.
import { bounded, whenReady, type RedisClient } from '../redis/index.js'
import { codes } from '../errors/index.js'

export interface PubSubTransport {
  /** Receivers that got the message (Redis's PUBLISH reply). */
  publish: (channel: string, payload: string) => Promise<number>
  subscribe: (channel: string) => Promise<void>
  unsubscribe: (channel: string) => Promise<void>
  psubscribe: (pattern: string) => Promise<void>
  punsubscribe: (pattern: string) => Promise<void>
  /** Called for every message on a subscribed channel (pattern is set for pattern matches). */
  onMessage: (listener: (channel: string, payload: string, pattern: string | undefined) => void) => void
  close: () => Promise<void>
}

export interface RedisTransportOptions {
  publisher: RedisClient
  /** The dedicated subscriber connection; called on the first subscribe only. */
  subscriber: () => RedisClient
  /** Bound on each command and on waiting for a connection that is still connecting. */
  timeoutMs: number
  /** The failover wait left (REDIS_FAILOVER_WAIT), added to the bound of a command issued now. */
  waitLeft?: () => number
}

export class RedisPubSubTransport implements PubSubTransport {
  readonly #options: RedisTransportOptions
  #subscriber: RedisClient | undefined
  #listener: (channel: string, payload: string, pattern: string | undefined) => void = () => {}
  readonly #channels = new Set<string>()
  readonly #patterns = new Set<string>()

  constructor (options: RedisTransportOptions) {
    this.#options = options
  }

  publish (channel: string, payload: string): Promise<number> {
    return bounded(() => this.#options.publisher.publish(channel, payload), this.#bound(), codes.FRS_PUBSUB_UNAVAILABLE, `publish to ${JSON.stringify(channel)}`)
  }

  async subscribe (channel: string): Promise<void> {
    this.#channels.add(channel)
    await this.#command(`subscribe to ${JSON.stringify(channel)}`, (sub) => sub.subscribe(channel))
  }

  async unsubscribe (channel: string): Promise<void> {
    this.#channels.delete(channel)
    if (this.#subscriber === undefined) return
    await this.#command(`unsubscribe from ${JSON.stringify(channel)}`, (sub) => sub.unsubscribe(channel))
  }

  async psubscribe (pattern: string): Promise<void> {
    this.#patterns.add(pattern)
    await this.#command(`subscribe to pattern ${JSON.stringify(pattern)}`, (sub) => sub.psubscribe(pattern))
  }

  async punsubscribe (pattern: string): Promise<void> {
    this.#patterns.delete(pattern)
    if (this.#subscriber === undefined) return
    await this.#command(`unsubscribe from pattern ${JSON.stringify(pattern)}`, (sub) => sub.punsubscribe(pattern))
  }

  onMessage (listener: (channel: string, payload: string, pattern: string | undefined) => void): void {
    this.#listener = listener
  }

  /** Stops listening and unsubscribes; the subscriber connection itself belongs to the app (shared with the cache). */
  async close (): Promise<void> {
    const sub = this.#subscriber
    if (sub === undefined) return
    sub.off('message', this.#onMessage)
    sub.off('pmessage', this.#onPatternMessage)
    sub.off('ready', this.#onReady)
    const channels = [...this.#channels]
    const patterns = [...this.#patterns]
    this.#channels.clear()
    this.#patterns.clear()
    if (sub.status !== 'ready') return
    await Promise.all([
      channels.length > 0 ? sub.unsubscribe(...channels) : undefined,
      patterns.length > 0 ? sub.punsubscribe(...patterns) : undefined
    ].map((p) => bounded(async () => await p, this.#options.timeoutMs, codes.FRS_PUBSUB_UNAVAILABLE, 'unsubscribe on close').catch(() => {})))
  }

  #connection (): RedisClient {
    if (this.#subscriber === undefined) {
      const sub = this.#options.subscriber()
      sub.on('message', this.#onMessage)
      sub.on('pmessage', this.#onPatternMessage)
      sub.on('ready', this.#onReady)
      this.#subscriber = sub
    }
    return this.#subscriber
  }

  async #command (what: string, send: (sub: RedisClient) => Promise<unknown>): Promise<void> {
    const sub = this.#connection()
    await whenReady(sub, this.#bound(), codes.FRS_PUBSUB_UNAVAILABLE, what)
    await bounded(() => send(sub), this.#bound(), codes.FRS_PUBSUB_UNAVAILABLE, what)
  }

  #bound (): number {
    return this.#options.timeoutMs + (this.#options.waitLeft?.() ?? 0)
  }

  readonly #onMessage = (channel: string, payload: string): void => {
    if (this.#channels.has(channel)) this.#listener(channel, payload, undefined)
  }

  readonly #onPatternMessage = (pattern: string, channel: string, payload: string): void => {
    if (this.#patterns.has(pattern)) this.#listener(channel, payload, pattern)
  }

  readonly #onReady = (): void => {
    const sub = this.#subscriber
    if (sub === undefined) return
    if (this.#channels.size > 0) sub.subscribe(...this.#channels).catch(() => {})
    if (this.#patterns.size > 0) sub.psubscribe(...this.#patterns).catch(() => {})
  }
}

/** In-process pub/sub for memory mode: same API and delivery rules (async, JSON on the wire), one process only. */
export class MemoryPubSubTransport implements PubSubTransport {
  readonly #channels = new Set<string>()
  readonly #patterns = new Map<string, RegExp>()
  #listener: (channel: string, payload: string, pattern: string | undefined) => void = () => {}

  async publish (channel: string, payload: string): Promise<number> {
    const targets: Array<string | undefined> = this.#channels.has(channel) ? [undefined] : []
    for (const [pattern, regex] of this.#patterns) if (regex.test(channel)) targets.push(pattern)
    // Delivered on a later turn, as over Redis: publish never runs a handler synchronously.
    if (targets.length > 0) setImmediate(() => { for (const pattern of targets) this.#listener(channel, payload, pattern) })
    return targets.length
  }

  async subscribe (channel: string): Promise<void> { this.#channels.add(channel) }
  async unsubscribe (channel: string): Promise<void> { this.#channels.delete(channel) }
  async psubscribe (pattern: string): Promise<void> { this.#patterns.set(pattern, globToRegExp(pattern)) }
  async punsubscribe (pattern: string): Promise<void> { this.#patterns.delete(pattern) }

  onMessage (listener: (channel: string, payload: string, pattern: string | undefined) => void): void {
    this.#listener = listener
  }

  async close (): Promise<void> {
    this.#channels.clear()
    this.#patterns.clear()
  }
}

/** Redis's glob syntax (PSUBSCRIBE): `*`, `?`, `[abc]`, `[^a]`, `[a-z]`, and `\` to escape. */
export function globToRegExp (glob: string): RegExp {
  let source = ''
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string
    if (c === '\\' && i + 1 < glob.length) source += escapeRegExp(glob[++i] as string)
    else if (c === '*') source += '.*'
    else if (c === '?') source += '.'
    else if (c === '[') {
      const end = glob.indexOf(']', i + 1)
      if (end === -1) {
        source += '\\['
        continue
      }
      let body = glob.slice(i + 1, end)
      const negated = body.startsWith('^')
      if (negated) body = body.slice(1)
      source += `[${negated ? '^' : ''}${body.replace(/[\]\\]/g, '\\$&')}]`
      i = end
    } else source += escapeRegExp(c)
  }
  return new RegExp(`^${source}$`, 's')
}

/** Escapes glob syntax, so a literal prefix can go in front of a pattern. */
export function escapeGlob (text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&')
}

function escapeRegExp (text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&')
}
