// Cross-instance invalidation over Redis pub/sub. Every write, delete, tag invalidation or clear is
// published on one channel; each instance evicts what a message names from its memory tier. Redis
// itself always holds the truth (versions and entries), so a lost message only delays an invalidation,
// by at most syncInterval (engine.ts); reconnects flush the memory tier and the versions.
//
// Pub/sub rather than client-side tracking: tracking needs RESP3 or a redirect connection per client,
// tracks every key read (a memory cost on the server) and knows nothing of tags or generations,
// which are the invalidations that matter most here.
//
// Anyone allowed to PUBLISH on the channel (the least-privilege ACL user may) can send anything: each
// message is checked against a compiled schema and dropped (counted, logged once per burst) unless it
// matches, and nothing a message holds can throw out of the listener, where ioredis would rethrow it
// as an uncaught exception. A well-formed forged message can only evict memory copies (costing reads):
// receivers take no version from it (versions.ts).
import Type, { type Static } from 'typebox'
import { Compile } from 'typebox/compile'
import type { CacheLogger, RedisClient } from './redis-tier.js'

const MAX_NAMES = 10_000
const Names = Type.Array(Type.String(), { maxItems: MAX_NAMES })

// Tag and namespace invalidations carry the versions the bump produced. Receivers no longer use them
// (see versions.ts) but still send them, for instances of earlier releases during a rolling deploy.
const WireMessageSchema = Type.Object({
  from: Type.String({ maxLength: 256 }),
  invalidation: Type.Union([
    Type.Object({ kind: Type.Literal('keys'), keys: Names }),
    Type.Object({ kind: Type.Literal('tags'), tags: Names, versions: Type.Optional(Names) }),
    Type.Object({ kind: Type.Literal('namespace'), namespace: Type.String(), version: Type.Optional(Type.String()) })
  ])
})
const wireMessage = Compile(WireMessageSchema)

type WireMessage = Static<typeof WireMessageSchema>
export type Invalidation = WireMessage['invalidation']

const DROP_LOG_EVERY_MS = 10_000

export interface InvalidationBusOptions {
  subscriber: RedisClient
  channel: string
  instanceId: string
  logger?: CacheLogger | undefined
  onInvalidation: (invalidation: Invalidation) => void
  /** A message that is not a valid invalidation was dropped. */
  onDropped?: () => void
  /** The subscriber reconnected: messages may have been missed meanwhile. */
  onResubscribed: () => void
}

export class InvalidationBus {
  readonly #options: InvalidationBusOptions
  readonly #ready: Promise<void>
  #settleReady!: () => void
  #subscribed = false
  #closed = false
  #dropLoggedAt = -Infinity

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
      this.#dropped()
      return
    }
    if (message.from === this.#options.instanceId) return
    try {
      this.#options.onInvalidation(message.invalidation)
    } catch (err) {
      // A bug of ours must not become an uncaught exception in every instance at once.
      this.#options.logger?.warn({ err }, 'cache: applying an invalidation message failed')
    }
  }

  #dropped (): void {
    this.#options.onDropped?.()
    const now = Date.now()
    if (now - this.#dropLoggedAt < DROP_LOG_EVERY_MS) return
    this.#dropLoggedAt = now
    this.#options.logger?.warn({ channel: this.#options.channel },
      'cache: dropped a message on the invalidation channel that is not a valid invalidation (something else publishes there?); further drops in the next 10s are only counted')
  }
}

function parse (text: string): WireMessage | undefined {
  let message: unknown
  try {
    message = JSON.parse(text)
  } catch {
    return undefined
  }
  return wireMessage.Check(message) ? message : undefined
}

function delay (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}
