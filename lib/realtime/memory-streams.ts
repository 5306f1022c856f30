// Streams for memory mode: the same API and delivery rules as RedisStreams (consumer groups, ack after
// the handler resolves, re-claim after minIdle, approximate MAXLEN, dead letters after maxDeliveries),
// kept in this process.
import { EventEmitter } from 'node:events'
import type { Static, TSchema } from 'typebox'
import { parseDuration } from '../config/index.js'
import { check, DropLog, type MessageLogger } from './message-schema.js'
import {
  DeadLetterTally, deadLetterError, deadLetterSchema, deadLetterStreamName, resolveMaxDeliveries, unackedError,
  type ConsumeOptions, type DeadLetter, type DeadLetterCount, type StreamConsumer, type StreamCounters, type StreamFactory,
  type StreamHandler, type StreamOptions, type TypedStream
} from './streams.js'
import { StreamMessageError } from '../errors/index.js'

interface MemoryEntry { seq: number, id: string, json: string }
interface Pending { entry: MemoryEntry, deliveredAt: number, deliveries: number }
interface Group { lastSeq: number, pending: Map<number, Pending> }
interface Log { entries: MemoryEntry[], seq: number, groups: Map<string, Group>, events: EventEmitter }

export class MemoryStreams implements StreamFactory {
  readonly #counters: StreamCounters = { added: 0, acked: 0, reclaimed: 0, dropped: 0, handlerErrors: 0, deadLettered: 0 }
  readonly #deadLetters = new DeadLetterTally()
  readonly #logs = new Map<string, Log>()
  readonly #consumers = new Set<StreamConsumer>()
  readonly #drops: DropLog
  readonly #logger: MessageLogger | undefined

  constructor (logger?: MessageLogger) {
    this.#logger = logger
    this.#drops = new DropLog(logger)
  }

  stream<S extends TSchema> (name: string, schema: S, options: StreamOptions = {}): TypedStream<Static<S>> {
    const maxLen = options.maxLen ?? 10_000
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
        const id = this.#append(name, JSON.stringify(message), maxLen)
        this.#counters.added++
        return id
      },
      consume: async (groupName, consumer, handler, consumeOptions = {}) => {
        const maxDeliveries = resolveMaxDeliveries(consumeOptions.maxDeliveries)
        if (maxDeliveries !== Infinity) this.#deadLetters.watch(name, groupName)
        const log = this.#log(name)
        let group = log.groups.get(groupName)
        if (group === undefined) {
          group = { lastSeq: consumeOptions.from === 'beginning' ? 0 : log.seq, pending: new Map() }
          log.groups.set(groupName, group)
        }
        const deadLetter = (entry: MemoryEntry, message: unknown, deliveries: number, error: string): void => {
          const letter: DeadLetter<unknown> = { id: entry.id, group: groupName, consumer, deliveries, error, message }
          this.#append(deadLetterStreamName(name), JSON.stringify(letter), maxLen)
          this.#counters.deadLettered++
          this.#deadLetters.add(name, groupName)
          this.#logger?.error({ stream: name, group: groupName, id: entry.id, deliveries, err: { message: error } },
            `streams: an entry was moved to the dead-letter stream ${JSON.stringify(deadLetterStreamName(name))}`)
        }
        const stop = this.#loop({ name, log, group, groupName, schema, handler, options: consumeOptions, maxDeliveries, deadLetter })
        const handle: StreamConsumer = {
          stop: async () => {
            this.#consumers.delete(handle)
            await stop()
          }
        }
        this.#consumers.add(handle)
        return handle
      }
    }
    return stream as unknown as TypedStream<Static<S>>
  }

  stats (): StreamCounters {
    return { ...this.#counters }
  }

  deadLetterCounts (): DeadLetterCount[] {
    return this.#deadLetters.list()
  }

  async close (): Promise<void> {
    await Promise.all([...this.#consumers].map((c) => c.stop()))
  }

  /** Appends an entry (trimmed to maxLen) and wakes the stream's consumers; returns its id. */
  #append (name: string, json: string, maxLen: number): string {
    const log = this.#log(name)
    const seq = ++log.seq
    const id = `${Date.now()}-${seq}`
    log.entries.push({ seq, id, json })
    if (log.entries.length > maxLen) log.entries.splice(0, log.entries.length - maxLen)
    log.events.emit('added')
    return id
  }

  #log (name: string): Log {
    let log = this.#logs.get(name)
    if (log === undefined) {
      log = { entries: [], seq: 0, groups: new Map(), events: new EventEmitter() }
      log.events.setMaxListeners(0)
      this.#logs.set(name, log)
    }
    return log
  }

  #loop ({ name, log, group, groupName, schema, handler, options, maxDeliveries, deadLetter }: LoopOptions): () => Promise<void> {
    const minIdleMs = parseDuration(options.minIdle ?? '30s', 'minIdle')
    const count = options.count ?? 10
    const state = { stopped: false }
    let wake: () => void = () => {}
    const onAdded = (): void => wake()
    log.events.on('added', onAdded)
    const running = (async () => {
      while (!state.stopped) {
        const now = Date.now()
        const batch: Array<{ entry: MemoryEntry, deliveries: number }> = []
        for (const pending of group.pending.values()) {
          if (batch.length >= count) break
          if (now - pending.deliveredAt >= minIdleMs) batch.push({ entry: pending.entry, deliveries: pending.deliveries + 1 })
        }
        for (const entry of log.entries) {
          if (batch.length >= count) break
          if (entry.seq > group.lastSeq) {
            group.lastSeq = entry.seq
            batch.push({ entry, deliveries: 1 })
          }
        }
        for (const { entry, deliveries } of batch) {
          const reclaimed = deliveries > 1
          if (reclaimed) this.#counters.reclaimed++
          group.pending.set(entry.seq, { entry, deliveredAt: Date.now(), deliveries })
          const outcome = await this.#handle(name, groupName, entry, schema, handler, deliveries, maxDeliveries)
          if (outcome === true) {
            this.#counters.acked++
          } else if (outcome === false) {
            continue // stays pending
          } else {
            deadLetter(entry, outcome.message, outcome.deliveries, outcome.error)
          }
          group.pending.delete(entry.seq)
        }
        if (batch.length === 0 && !state.stopped) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, Math.max(10, Math.min(minIdleMs, 1_000)))
            wake = () => { clearTimeout(timer); resolve() }
          })
        }
      }
    })()
    return async () => {
      state.stopped = true
      log.events.off('added', onAdded)
      wake()
      await running
    }
  }

  /**
   * True when the entry is done with (handled, or dropped as invalid); false leaves it pending; a dead
   * letter when it is out of deliveries.
   */
  async #handle (name: string, group: string, entry: MemoryEntry, schema: TSchema, handler: StreamHandler<unknown>,
    deliveries: number, maxDeliveries: number): Promise<boolean | Omit<DeadLetter<unknown>, 'id' | 'group' | 'consumer'>> {
    const decoded = check(JSON.parse(entry.json), schema)
    if (!decoded.ok) {
      this.#counters.dropped++
      this.#drops.dropped(`stream:${name}:${group}`, { stream: name, group, id: entry.id }, decoded.errors, 'streams')
      return true
    }
    // As on Redis: a handler slower than minIdle lets another consumer take the entry over, so a handler
    // that never finishes leaves it delivered without an ack.
    if (deliveries > maxDeliveries) return { message: decoded.value, deliveries: deliveries - 1, error: unackedError(deliveries - 1) }
    try {
      await handler(decoded.value, { id: entry.id, stream: name, reclaimed: deliveries > 1, deliveries })
      return true
    } catch (err) {
      this.#counters.handlerErrors++
      if (deliveries >= maxDeliveries) return { message: decoded.value, deliveries, error: deadLetterError(err) }
      this.#logger?.error({ stream: name, group, id: entry.id, deliveries, err }, 'streams: a handler failed; the entry stays pending and is re-claimed after minIdle')
      return false
    }
  }
}

interface LoopOptions {
  name: string
  log: Log
  group: Group
  groupName: string
  schema: TSchema
  handler: StreamHandler<unknown>
  options: ConsumeOptions
  maxDeliveries: number
  deadLetter: (entry: MemoryEntry, message: unknown, deliveries: number, error: string) => void
}
