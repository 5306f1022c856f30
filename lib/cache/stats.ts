// Counters for the metrics plugin: a plain snapshot by namespace and tier, plus an optional event
// callback for those who want to observe each lookup as it happens.
import { cacheChannel, noteCacheOutcome } from '../tracing/index.js'

export type CacheTier = 'memory' | 'redis'

export type CacheEvent =
  | { type: 'hit' | 'miss' | 'stale', namespace: string, tier: CacheTier }
  | { type: 'load', namespace: string, durationMs: number }
  | { type: 'load-error' | 'load-timeout', namespace: string }
  | { type: 'redis-failure', operation: string }
  | { type: 'invalidation-received', kind: InvalidationKind, evicted: number }
  /** A message on the invalidation channel that is not one (malformed, or from something else): ignored. */
  | { type: 'invalidation-dropped' }
  /** A compressed entry read from Redis that did not decompress (corrupt, or a codec this Node lacks): a miss. */
  | { type: 'decompression-failure', namespace: string }

export type InvalidationKind = 'keys' | 'tags' | 'namespace'

export interface TierCounters { hits: number, misses: number, stale: number }

export interface NamespaceStats {
  memory: TierCounters
  redis: TierCounters
  loads: number
  loadErrors: number
  loadTimeouts: number
}

export interface CacheStats {
  namespaces: Record<string, NamespaceStats>
  redisFailures: number
  invalidationsReceived: number
  /** Messages on the invalidation channel that did not match its schema: dropped. */
  invalidationsDropped: number
  /** Compressed entries that did not decompress: treated as misses. */
  decompressionFailures: number
  memory: { entries: number, bytes: number } | undefined
}

const emptyTier = (): TierCounters => ({ hits: 0, misses: 0, stale: 0 })

export class CacheCounters {
  readonly #namespaces = new Map<string, NamespaceStats>()
  #redisFailures = 0
  #invalidationsReceived = 0
  #invalidationsDropped = 0
  #decompressionFailures = 0
  readonly #onEvent: ((event: CacheEvent) => void) | undefined

  constructor (onEvent?: (event: CacheEvent) => void) {
    this.#onEvent = onEvent
  }

  /** A hit, miss or stale answer: a plain increment; an event object only when someone observes. */
  count (type: 'hit' | 'miss' | 'stale', namespace: string, tier: CacheTier): void {
    const counters = this.#of(namespace)[tier]
    if (type === 'hit') counters.hits++
    else if (type === 'miss') counters.misses++
    else counters.stale++
    if (this.#onEvent !== undefined) this.#emit({ type, namespace, tier })
    if (cacheChannel.start.hasSubscribers) noteCacheOutcome(type, tier)
  }

  record (event: CacheEvent): void {
    switch (event.type) {
      case 'hit': this.#of(event.namespace)[event.tier].hits++; break
      case 'miss': this.#of(event.namespace)[event.tier].misses++; break
      case 'stale': this.#of(event.namespace)[event.tier].stale++; break
      case 'load': this.#of(event.namespace).loads++; break
      case 'load-error': this.#of(event.namespace).loadErrors++; break
      case 'load-timeout': this.#of(event.namespace).loadTimeouts++; break
      case 'redis-failure': this.#redisFailures++; break
      case 'invalidation-received': this.#invalidationsReceived++; break
      case 'invalidation-dropped': this.#invalidationsDropped++; break
      case 'decompression-failure': this.#decompressionFailures++; break
    }
    if (this.#onEvent !== undefined) this.#emit(event)
  }

  #emit (event: CacheEvent): void {
    try {
      this.#onEvent?.(event)
    } catch {
      // An observer's bug must not turn a cache hit into an error.
    }
  }

  snapshot (memory: CacheStats['memory']): CacheStats {
    const namespaces: Record<string, NamespaceStats> = {}
    for (const [name, s] of this.#namespaces) {
      namespaces[name] = { ...s, memory: { ...s.memory }, redis: { ...s.redis } }
    }
    return { namespaces, redisFailures: this.#redisFailures, invalidationsReceived: this.#invalidationsReceived, invalidationsDropped: this.#invalidationsDropped, decompressionFailures: this.#decompressionFailures, memory }
  }

  #of (namespace: string): NamespaceStats {
    let stats = this.#namespaces.get(namespace)
    // Almost always there: one Map lookup, no allocation.
    if (stats === undefined) {
      stats = { memory: emptyTier(), redis: emptyTier(), loads: 0, loadErrors: 0, loadTimeouts: 0 }
      this.#namespaces.set(namespace, stats)
    }
    return stats
  }
}
