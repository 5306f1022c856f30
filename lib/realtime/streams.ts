// Redis Streams, the at-least-once option next to fire-and-forget pub/sub.
//
// add() is XADD with MAXLEN ~ (the stream keeps roughly its last `maxLen` entries). consume() joins a
// consumer group: XREADGROUP ... BLOCK on a dedicated connection (a blocking read would stall every
// other command on a shared one), the handler runs, and XACK follows only once it resolves. A handler
// that throws, or a consumer that dies mid-message, leaves the entry pending; every `minIdle` each
// consumer re-claims entries pending longer than that (XAUTOCLAIM) and runs them again. So a message
// can run more than once: handlers must be idempotent. Invalid messages are acked and dropped (they
// would fail for ever), logged once per burst.
//
// Dead letters: with `maxDeliveries`, an entry whose handler failed on its last allowed delivery (or
// that was delivered that many times without an ack: its consumers died on it) is written to the
// stream `<name>:dead` (key `stream:<name>:dead`) with its id, group, consumer, delivery count and
// error, then acked. XAUTOCLAIM does not report delivery counts, so a reclaim asks XPENDING for them.
// The write and the ack are two single-key commands (the two keys may live on different Cluster
// nodes): a crash between them dead-letters the entry again on its next reclaim, same `id`.
import { setTimeout as sleep } from 'node:timers/promises'
import Type, { type Static, type TSchema } from 'typebox'
import { parseDuration, type Duration } from '../config/index.js'
import { check, decode, DropLog, type MessageLogger } from './message-schema.js'
import { bounded, whenReady, type RedisClient } from '../redis/index.js'
import { codes, StreamMessageError, StreamOptionError } from '../errors/index.js'

/** The Redis key of a stream (exported for the suite's key-disjointness test). */
export function streamKey (name: string): string {
  return `stream:${name}`
}

/** The name of a stream's dead-letter stream: itself a stream, read with the same API. */
export function deadLetterStreamName (name: string): string {
  return `${name}:dead`
}

/** What a dead-letter stream holds for each entry moved there. */
export interface DeadLetter<T> {
  /** The entry's id in its stream. */
  id: string
  group: string
  /** The consumer that gave up on it. */
  consumer: string
  /** Times it was delivered to a handler. */
  deliveries: number
  /** The last handler error's message, or why it was given up without one. */
  error: string
  message: T
}

/** The schema of a dead letter of a stream whose messages match `schema`. */
export function deadLetterSchema<S extends TSchema> (schema: S) {
  return Type.Object({
    id: Type.String(),
    group: Type.String(),
    consumer: Type.String(),
    deliveries: Type.Integer({ minimum: 1 }),
    error: Type.String(),
    message: schema
  })
}

/** `maxDeliveries` checked: a whole number of at least 1, or Infinity when not given (retry for ever). */
export function resolveMaxDeliveries (value: number | undefined): number {
  if (value === undefined) return Infinity
  if (!Number.isInteger(value) || value < 1) throw new StreamOptionError(`maxDeliveries must be a whole number of at least 1 (got ${String(value)}); leave it out to retry for ever`)
  return value
}

/** The error text kept in a dead letter: the message, bounded. */
export function deadLetterError (err: unknown): string {
  const text = err instanceof Error ? err.message : String(err)
  return text.length > 2_000 ? `${text.slice(0, 2_000)}…` : text
}

/** The reason given for an entry delivered `deliveries` times that no handler ever finished. */
export function unackedError (deliveries: number): string {
  return `not acknowledged after ${deliveries} ${deliveries === 1 ? 'delivery' : 'deliveries'}: its consumer stopped or died while handling it`
}

export interface StreamOptions {
  /** Approximate number of entries kept (XADD MAXLEN ~). Default 10,000. */
  maxLen?: number
}

export interface ConsumeOptions {
  /** Entries read per round trip. Default 10. */
  count?: number
  /** Entries pending (unacked) longer than this are re-claimed and run again. Default 30s. */
  minIdle?: Duration
  /** Where a group created by this call starts: 'new' entries only (default) or the whole retained stream. */
  from?: 'new' | 'beginning'
  /**
   * Deliveries after which an entry whose handler keeps failing (or whose consumers die on it) moves to
   * the dead-letter stream (`stream.deadLetters`) and is acked. Default: none, retried every minIdle for ever.
   */
  maxDeliveries?: number
}

export interface StreamMeta {
  id: string
  stream: string
  /** Taken over (XAUTOCLAIM) after it stayed pending past minIdle. */
  reclaimed: boolean
  /** This delivery's number: 1 the first time, more after failures or a dead consumer. */
  deliveries: number
}
export type StreamHandler<T> = (message: T, meta: StreamMeta) => void | Promise<void>

export interface StreamConsumer {
  /** Stops reading; resolves once the message in hand (if any) is handled. Unacked ones stay pending for others. */
  stop: () => Promise<void>
}

export interface TypedStream<T> {
  readonly name: string
  /** XADD: resolves with the entry id. */
  add: (message: T) => Promise<string>
  /** Resolves once the group exists (created when missing) and reading has started. */
  consume: (group: string, consumer: string, handler: StreamHandler<T>, options?: ConsumeOptions) => Promise<StreamConsumer>
  /** The dead-letter stream `<name>:dead` (see ConsumeOptions.maxDeliveries), with the same maxLen. */
  readonly deadLetters: TypedStream<DeadLetter<T>>
}

export interface StreamCounters { added: number, acked: number, reclaimed: number, dropped: number, handlerErrors: number, deadLettered: number }

/** Dead letters written by this process, per stream and consumer group (the metric's labels). */
export interface DeadLetterCount { stream: string, group: string, count: number }

export interface StreamFactory {
  stream: <S extends TSchema>(name: string, schema: S, options?: StreamOptions) => TypedStream<Static<S>>
  stats: () => StreamCounters
  deadLetterCounts: () => DeadLetterCount[]
  close: () => Promise<void>
}

/** Counts dead letters per stream and group. */
export class DeadLetterTally {
  readonly #counts = new Map<string, DeadLetterCount>()

  /**
   * A group that dead-letters starts its count at 0, so the metric's series exists before the first
   * dead letter and Prometheus' increase() sees that one too.
   */
  watch (stream: string, group: string): DeadLetterCount {
    const key = `${stream}\u0000${group}`
    let entry = this.#counts.get(key)
    if (entry === undefined) {
      entry = { stream, group, count: 0 }
      this.#counts.set(key, entry)
    }
    return entry
  }

  add (stream: string, group: string): void {
    this.watch(stream, group).count++
  }

  list (): DeadLetterCount[] {
    return [...this.#counts.values()].map((c) => ({ ...c }))
  }
}

type Entry = [id: string, fields: string[]] | null

export interface RedisStreamsOptions {
  client: RedisClient
  /** A new connection for one consumer's blocking reads; it is disconnected when the consumer stops. */
  blockingConnection: () => RedisClient
  timeoutMs: number
  /** The failover wait left (REDIS_FAILOVER_WAIT), added to the bound of a command issued now. */
  waitLeft?: () => number
  /** How long one XREADGROUP blocks; keep it under the client's commandTimeout. Default timeoutMs / 2. */
  blockMs?: number
  logger?: MessageLogger | undefined
}

export class RedisStreams implements StreamFactory {
  readonly counters: StreamCounters = { added: 0, acked: 0, reclaimed: 0, dropped: 0, handlerErrors: 0, deadLettered: 0 }
  readonly deadLetterTally = new DeadLetterTally()
  readonly #options: RedisStreamsOptions
  readonly #drops: DropLog
  readonly #consumers = new Set<StreamConsumer>()

  constructor (options: RedisStreamsOptions) {
    this.#options = options
    this.#drops = new DropLog(options.logger)
  }

  stream<S extends TSchema> (name: string, schema: S, options: StreamOptions = {}): TypedStream<Static<S>> {
    const key = streamKey(name)
    const maxLen = String(options.maxLen ?? 10_000)
    const { client } = this.#options
    const factory = this
    let deadLetters: TypedStream<unknown> | undefined
    const stream: TypedStream<unknown> = {
      name,
      get deadLetters () {
        deadLetters ??= factory.stream(deadLetterStreamName(name), deadLetterSchema(schema), options) as TypedStream<unknown>
        return deadLetters as TypedStream<DeadLetter<unknown>>
      },
      add: async (message) => {
        const result = check(message, schema)
        if (!result.ok) throw new StreamMessageError(`The message added to stream ${JSON.stringify(name)} does not match its schema: ${result.errors.join('; ')}`, result.errors)
        const id = await bounded(() => client.xadd(key, 'MAXLEN', '~', maxLen, '*', 'data', JSON.stringify(message)),
          this.bound(), codes.FRS_STREAM_UNAVAILABLE, `add to stream ${JSON.stringify(name)}`)
        this.counters.added++
        return String(id)
      },
      consume: async (group, consumer, handler, consumeOptions = {}) => {
        const maxDeliveries = resolveMaxDeliveries(consumeOptions.maxDeliveries)
        await this.#createGroup(key, group, consumeOptions.from ?? 'new')
        if (maxDeliveries !== Infinity) this.deadLetterTally.watch(name, group)
        const loop = new ConsumerLoop(this, {
          key, name, group, consumer, schema, handler, ...consumeOptions, maxDeliveries, deadKey: streamKey(deadLetterStreamName(name)), maxLen
        })
        const handle: StreamConsumer = {
          stop: async () => {
            this.#consumers.delete(handle)
            await loop.stop()
          }
        }
        this.#consumers.add(handle)
        await loop.start()
        return handle
      }
    }
    return stream as unknown as TypedStream<Static<S>>
  }

  stats (): StreamCounters {
    return { ...this.counters }
  }

  deadLetterCounts (): DeadLetterCount[] {
    return this.deadLetterTally.list()
  }

  async close (): Promise<void> {
    await Promise.all([...this.#consumers].map((c) => c.stop()))
  }

  get options (): RedisStreamsOptions { return this.#options }

  /** The bound on a command issued now: the command timeout plus the failover wait left. */
  bound (): number { return this.#options.timeoutMs + (this.#options.waitLeft?.() ?? 0) }
  get drops (): DropLog { return this.#drops }

  async #createGroup (key: string, group: string, from: 'new' | 'beginning'): Promise<void> {
    try {
      await bounded(() => this.#options.client.xgroup('CREATE', key, group, from === 'new' ? '$' : '0', 'MKSTREAM'),
        this.bound(), codes.FRS_STREAM_UNAVAILABLE, `create consumer group ${JSON.stringify(group)}`)
    } catch (err) {
      if (!String((err as Error).message).includes('BUSYGROUP')) throw err
    }
  }
}

interface LoopOptions extends ConsumeOptions {
  key: string
  name: string
  group: string
  consumer: string
  schema: TSchema
  handler: StreamHandler<unknown>
  maxDeliveries: number
  deadKey: string
  maxLen: string
}

class ConsumerLoop {
  readonly #streams: RedisStreams
  readonly #o: LoopOptions
  readonly #minIdleMs: number
  #connection: RedisClient | undefined
  #running: Promise<void> | undefined
  #stopped = false
  #failing = false
  #noXpendingLogged = false

  constructor (streams: RedisStreams, options: LoopOptions) {
    this.#streams = streams
    this.#o = options
    this.#minIdleMs = parseDuration(options.minIdle ?? '30s', 'minIdle')
  }

  async start (): Promise<void> {
    const { blockingConnection } = this.#streams.options
    this.#connection = blockingConnection()
    try {
      await whenReady(this.#connection, this.#streams.bound(), codes.FRS_STREAM_UNAVAILABLE, `consume stream ${JSON.stringify(this.#o.name)}`)
    } catch (err) {
      this.#connection.disconnect()
      throw err
    }
    this.#running = this.#run()
  }

  async stop (): Promise<void> {
    this.#stopped = true
    // Closing the connection ends a blocked XREADGROUP at once.
    this.#connection?.disconnect()
    await this.#running
  }

  async #run (): Promise<void> {
    const { timeoutMs, blockMs = Math.max(10, Math.floor(timeoutMs / 2)), logger } = this.#streams.options
    const { key, group, consumer, count = 10 } = this.#o
    let nextReclaim = 0
    while (!this.#stopped) {
      const connection = this.#connection as RedisClient
      try {
        if (Date.now() >= nextReclaim) {
          await this.#reclaim(connection, count)
          nextReclaim = Date.now() + this.#minIdleMs
        }
        const reply = await connection.xreadgroup('GROUP', group, consumer, 'COUNT', count, 'BLOCK', blockMs, 'STREAMS', key, '>') as Array<[string, Entry[]]> | null
        for (const entry of reply?.[0]?.[1] ?? []) await this.#handle(connection, entry, false)
        if (this.#failing) logger?.warn({ stream: this.#o.name, group }, 'streams: reading again')
        this.#failing = false
      } catch (err) {
        if (this.#stopped) break
        const message = String((err as Error).message)
        if (message.includes('NOGROUP')) {
          // The stream or group was deleted: create it again and go on.
          await this.#streams.options.client.xgroup('CREATE', key, group, '$', 'MKSTREAM').catch(() => {})
          continue
        }
        if (!this.#failing) logger?.warn({ stream: this.#o.name, group, err: { message } }, 'streams: reading failed; retrying until Redis is back')
        this.#failing = true
        await sleep(Math.min(500, timeoutMs))
      }
    }
  }

  /** XAUTOCLAIM entries idle past minIdle (a crashed consumer's, or ones whose handler failed) and run them. */
  async #reclaim (connection: RedisClient, count: number): Promise<void> {
    const { key, group, consumer } = this.#o
    let cursor = '0-0'
    for (let round = 0; round < 10 && !this.#stopped; round++) {
      const reply = await connection.xautoclaim(key, group, consumer, this.#minIdleMs, cursor, 'COUNT', count) as unknown as [string, Entry[]]
      const entries = reply[1].filter((entry) => entry !== null)
      const deliveries = await this.#deliveries(connection, entries.map(([id]) => id))
      for (const entry of entries) await this.#handle(connection, entry, true, deliveries.get(entry[0]))
      cursor = String(reply[0])
      if (cursor === '0-0') break
    }
  }

  /**
   * Delivery counts of entries this consumer just claimed (the claim counted as one), from XPENDING's
   * extended form: XAUTOCLAIM does not report them. An id missing from the answer (acked meanwhile) is
   * left out; its entry then runs as a second delivery.
   */
  async #deliveries (connection: RedisClient, ids: string[]): Promise<Map<string, number>> {
    const { key, group, name, maxDeliveries } = this.#o
    const counts = new Map<string, number>()
    if (ids.length === 0) return counts
    let replies: Array<Array<[string, string, number, number]>>
    try {
      replies = await Promise.all(ids.map((id) => connection.xpending(key, group, id, id, 1) as Promise<Array<[string, string, number, number]>>))
    } catch (err) {
      // An ACL user made from the rule of an earlier version lacks XPENDING: keep handling re-claimed
      // entries (as their second delivery) rather than stall on them, and say what to grant.
      if (!String((err as Error).message).includes('NOPERM')) throw err
      if (!this.#noXpendingLogged) {
        this.#noXpendingLogged = true
        this.#streams.options.logger?.warn({ stream: name, group, maxDeliveries },
          'streams: Redis refused XPENDING (ACL): delivery counts of re-claimed entries are unknown, so maxDeliveries cannot be applied to them; grant +xpending (suiteAclRule)')
      }
      return counts
    }
    for (const reply of replies) {
      const row = reply[0]
      if (row !== undefined) counts.set(String(row[0]), Number(row[3]))
    }
    return counts
  }

  async #handle (connection: RedisClient, entry: Entry, reclaimed: boolean, claimedDeliveries?: number): Promise<void> {
    if (entry === null) return // trimmed by MAXLEN while pending (Redis 6.2 reports it as nil)
    const [id, fields] = entry
    const { key, group, name, schema, handler, maxDeliveries } = this.#o
    const counters = this.#streams.counters
    // Entries read with '>' are on their first delivery; claimed ones at least their second.
    const deliveries = reclaimed ? Math.max(2, claimedDeliveries ?? 2) : 1
    if (reclaimed) counters.reclaimed++
    const data = fields[fields.indexOf('data') + 1]
    const decoded = data === undefined ? { ok: false as const, errors: ['no data field'] } : decode(data, schema)
    if (!decoded.ok) {
      counters.dropped++
      this.#streams.drops.dropped(`stream:${name}:${group}`, { stream: name, group, id }, decoded.errors, 'streams')
    } else if (deliveries > maxDeliveries) {
      // Every allowed delivery ended without an ack or an error we saw: its consumers died on it.
      await this.#deadLetter(connection, id, decoded.value, deliveries - 1, unackedError(deliveries - 1))
      return
    } else {
      try {
        await handler(decoded.value, { id, stream: name, reclaimed, deliveries })
      } catch (err) {
        counters.handlerErrors++
        if (deliveries >= maxDeliveries) {
          await this.#deadLetter(connection, id, decoded.value, deliveries, deadLetterError(err))
          return
        }
        this.#streams.options.logger?.error({ stream: name, group, id, deliveries, err }, 'streams: a handler failed; the entry stays pending and is re-claimed after minIdle')
        return
      }
    }
    await connection.xack(key, group, id)
    counters.acked++
  }

  /** Writes the dead letter, then acks the entry (see the top of this file for a crash between the two). */
  async #deadLetter (connection: RedisClient, id: string, message: unknown, deliveries: number, error: string): Promise<void> {
    const { key, group, consumer, name, deadKey, maxLen } = this.#o
    const letter: DeadLetter<unknown> = { id, group, consumer, deliveries, error, message }
    await connection.xadd(deadKey, 'MAXLEN', '~', maxLen, '*', 'data', JSON.stringify(letter))
    await connection.xack(key, group, id)
    this.#streams.counters.deadLettered++
    this.#streams.deadLetterTally.add(name, group)
    this.#streams.options.logger?.error({ stream: name, group, id, deliveries, err: { message: error } },
      `streams: an entry was moved to the dead-letter stream ${JSON.stringify(deadLetterStreamName(name))}`)
  }
}
