// Redis Streams, the at-least-once option next to fire-and-forget pub/sub.
//
// add() is XADD with MAXLEN ~ (the stream keeps roughly its last `maxLen` entries). consume() joins a
// consumer group: XREADGROUP ... BLOCK on a dedicated connection (a blocking read would stall every
// other command on a shared one), the handler runs, and XACK follows only once it resolves. A handler
// that throws, or a consumer that dies mid-message, leaves the entry pending; every `minIdle` each
// consumer re-claims entries pending longer than that (XAUTOCLAIM) and runs them again. So a message
// can run more than once: handlers must be idempotent. Invalid messages are acked and dropped (they
// would fail for ever), logged once per burst.
import { setTimeout as sleep } from 'node:timers/promises'
import type { Static, TSchema } from 'typebox'
import { parseDuration, type Duration } from '../config/index.js'
import { check, decode, DropLog, type MessageLogger } from './message-schema.js'
import { bounded, whenReady, type RedisClient } from '../redis/index.js'

export const STREAM_UNAVAILABLE = 'FRS_STREAM_UNAVAILABLE'

/** The Redis key of a stream (exported for the suite's key-disjointness test). */
export function streamKey (name: string): string {
  return `stream:${name}`
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
}

export interface StreamMeta { id: string, stream: string, reclaimed: boolean }
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
}

export interface StreamCounters { added: number, acked: number, reclaimed: number, dropped: number, handlerErrors: number }

export interface StreamFactory {
  stream: <S extends TSchema>(name: string, schema: S, options?: StreamOptions) => TypedStream<Static<S>>
  stats: () => StreamCounters
  close: () => Promise<void>
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
  readonly counters: StreamCounters = { added: 0, acked: 0, reclaimed: 0, dropped: 0, handlerErrors: 0 }
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
    const stream: TypedStream<unknown> = {
      name,
      add: async (message) => {
        const result = check(message, schema)
        if (!result.ok) throw new TypeError(`The message added to stream ${JSON.stringify(name)} does not match its schema: ${result.errors.join('; ')}`)
        const id = await bounded(() => client.xadd(key, 'MAXLEN', '~', maxLen, '*', 'data', JSON.stringify(message)),
          this.bound(), STREAM_UNAVAILABLE, `add to stream ${JSON.stringify(name)}`)
        this.counters.added++
        return String(id)
      },
      consume: async (group, consumer, handler, consumeOptions = {}) => {
        await this.#createGroup(key, group, consumeOptions.from ?? 'new')
        const loop = new ConsumerLoop(this, { key, name, group, consumer, schema, handler, ...consumeOptions })
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
        this.bound(), STREAM_UNAVAILABLE, `create consumer group ${JSON.stringify(group)}`)
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
}

class ConsumerLoop {
  readonly #streams: RedisStreams
  readonly #o: LoopOptions
  readonly #minIdleMs: number
  #connection: RedisClient | undefined
  #running: Promise<void> | undefined
  #stopped = false
  #failing = false

  constructor (streams: RedisStreams, options: LoopOptions) {
    this.#streams = streams
    this.#o = options
    this.#minIdleMs = parseDuration(options.minIdle ?? '30s', 'minIdle')
  }

  async start (): Promise<void> {
    const { blockingConnection } = this.#streams.options
    this.#connection = blockingConnection()
    try {
      await whenReady(this.#connection, this.#streams.bound(), STREAM_UNAVAILABLE, `consume stream ${JSON.stringify(this.#o.name)}`)
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
      for (const entry of reply[1]) await this.#handle(connection, entry, true)
      cursor = String(reply[0])
      if (cursor === '0-0') break
    }
  }

  async #handle (connection: RedisClient, entry: Entry, reclaimed: boolean): Promise<void> {
    if (entry === null) return // trimmed by MAXLEN while pending (Redis 6.2 reports it as nil)
    const [id, fields] = entry
    const { key, group, name, schema, handler } = this.#o
    const counters = this.#streams.counters
    if (reclaimed) counters.reclaimed++
    const data = fields[fields.indexOf('data') + 1]
    const decoded = data === undefined ? { ok: false as const, errors: ['no data field'] } : decode(data, schema)
    if (!decoded.ok) {
      counters.dropped++
      this.#streams.drops.dropped(`stream:${name}:${group}`, { stream: name, group, id }, decoded.errors, 'streams')
    } else {
      try {
        await handler(decoded.value, { id, stream: name, reclaimed })
      } catch (err) {
        counters.handlerErrors++
        this.#streams.options.logger?.error({ stream: name, group, id, err }, 'streams: a handler failed; the entry stays pending and is re-claimed after minIdle')
        return
      }
    }
    await connection.xack(key, group, id)
    counters.acked++
  }
}
