// Cross-instance invalidation over Redis pub/sub. Every write, delete, tag invalidation or clear is
// published on one channel; each instance evicts what a message names from its memory tier. Redis
// itself always holds the truth (versions and entries), so a lost message only delays an invalidation,
// by at most syncInterval (engine.ts); reconnects flush the memory tier and the versions.
//
// Pub/sub rather than client-side tracking: tracking needs RESP3 or a redirect connection per client,
// tracks every key read (a memory cost on the server) and knows nothing of tags or generations,
// which are the invalidations that matter most here.
import type { CacheLogger, RedisClient } from './redis-tier.js'
import type { InvalidationKind } from './stats.js'

// Tag and namespace invalidations carry the versions the bump produced, so receivers update their
// in-process versions (versions.ts) without reading them; a message without them (an older instance)
// makes the receiver read them again when next needed.
export type Invalidation =
  | { kind: 'keys', keys: string[] }
  | { kind: 'tags', tags: string[], versions?: string[] | undefined }
  | { kind: 'namespace', namespace: string, version?: string | undefined }

interface WireMessage { from: string, invalidation: Invalidation }

const KINDS: ReadonlySet<InvalidationKind> = new Set(['keys', 'tags', 'namespace'])

export interface InvalidationBusOptions {
  subscriber: RedisClient
  channel: string
  instanceId: string
  logger?: CacheLogger | undefined
  onInvalidation: (invalidation: Invalidation) => void
  /** The subscriber reconnected: messages may have been missed meanwhile. */
  onResubscribed: () => void
}

export class InvalidationBus {
  readonly #options: InvalidationBusOptions
  readonly #ready: Promise<void>
  #settleReady!: () => void
  #subscribed = false
  #closed = false

  constructor (options: InvalidationBusOptions) {
    this.#options = options
    this.#ready = new Promise((resolve) => { this.#settleReady = resolve })
    options.subscriber.on('message', this.#onMessage)
    options.subscriber.on('ready', this.#onReady)
    // A subscriber still connecting (the usual case at start) has no writable stream yet and the app's
    // clients queue nothing offline: SUBSCRIBE then would fail for nothing. #onReady subscribes once
    // it is connected; only a refusal from a connected server is worth a warning.
    if (options.subscriber.status === 'ready') this.#subscribe().catch(() => undefined)
  }

  ready (): Promise<void> {
    return this.#ready
  }

  static encode (instanceId: string, invalidation: Invalidation): string {
    return JSON.stringify({ from: instanceId, invalidation } satisfies WireMessage)
  }

  async close (): Promise<void> {
    const { subscriber, channel } = this.#options
    this.#closed = true
    this.#settleReady()
    subscriber.off('message', this.#onMessage)
    subscriber.off('ready', this.#onReady)
    // The subscriber belongs to the app; leave it connected but stop listening on our channel.
    await Promise.race([subscriber.unsubscribe(channel).catch(() => undefined), delay(1_000)])
  }

  async #subscribe (): Promise<void> {
    const { subscriber, channel, logger } = this.#options
    try {
      await subscriber.subscribe(channel)
      this.#subscribed = true
    } catch (err) {
      // A connected server refused (ACL without the channel, a server-side error): that is real. A
      // connection lost meanwhile is not: #onReady subscribes again once it is back.
      if (!this.#closed && subscriber.status === 'ready') {
        logger?.warn({ channel, err: { message: (err as Error).message } },
          'cache: could not subscribe to invalidations; other instances\' writes may be served stale from memory until the next reconnect')
      }
    } finally {
      this.#settleReady()
    }
  }

  readonly #onReady = (): void => {
    // Subscribe on every 'ready' (SUBSCRIBE is idempotent): the suite's subscriber connection runs
    // with autoResubscribe off, because ioredis leaves its own re-subscribe's rejection unhandled when
    // the link drops again at once. Whatever was published while it was down is lost: tell the engine.
    const wasSubscribed = this.#subscribed
    this.#subscribe().catch(() => undefined)
    if (wasSubscribed) this.#options.onResubscribed()
  }

  readonly #onMessage = (channel: string, text: string): void => {
    if (channel !== this.#options.channel) return
    const message = parse(text)
    if (message === undefined) {
      this.#options.logger?.debug({ channel }, 'cache: ignored a malformed invalidation message')
      return
    }
    if (message.from === this.#options.instanceId) return
    this.#options.onInvalidation(message.invalidation)
  }
}

function parse (text: string): WireMessage | undefined {
  try {
    const message = JSON.parse(text) as Partial<WireMessage>
    const invalidation = message.invalidation
    if (typeof message.from !== 'string' || invalidation === undefined || !KINDS.has(invalidation.kind)) return undefined
    // Versions that are not digit strings are dropped: the receiver then reads them from Redis.
    if (invalidation.kind === 'tags' && !(Array.isArray(invalidation.versions) && invalidation.versions.every(isVersion))) delete invalidation.versions
    if (invalidation.kind === 'namespace' && !isVersion(invalidation.version)) delete invalidation.version
    return message as WireMessage
  } catch {
    return undefined
  }
}

function isVersion (value: unknown): value is string {
  return typeof value === 'string' && /^\d{1,20}$/.test(value)
}

function delay (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}
