// Streams for memory mode: the same API and delivery rules as RedisStreams (consumer groups, ack after
// the handler resolves, re-claim after minIdle, approximate MAXLEN), kept in this process.
import { EventEmitter } from 'node:events'
import type { Static, TSchema } from 'typebox'
import { parseDuration } from '../config/index.js'
import { check, DropLog, type MessageLogger } from './message-schema.js'
import type { ConsumeOptions, StreamConsumer, StreamCounters, StreamFactory, StreamHandler, StreamOptions, TypedStream } from './streams.js'

interface MemoryEntry { seq: number, id: string, json: string }
interface Pending { entry: MemoryEntry, deliveredAt: number }
interface Group { lastSeq: number, pending: Map<number, Pending> }
interface Log { entries: MemoryEntry[], seq: number, groups: Map<string, Group>, events: EventEmitter }

export class MemoryStreams implements StreamFactory {
  readonly #counters: StreamCounters = { added: 0, acked: 0, reclaimed: 0, dropped: 0, handlerErrors: 0 }
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
    const stream: TypedStream<unknown> = {
      name,
      add: async (message) => {
        const result = check(message, schema)
        if (!result.ok) throw new TypeError(`The message added to stream ${JSON.stringify(name)} does not match its schema: ${result.errors.join('; ')}`)
        const log = this.#log(name)
        const seq = ++log.seq
        const id = `${Date.now()}-${seq}`
        log.entries.push({ seq, id, json: JSON.stringify(message) })
        if (log.entries.length > maxLen) log.entries.splice(0, log.entries.length - maxLen)
        this.#counters.added++
        log.events.emit('added')
        return id
      },
      consume: async (groupName, _consumer, handler, consumeOptions = {}) => {
        const log = this.#log(name)
        let group = log.groups.get(groupName)
        if (group === undefined) {
          group = { lastSeq: consumeOptions.from === 'beginning' ? 0 : log.seq, pending: new Map() }
          log.groups.set(groupName, group)
        }
        const stop = this.#loop(name, log, group, groupName, schema, handler, consumeOptions)
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

  async close (): Promise<void> {
    await Promise.all([...this.#consumers].map((c) => c.stop()))
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

  #loop (name: string, log: Log, group: Group, groupName: string, schema: TSchema, handler: StreamHandler<unknown>,
    options: ConsumeOptions): () => Promise<void> {
    const minIdleMs = parseDuration(options.minIdle ?? '30s', 'minIdle')
    const count = options.count ?? 10
    const state = { stopped: false }
    let wake: () => void = () => {}
    const onAdded = (): void => wake()
    log.events.on('added', onAdded)
    const running = (async () => {
      while (!state.stopped) {
        const now = Date.now()
        const batch: Array<{ entry: MemoryEntry, reclaimed: boolean }> = []
        for (const pending of group.pending.values()) {
          if (batch.length >= count) break
          if (now - pending.deliveredAt >= minIdleMs) batch.push({ entry: pending.entry, reclaimed: true })
        }
        for (const entry of log.entries) {
          if (batch.length >= count) break
          if (entry.seq > group.lastSeq) {
            group.lastSeq = entry.seq
            batch.push({ entry, reclaimed: false })
          }
        }
        for (const { entry, reclaimed } of batch) {
          if (reclaimed) this.#counters.reclaimed++
          group.pending.set(entry.seq, { entry, deliveredAt: Date.now() })
          if (await this.#handle(name, groupName, entry, schema, handler, reclaimed)) {
            group.pending.delete(entry.seq)
            this.#counters.acked++
          }
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

  /** True when the entry is done with (handled, or dropped as invalid); false leaves it pending. */
  async #handle (name: string, group: string, entry: MemoryEntry, schema: TSchema, handler: StreamHandler<unknown>, reclaimed: boolean): Promise<boolean> {
    const decoded = check(JSON.parse(entry.json), schema)
    if (!decoded.ok) {
      this.#counters.dropped++
      this.#drops.dropped(`stream:${name}:${group}`, { stream: name, group, id: entry.id }, decoded.errors, 'streams')
      return true
    }
    try {
      await handler(decoded.value, { id: entry.id, stream: name, reclaimed })
      return true
    } catch (err) {
      this.#counters.handlerErrors++
      this.#logger?.error({ stream: name, group, id: entry.id, err }, 'streams: a handler failed; the entry stays pending and is re-claimed after minIdle')
      return false
    }
  }
}
