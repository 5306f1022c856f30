// Typed pub/sub (`app.pubsub`): publish JSON messages, subscribe with a TypeBox schema that types and
// validates them (an invalid message is logged once per burst and dropped, never thrown into a
// handler), pattern subscriptions, and an unsubscribe function per subscription. Channel names get the
// app's prefix (REDIS_KEY_PREFIX), which ioredis does not add to channels, so apps sharing a Redis
// do not hear each other. Fire-and-forget: use stream() where a message must not be lost.
import type { Static, TSchema, TUnknown } from 'typebox'
import { pubsubChannel, traceDeliver, tracePublish } from '../tracing/index.js'
import { check, decode, DropLog, type MessageLogger } from './message-schema.js'
import { escapeGlob, type PubSubTransport } from './transport.js'
import type { DeadLetterCount, StreamFactory, StreamOptions, TypedStream } from './streams.js'

// App channels sit under PUBSUB_CHANNEL_SEGMENT after the app's prefix; lib/redis owns the constant
// because the least-privilege ACL rule grants it.
export { PUBSUB_CHANNEL_SEGMENT } from '../redis/index.js'
import { PubSubMessageError, PubSubNameError } from '../errors/index.js'
export interface MessageMeta {
  /** The channel the message was published on, without the app's prefix. */
  channel: string
  /** The pattern that matched, for pattern subscriptions (without the prefix). */
  pattern?: string
}

export type MessageHandler<T> = (message: T, meta: MessageMeta) => void | Promise<void>
/** Stops this subscription; resolves once Redis confirmed (or on failure: the handler is detached anyway). */
export type Unsubscribe = () => Promise<void>

export interface SubscribeOptions<S extends TSchema> {
  /** Messages that do not match are dropped (logged once per burst, counted in stats().messagesDropped). */
  schema?: S
}

export interface TypedChannel<T> {
  readonly name: string
  publish: (message: T) => Promise<number>
  subscribe: (handler: MessageHandler<T>) => Promise<Unsubscribe>
}

export interface PubSubStats {
  messagesPublished: number
  /** Messages that reached a subscription of this instance (one per subscription that heard it). */
  messagesReceived: number
  /** Received messages dropped as invalid JSON or not matching the subscription's schema. */
  messagesDropped: number
  /** Handlers that threw or rejected (logged; the message is not redelivered). */
  handlerErrors: number
  /** Channels and patterns this instance listens on. */
  subscriptions: number
  streamMessagesAdded: number
  streamMessagesAcked: number
  streamMessagesReclaimed: number
  /** Stream entries moved to their dead-letter stream after maxDeliveries. */
  streamMessagesDeadLettered: number
  /** The same, per stream and consumer group (the labels of `pubsub_stream_dead_letters_total`). */
  streamDeadLetters: DeadLetterCount[]
}

export interface PubSubOptions {
  transport: PubSubTransport
  /** Prepended to every channel and pattern (REDIS_KEY_PREFIX). */
  prefix?: string
  logger?: MessageLogger | undefined
  streams?: StreamFactory | undefined
}

interface Subscription {
  handler: MessageHandler<unknown>
  schema: TSchema | undefined
}

interface Topic {
  subscriptions: Set<Subscription>
  /** SUBSCRIBE in flight or done; later subscribers wait on it. */
  ready: Promise<void>
}

export class PubSub {
  readonly #transport: PubSubTransport
  readonly #prefix: string
  readonly #logger: MessageLogger | undefined
  readonly #streams: StreamFactory | undefined
  readonly #drops: DropLog
  readonly #channels = new Map<string, Topic>()
  readonly #patterns = new Map<string, Topic>()
  readonly #counts = { messagesPublished: 0, messagesReceived: 0, messagesDropped: 0, handlerErrors: 0 }

  constructor (options: PubSubOptions) {
    this.#transport = options.transport
    this.#prefix = options.prefix ?? ''
    this.#logger = options.logger
    this.#streams = options.streams
    this.#drops = new DropLog(options.logger)
    this.#transport.onMessage(this.#deliver)
  }

  /** Publishes `message` as JSON; resolves with the number of subscribed connections that received it. */
  async publish<S extends TSchema = TUnknown> (channel: string, message: Static<S>, options: SubscribeOptions<S> = {}): Promise<number> {
    validateName(channel, 'channel')
    if (message === undefined) throw new PubSubMessageError(`A message published to ${JSON.stringify(channel)} must not be undefined`, [])
    const result = check(message, options.schema)
    if (!result.ok) {
      throw new PubSubMessageError(`The message published to ${JSON.stringify(channel)} does not match its schema: ${result.errors.join('; ')}`, result.errors)
    }
    const receivers = await (pubsubChannel.start.hasSubscribers
      ? tracePublish(channel, JSON.stringify(message), (payload) => this.#transport.publish(this.#prefix + channel, payload))
      : this.#transport.publish(this.#prefix + channel, JSON.stringify(message)))
    this.#counts.messagesPublished++
    return receivers
  }

  /**
   * Calls `handler` for each message on `channel`, validated by `options.schema`. Resolves once the
   * subscription is live; rejects with FRS_PUBSUB_UNAVAILABLE (and subscribes nothing) when Redis
   * does not confirm within the command timeout.
   */
  async subscribe<S extends TSchema = TUnknown> (channel: string, handler: MessageHandler<Static<S>>, options: SubscribeOptions<S> = {}): Promise<Unsubscribe> {
    validateName(channel, 'channel')
    return this.#add(this.#channels, this.#prefix + channel, handler, options.schema, false)
  }

  /** Like subscribe, for every channel matching a Redis glob pattern (`chat:*`); meta.channel says which. */
  async psubscribe<S extends TSchema = TUnknown> (pattern: string, handler: MessageHandler<Static<S>>, options: SubscribeOptions<S> = {}): Promise<Unsubscribe> {
    validateName(pattern, 'pattern')
    return this.#add(this.#patterns, escapeGlob(this.#prefix) + pattern, handler, options.schema, true)
  }

  /** A channel bound to its schema: publish and subscribe are typed from it. */
  channel<S extends TSchema> (name: string, schema: S): TypedChannel<Static<S>> {
    validateName(name, 'channel')
    return {
      name,
      publish: (message) => this.publish(name, message, { schema }),
      subscribe: (handler) => this.subscribe(name, handler, { schema })
    }
  }

  /** A Redis Stream with consumer groups: the at-least-once option (see streams.ts). */
  stream<S extends TSchema> (name: string, schema: S, options: StreamOptions = {}): TypedStream<Static<S>> {
    if (this.#streams === undefined) throw new Error('pub/sub was built without streams')
    validateName(name, 'stream')
    return this.#streams.stream(name, schema, options)
  }

  stats (): PubSubStats {
    const streams = this.#streams?.stats() ?? { added: 0, acked: 0, reclaimed: 0, dropped: 0, handlerErrors: 0, deadLettered: 0 }
    return {
      ...this.#counts,
      messagesDropped: this.#counts.messagesDropped + streams.dropped,
      handlerErrors: this.#counts.handlerErrors + streams.handlerErrors,
      subscriptions: this.#channels.size + this.#patterns.size,
      streamMessagesAdded: streams.added,
      streamMessagesAcked: streams.acked,
      streamMessagesReclaimed: streams.reclaimed,
      streamMessagesDeadLettered: streams.deadLettered,
      streamDeadLetters: this.#streams?.deadLetterCounts() ?? []
    }
  }

  /** Unsubscribes everything and stops stream consumers; connections belong to the app. */
  async close (): Promise<void> {
    this.#channels.clear()
    this.#patterns.clear()
    await Promise.all([this.#transport.close(), this.#streams?.close()])
  }

  async #add (topics: Map<string, Topic>, name: string, handler: MessageHandler<never>, schema: TSchema | undefined, pattern: boolean): Promise<Unsubscribe> {
    const subscription: Subscription = { handler: handler as MessageHandler<unknown>, schema }
    let topic = topics.get(name)
    if (topic === undefined) {
      const ready = pattern ? this.#transport.psubscribe(name) : this.#transport.subscribe(name)
      topic = { subscriptions: new Set(), ready }
      topics.set(name, topic)
    }
    topic.subscriptions.add(subscription)
    try {
      await topic.ready
    } catch (err) {
      // Not awaited: the error must reach the caller within the timeout, not after an UNSUBSCRIBE that may hang too.
      this.#remove(topics, name, subscription, pattern).catch(() => {})
      throw err
    }
    let done = false
    return async () => {
      if (done) return
      done = true
      await this.#remove(topics, name, subscription, pattern)
    }
  }

  async #remove (topics: Map<string, Topic>, name: string, subscription: Subscription, pattern: boolean): Promise<void> {
    const topic = topics.get(name)
    if (topic === undefined || !topic.subscriptions.delete(subscription)) return
    if (topic.subscriptions.size > 0) return
    topics.delete(name)
    this.#drops.forget(name)
    await (pattern ? this.#transport.punsubscribe(name) : this.#transport.unsubscribe(name))
  }

  // The transport's listener: ioredis rethrows a listener's error as an uncaught exception, so
  // whatever a message holds, nothing leaves here but counts and log lines.
  readonly #deliver = (fullChannel: string, payload: string, fullPattern: string | undefined): void => {
    try {
      this.#deliverEach(fullChannel, payload, fullPattern)
    } catch (err) {
      this.#counts.messagesDropped++
      this.#logger?.error({ err }, 'pubsub: a message could not be delivered')
    }
  }

  #deliverEach (fullChannel: string, payload: string, fullPattern: string | undefined): void {
    const topic = fullPattern === undefined ? this.#channels.get(fullChannel) : this.#patterns.get(fullPattern)
    if (topic === undefined) return
    const meta: MessageMeta = { channel: fullChannel.slice(this.#prefix.length) }
    if (fullPattern !== undefined) meta.pattern = fullPattern.slice(escapeGlob(this.#prefix).length)
    for (const subscription of topic.subscriptions) {
      this.#counts.messagesReceived++
      // Parsed per subscription: a handler that mutates its message cannot change another's.
      const decoded = decode(payload, subscription.schema)
      if (!decoded.ok) {
        this.#counts.messagesDropped++
        this.#drops.dropped(fullPattern ?? fullChannel, { channel: meta.channel, pattern: meta.pattern }, decoded.errors, 'pubsub')
        continue
      }
      Promise.resolve()
        .then(() => pubsubChannel.start.hasSubscribers
          ? traceDeliver(meta.channel, payload, () => subscription.handler(decoded.value, meta))
          : subscription.handler(decoded.value, meta))
        .catch((err: unknown) => {
          this.#counts.handlerErrors++
          this.#logger?.error({ channel: meta.channel, err }, 'pubsub: a message handler failed')
        })
    }
  }
}

function validateName (name: string, what: string): void {
  if (typeof name !== 'string' || name.length === 0 || name.length > 1024) {
    throw new PubSubNameError(`A pub/sub ${what} name must be a string of 1 to 1024 characters, got ${JSON.stringify(name)}`)
  }
}
