// The engine shared by every namespace of one cache: the two tiers, the invalidation bus and the
// counters, with lookups and writes that judge entries (expiry, versions, schema) in one place.
import { randomUUID } from 'node:crypto'
import { parseDuration } from '../duration.js'
import {
  checkSchema, decodeEnvelope, encodeEnvelope, isFresh, isUsable, unreadTags, versionsMatch, type Envelope
} from './entry.js'
import { InvalidationBus, type Invalidation } from './invalidation-bus.js'
import { keyLayout, type KeyLayout } from './keys.js'
import { MemoryTier } from './memory-tier.js'
import type { ResolvedOptions } from './options.js'
import { RedisTier, type RedisClient } from './redis-tier.js'
import { CacheCounters, type CacheStats, type CacheTier } from './stats.js'
import type { CacheOptions } from './types.js'

export interface Found { envelope: Envelope, tier: CacheTier }

/** What a lookup learnt: a fresh entry, or the best stale one, and the versions read on the way. */
export interface Lookup {
  fresh?: Found | undefined
  stale?: Found | undefined
  /** Version key → version, when Redis answered; a write after a load records these. */
  versions?: Map<string, string> | undefined
}

// Entries produced while Redis could not tell us the versions: kept in memory, never written to Redis.
const UNKNOWN_VERSION = '?'

export class CacheEngine {
  readonly instanceId = randomUUID()
  readonly layout: KeyLayout
  readonly memory: MemoryTier | undefined
  readonly redis: RedisTier | undefined
  readonly counters: CacheCounters
  readonly #bus: InvalidationBus | undefined
  readonly #channel: string
  readonly #logger: CacheOptions['logger']
  // A lookup or load that started before an invalidation must not put what it read into memory: it
  // may be the very value invalidated. Broad invalidations (tags, namespace, flush) bump one counter;
  // a key invalidation is remembered per key, so writes elsewhere do not stop every memory fill.
  #invalidations = 0
  #lastBroadInvalidation = 0
  readonly #keyInvalidations = new Map<string, number>()

  constructor (options: CacheOptions) {
    this.layout = keyLayout(options.prefix ?? 'cache:')
    this.memory = options.memory === false ? undefined : new MemoryTier(options.memory)
    this.counters = new CacheCounters(options.onEvent)
    this.#logger = options.logger
    const client = options.redis
    this.#channel = options.channel ?? `${client?.options.keyPrefix ?? ''}cache:invalidate`
    if (client !== undefined) {
      this.redis = new RedisTier({
        client,
        logger: options.logger,
        isRedisReady: options.isRedisReady,
        operationTimeoutMs: options.operationTimeout === undefined
          ? defaultOperationTimeout(client)
          : parseDuration(options.operationTimeout, 'operationTimeout'),
        retryAfterMs: parseDuration(options.retryAfter ?? 1_000, 'retryAfter'),
        onFailure: (operation) => this.counters.record({ type: 'redis-failure', operation })
      })
    }
    if (options.subscriber !== undefined && this.memory !== undefined) {
      this.#bus = new InvalidationBus({
        subscriber: options.subscriber,
        channel: this.#channel,
        instanceId: this.instanceId,
        logger: options.logger,
        onInvalidation: (invalidation) => this.#applyRemote(invalidation),
        onResubscribed: () => this.onReconnect()
      })
    }
  }

  /** A point in the invalidation history, to compare with canFill() once a read or load is done. */
  get invalidations (): number {
    return this.#invalidations
  }

  /** True when the key was invalidated (alone or broadly) after that point of the history. */
  invalidatedSince (fullKey: string, invalidationsBefore: number): boolean {
    return !this.#canFill(fullKey, invalidationsBefore)
  }

  #canFill (fullKey: string, invalidationsBefore: number): boolean {
    return this.#lastBroadInvalidation <= invalidationsBefore && (this.#keyInvalidations.get(fullKey) ?? 0) <= invalidationsBefore
  }

  #noteKeyInvalidation (fullKey: string): void {
    this.#keyInvalidations.delete(fullKey)
    this.#keyInvalidations.set(fullKey, ++this.#invalidations)
    // Bounded: the oldest notes are far older than any read still in flight.
    if (this.#keyInvalidations.size > 10_000) {
      const oldest = this.#keyInvalidations.keys().next().value
      if (oldest !== undefined) this.#keyInvalidations.delete(oldest)
    }
  }

  versionKeys (namespace: string, tags: readonly string[]): string[] {
    return [this.layout.generation(namespace), ...tags.map(this.layout.tag)]
  }

  /** Memory first: a fresh hit there answers without touching Redis (and without re-validating). */
  lookupMemory (namespace: string, fullKey: string, r: ResolvedOptions): Lookup {
    if (this.memory === undefined || !r.memory) return {}
    const envelope = this.memory.get(fullKey)
    // A different schema than the one the value was checked with: check it against this one.
    if (envelope !== undefined && r.schema !== undefined && envelope.schemaHash !== r.schema.hash &&
      checkSchema(envelope, r.schema) !== 'ok') {
      this.memory.delete(fullKey)
    } else if (envelope !== undefined && isFresh(envelope)) {
      this.counters.record({ type: 'hit', namespace, tier: 'memory' })
      return { fresh: { envelope, tier: 'memory' } }
    } else if (envelope !== undefined && isUsable(envelope)) {
      this.counters.record({ type: 'miss', namespace, tier: 'memory' })
      return { stale: { envelope, tier: 'memory' } }
    }
    this.counters.record({ type: 'miss', namespace, tier: 'memory' })
    return {}
  }

  /** Redis next; `count` is false for the polls of a caller waiting on another instance's lock. */
  async lookupRedis (namespace: string, fullKey: string, r: ResolvedOptions, count = true): Promise<Lookup> {
    const [lookup] = await this.lookupRedisMany(namespace, [fullKey], r, count)
    return lookup ?? {}
  }

  async lookupRedisMany (namespace: string, fullKeys: readonly string[], r: ResolvedOptions, count = true): Promise<Lookup[]> {
    if (this.redis === undefined || !r.redis || !this.redis.usable()) return fullKeys.map(() => ({}))
    const invalidationsBefore = this.#invalidations
    const versionKeys = this.versionKeys(namespace, r.tags)
    const read = fullKeys.length === 1 && fullKeys[0] !== undefined
      ? await this.redis.read(fullKeys[0], versionKeys).then((one) => one && { raws: [one.raw], versions: one.versions })
      : await this.redis.readMany(fullKeys, versionKeys)
    if (read === undefined) return fullKeys.map(() => ({}))
    const { versions } = read
    const envelopes = read.raws.map((raw) => raw === null ? undefined : decodeEnvelope(raw))
    // Entries may carry tags the caller did not declare: read those versions too, once for all.
    const versionOf = (key: string): string | undefined => versions.get(key)
    const unread = new Set(envelopes.flatMap((e) => e === undefined ? [] : unreadTags(e, this.layout.tag, versionOf)))
    if (unread.size > 0) {
      const extra = await this.redis.readVersions([...unread].map(this.layout.tag))
      if (extra === undefined) return fullKeys.map(() => ({ versions }))
      for (const [key, version] of extra) versions.set(key, version)
    }
    const generationKey = this.layout.generation(namespace)
    return fullKeys.map((fullKey, i) => {
      const envelope = envelopes[i]
      const judged = envelope !== undefined && versionsMatch(envelope, generationKey, this.layout.tag, versionOf)
        ? this.#judgeSchema(fullKey, envelope, r)
        : undefined
      if (count) this.counters.record({ type: judged !== undefined && isFresh(judged) ? 'hit' : 'miss', namespace, tier: 'redis' })
      if (judged === undefined || !isUsable(judged)) return { versions }
      const found: Found = { envelope: judged, tier: 'redis' }
      if (!isFresh(judged)) return { stale: found, versions }
      if (this.memory !== undefined && r.memory && this.#canFill(fullKey, invalidationsBefore)) {
        this.memory.set(fullKey, namespace, judged, read.raws[i]?.length ?? 1)
      }
      return { fresh: found, versions }
    })
  }

  /** Writes a value to both tiers and tells the other instances to drop their copy. */
  async write (namespace: string, fullKey: string, value: unknown, r: ResolvedOptions,
    knownVersions: Map<string, string> | undefined, invalidationsBefore: number): Promise<Envelope> {
    const versionKeys = this.versionKeys(namespace, r.tags)
    let versions = knownVersions
    if (this.redis !== undefined && r.redis && versionKeys.some((key) => versions?.get(key) === undefined)) {
      versions = await this.redis.readVersions(versionKeys)
    }
    const now = Date.now()
    const versionOf = (key: string): string => versions?.get(key) ?? UNKNOWN_VERSION
    const envelope: Envelope = {
      format: 1,
      value,
      createdAt: now,
      expiresAt: now + r.ttl,
      staleUntil: now + r.ttl + r.grace,
      generation: versionOf(this.layout.generation(namespace)),
      tags: Object.fromEntries(r.tags.map((tag) => [tag, versionOf(this.layout.tag(tag))])),
      ...(r.schema === undefined ? {} : { schemaHash: r.schema.hash })
    }
    const json = encodeEnvelope(envelope)
    if (this.memory !== undefined && r.memory && this.#canFill(fullKey, invalidationsBefore)) {
      this.memory.set(fullKey, namespace, envelope, json.length)
    }
    if (this.redis !== undefined && r.redis && versions !== undefined) {
      await this.redis.write(fullKey, json, r.ttl + r.grace)
      await this.#publish({ kind: 'keys', keys: [fullKey] })
    }
    return envelope
  }

  async delete (fullKeys: string[]): Promise<void> {
    for (const key of fullKeys) this.memory?.delete(key)
    if (this.redis === undefined) return
    await this.redis.delete(fullKeys)
    await this.#publish({ kind: 'keys', keys: fullKeys })
  }

  async invalidateTags (tags: string[]): Promise<void> {
    this.#apply({ kind: 'tags', tags })
    if (this.redis === undefined) return
    await this.redis.bump(tags.map(this.layout.tag))
    await this.#publish({ kind: 'tags', tags })
  }

  async clear (namespace: string): Promise<void> {
    this.#apply({ kind: 'namespace', namespace })
    if (this.redis === undefined) return
    await this.redis.bump([this.layout.generation(namespace)])
    await this.#publish({ kind: 'namespace', namespace })
  }

  onReconnect (): void {
    this.#lastBroadInvalidation = ++this.#invalidations
    this.memory?.clear()
    this.#logger?.debug({}, 'cache: memory tier flushed after a reconnect (invalidations may have been missed)')
  }

  stats (): CacheStats {
    return this.counters.snapshot(this.memory === undefined ? undefined : { entries: this.memory.entries, bytes: this.memory.bytes })
  }

  ready (): Promise<void> {
    return this.#bus?.ready() ?? Promise.resolve()
  }

  async close (): Promise<void> {
    await this.#bus?.close()
    this.redis?.close()
    this.memory?.clear()
  }

  #judgeSchema (fullKey: string, envelope: Envelope, r: ResolvedOptions): Envelope | undefined {
    const verdict = checkSchema(envelope, r.schema)
    if (verdict === 'ok') return envelope
    // A value that no longer fits its schema is useless to every reader: drop it everywhere.
    this.#logger?.debug({ key: fullKey, verdict }, 'cache: entry does not match its schema; treated as a miss')
    this.memory?.delete(fullKey)
    this.redis?.delete([fullKey]).catch(() => undefined)
    return undefined
  }

  #apply (invalidation: Invalidation): number {
    if (invalidation.kind === 'keys') {
      for (const key of invalidation.keys) this.#noteKeyInvalidation(key)
    } else {
      this.#lastBroadInvalidation = ++this.#invalidations
    }
    const memory = this.memory
    if (memory === undefined) return 0
    switch (invalidation.kind) {
      case 'keys': for (const key of invalidation.keys) memory.delete(key); return invalidation.keys.length
      case 'tags': return memory.deleteTags(invalidation.tags)
      case 'namespace': return memory.deleteNamespace(invalidation.namespace)
    }
  }

  #applyRemote (invalidation: Invalidation): void {
    const evicted = this.#apply(invalidation)
    this.counters.record({ type: 'invalidation-received', kind: invalidation.kind, evicted })
  }

  async #publish (invalidation: Invalidation): Promise<void> {
    // Published even without a local memory tier: other instances may well have one.
    await this.redis?.publish(this.#channel, InvalidationBus.encode(this.instanceId, invalidation))
  }
}

function defaultOperationTimeout (client: RedisClient): number {
  const commandTimeout = client.isCluster
    ? (client.options as { redisOptions?: { commandTimeout?: number } }).redisOptions?.commandTimeout
    : (client.options as { commandTimeout?: number }).commandTimeout
  return commandTimeout === undefined ? 1_000 : commandTimeout + 250
}
