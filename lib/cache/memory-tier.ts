// The in-process tier: an LRU bounded by entry count and by bytes (the JSON size of each value), so a
// burst of large values cannot grow the heap without limit. Entries leave it at the end of their grace
// period (when next read), on LRU eviction, or when an invalidation (local or from another instance) names them.
import { LRUCache } from 'lru-cache'
import type { Envelope } from './entry.js'

export interface MemoryTierOptions {
  /** Default 10000. */
  maxEntries?: number
  /** Default 64 MiB, measured as the UTF-16 length of each entry's JSON (close to bytes for ASCII). */
  maxBytes?: number
}

export interface MemoryRecord {
  /** Frozen (engine.ts): every caller shares it. */
  readonly envelope: Envelope
  readonly namespace: string
  /** After this time (ms since the epoch) Redis is asked again before the entry is served. */
  readonly checkBy: number
}

export class MemoryTier {
  readonly #lru: LRUCache<string, MemoryRecord>

  constructor ({ maxEntries = 10_000, maxBytes = 64 * 1024 * 1024 }: MemoryTierOptions = {}) {
    // No lru-cache TTL: the envelope carries its own expiry, checked by the reader with the clock it
    // already read, and lru-cache's TTL bookkeeping costs a clock read (and a timer) per get.
    this.#lru = new LRUCache<string, MemoryRecord>({ max: maxEntries, maxSize: maxBytes })
  }

  /** The record, or undefined; one past its grace period is dropped here. */
  get (key: string, now: number): MemoryRecord | undefined {
    const record = this.#lru.get(key)
    if (record !== undefined && now >= record.envelope.staleUntil) {
      this.#lru.delete(key)
      return undefined
    }
    return record
  }

  /** `size` is the length of the entry's JSON, known from the write or the Redis read. */
  set (key: string, record: MemoryRecord, size: number): void {
    if (record.envelope.staleUntil <= Date.now()) return
    // An entry larger than the whole tier is refused by lru-cache; that is what we want.
    this.#lru.set(key, record, { size: Math.max(1, size) })
  }

  delete (key: string): void {
    this.#lru.delete(key)
  }

  /**
   * Invalidations by namespace or tag walk the tier: it is bounded (maxEntries) and they are rare
   * next to reads, so an index per tag would cost more on every write than it saves here.
   */
  deleteWhere (predicate: (namespace: string, envelope: Envelope) => boolean): number {
    let deleted = 0
    for (const [key, record] of this.#lru.entries()) {
      if (predicate(record.namespace, record.envelope)) {
        this.#lru.delete(key)
        deleted++
      }
    }
    return deleted
  }

  deleteNamespace (namespace: string): number {
    return this.deleteWhere((ns) => ns === namespace)
  }

  deleteTags (tags: readonly string[]): number {
    return this.deleteWhere((_, envelope) => tags.some((tag) => tag in envelope.tags))
  }

  clear (): void {
    this.#lru.clear()
  }

  get entries (): number {
    return this.#lru.size
  }

  get bytes (): number {
    return this.#lru.calculatedSize
  }
}
