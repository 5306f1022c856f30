// The engine shared by every namespace of one cache: the two tiers, the invalidation bus, the
// in-process versions and the counters, with lookups and writes that judge entries (expiry, versions,
// schema) in one place.
//
// Staleness bound. An invalidation (write, delete, invalidateTags, clear) made on one instance is seen
// by every other instance within the pub/sub latency (a few ms). If its message is lost, it is still
// seen within `syncInterval` (default 1 s) plus one command: generations and tag versions are re-read
// every syncInterval (a change applies the invalidation locally), and a memory entry is served at most
// syncInterval before Redis is asked again. After a reconnect the memory tier and the versions are
// dropped, since messages may have been missed while the connection was down.
import { randomUUID } from 'node:crypto'
import { compress, decompress, isCompressed } from '../codecs/index.js'
import { parseDuration } from '../config/index.js'
import { boundCommands, commandTimeoutOf } from '../redis/index.js'
import {
  checkSchema, decodeEnvelope, deepFreeze, encodeEnvelope, unreadTags, versionsMatch, type Envelope
} from './entry.js'
import { InvalidationBus, type Invalidation } from './invalidation-bus.js'
import { keyLayout, type KeyLayout } from './keys.js'
import { MemoryTier } from './memory-tier.js'
import type { ResolvedOptions } from './options.js'
import { RedisTier } from './redis-tier.js'
import { CacheCounters, type CacheStats, type CacheTier } from './stats.js'
import type { CacheOptions } from './types.js'
import { VersionTable } from './versions.js'

export interface Found { envelope: Envelope, tier: CacheTier }

/** What a lookup learnt: a fresh entry, or the best stale one, and the versions read on the way. */
export interface Lookup {
  fresh?: Found | undefined
  stale?: Found | undefined
  /** A memory entry due for a look at Redis: served only when Redis cannot answer. */
  recheck?: Found | undefined
  /** Version key → version the entry was judged with; a write after a load stamps these. */
  versions?: Map<string, string | undefined> | undefined
  /** Redis could not answer (down, skipped, or the namespace does not use it). */
  unavailable?: boolean
}

const UNAVAILABLE: Lookup = Object.freeze({ unavailable: true })
const NOTHING: Lookup = Object.freeze({})
const EMPTY: readonly string[] = Object.freeze([])
// Entries produced while Redis could not tell us the versions: kept in memory, never written to Redis.
const UNKNOWN_VERSION = '?'
const SWEEP_CHUNK = 1_000

export class CacheEngine {
  readonly instanceId = randomUUID()
  readonly layout: KeyLayout
  readonly memory: MemoryTier | undefined
  readonly redis: RedisTier | undefined
  readonly counters: CacheCounters
  readonly versions = new VersionTable()
  readonly #bus: InvalidationBus | undefined
  readonly #channel: string
  readonly #logger: CacheOptions['logger']
  readonly #syncMs: number
  readonly #freeze: boolean
  readonly #sweepTimer: NodeJS.Timeout | undefined
  readonly #generationKeys = new Map<string, readonly string[]>()
  readonly #tagPrefix: string
  readonly #generationPrefix: string
  #sweeping = false
  #decompressionLogged = false
  // Bound once: judging an entry allocates no closure.
  readonly #versionOf = (key: string): string | undefined => this.versions.get(key)
  // A lookup or load that started before an invalidation must not put what it read into memory: it
  // may be the very value invalidated. Broad invalidations (tags, namespace, flush) bump one counter;
  // a key invalidation is remembered per key, so writes elsewhere do not stop every memory fill.
  #invalidations = 0
  #lastBroadInvalidation = 0
  readonly #keyInvalidations = new Map<string, number>()

  constructor (options: CacheOptions) {
    const prefix = options.prefix ?? 'cache:'
    this.layout = keyLayout(prefix)
    this.#tagPrefix = this.layout.tag('').slice(0, -2)
    this.#generationPrefix = this.layout.generation('').slice(0, -2)
    this.memory = options.memory === false ? undefined : new MemoryTier(options.memory)
    this.counters = new CacheCounters(options.onEvent)
    this.#logger = options.logger
    this.#syncMs = parseDuration(options.syncInterval ?? 1_000, 'syncInterval')
    // Deep-freezing costs ~300 bytes of heap per entry (bench case 9) and a walk per fill: a guard
    // for development and tests, where a caller mutating a shared value should fail loudly.
    this.#freeze = options.freeze ?? !['production', 'staging'].includes(process.env['NODE_ENV'] ?? '')
    // The cache's commands are bounded whatever the client's settings (an app's own client may have none).
    const client = options.redis === undefined
      ? undefined
      : boundCommands(options.redis, parseDuration(options.commandTimeout ?? commandTimeoutOf(options.redis) ?? 1_000, 'commandTimeout'))
    this.#channel = options.channel ?? `${client?.options.keyPrefix ?? ''}cache:invalidate`
    if (client !== undefined) {
      this.redis = new RedisTier({
        client,
        logger: options.logger,
        isRedisReady: options.isRedisReady,
        retryAfterMs: parseDuration(options.retryAfter ?? 1_000, 'retryAfter'),
        onFailure: (operation) => this.counters.record({ type: 'redis-failure', operation })
      })
      if (this.#syncMs > 0) {
        this.#sweepTimer = setInterval(() => { this.#sweep().catch(() => undefined) }, this.#syncMs)
        this.#sweepTimer.unref()
      }
    }
    // Even without a memory tier: a message makes the in-process versions it names be read again.
    if (options.subscriber !== undefined && client !== undefined) {
      this.#bus = new InvalidationBus({
        subscriber: options.subscriber,
        channel: this.#channel,
        instanceId: this.instanceId,
        logger: options.logger,
        onInvalidation: (invalidation) => this.#applyRemote(invalidation),
        onDropped: () => this.counters.record({ type: 'invalidation-dropped' }),
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

  /** The generation key of the namespace, then the tag keys: what an entry is judged against. */
  versionKeys (namespace: string, tags: readonly string[]): readonly string[] {
    let generation = this.#generationKeys.get(namespace)
    if (generation === undefined) {
      generation = Object.freeze([this.layout.generation(namespace)])
      this.#generationKeys.set(namespace, generation)
    }
    return tags.length === 0 ? generation : [...generation, ...tags.map(this.layout.tag)]
  }

  /**
   * The fast path of a memory hit: a fresh entry checked recently enough, validated against this
   * schema when it entered the tier. No copy, no parse, no allocation; the value is frozen.
   */
  memoryHit (namespace: string, fullKey: string, r: ResolvedOptions): Envelope | undefined {
    if (this.memory === undefined || !r.memory) return undefined
    const now = Date.now()
    const record = this.memory.get(fullKey, now)
    if (record === undefined) return undefined
    const envelope = record.envelope
    if (now >= envelope.expiresAt || (r.schema !== undefined && envelope.schemaHash !== r.schema.hash) ||
      (now >= record.checkBy && this.#redisUsable(r))) return undefined
    this.counters.count('hit', namespace, 'memory')
    return envelope
  }

  /** The memory tier in full: a fresh hit, a stale entry within grace, or one due for a look at Redis. */
  lookupMemory (namespace: string, fullKey: string, r: ResolvedOptions): Lookup {
    if (this.memory === undefined || !r.memory) return NOTHING
    const now = Date.now()
    const record = this.memory.get(fullKey, now)
    if (record === undefined) {
      this.counters.count('miss', namespace, 'memory')
      return NOTHING
    }
    const envelope = record.envelope
    // A different schema than the one the value was checked with: check it against this one.
    if (r.schema !== undefined && envelope.schemaHash !== r.schema.hash && checkSchema(envelope, r.schema) !== 'ok') {
      this.memory.delete(fullKey)
      this.counters.count('miss', namespace, 'memory')
      return NOTHING
    }
    const found: Found = { envelope, tier: 'memory' }
    if (now < envelope.expiresAt) {
      if (now < record.checkBy || !this.#redisUsable(r)) {
        this.counters.count('hit', namespace, 'memory')
        return { fresh: found }
      }
      this.counters.count('miss', namespace, 'memory')
      return { recheck: found }
    }
    this.counters.count('miss', namespace, 'memory')
    return { stale: found }
  }

  /**
   * Redis next: one GET when the versions are known. `count` is false for the polls of a lock waiter.
   * Not async: a hit is the GET's promise and one callback, with no async function's promise and resume.
   */
  lookupRedis (namespace: string, fullKey: string, r: ResolvedOptions, count = true): Promise<Lookup> {
    const redis = this.redis
    if (redis === undefined || !r.redis || !redis.usable()) return Promise.resolve(UNAVAILABLE)
    const invalidationsBefore = this.#invalidations
    const needed = this.versionKeys(namespace, r.tags)
    const unknown = this.#unknown(needed)
    if (unknown.length === 0) {
      return redis.get(fullKey).then((raw) => this.#lookedUp(namespace, fullKey, raw, r, needed, invalidationsBefore, count))
    }
    const since = this.versions.seq
    return redis.read(fullKey, unknown).then((read) => {
      if (read !== undefined) this.versions.fromRead(unknown, read.versions, since)
      return this.#lookedUp(namespace, fullKey, read?.raw, r, needed, invalidationsBefore, count)
    })
  }

  /** What lookupRedis makes of the text Redis answered (undefined: Redis could not answer). */
  #lookedUp (namespace: string, fullKey: string, raw: string | null | undefined, r: ResolvedOptions,
    needed: readonly string[], invalidationsBefore: number, count: boolean): Lookup | Promise<Lookup> {
    if (raw === undefined) return UNAVAILABLE
    let envelope = raw === null ? undefined : decodeEnvelope(raw)
    let size = raw?.length ?? 1
    // A compressed entry fails decodeEnvelope's first check: an uncompressed hit pays nothing here.
    if (envelope === undefined && raw !== null && isCompressed(raw)) {
      const text = this.#decompress(namespace, raw)
      envelope = text === undefined ? undefined : decodeEnvelope(text)
      size = text?.length ?? size
    }
    if (envelope !== undefined && this.#hasUnreadTags(envelope)) {
      const read = envelope
      return this.#readEntryTags([read]).then((ok) => ok ? this.#judge(namespace, fullKey, read, size, r, needed, invalidationsBefore, count) : UNAVAILABLE)
    }
    return this.#judge(namespace, fullKey, envelope, size, r, needed, invalidationsBefore, count)
  }

  async lookupRedisMany (namespace: string, fullKeys: readonly string[], r: ResolvedOptions, count = true): Promise<Lookup[]> {
    const redis = this.redis
    if (redis === undefined || !r.redis || !redis.usable()) return fullKeys.map(() => UNAVAILABLE)
    const invalidationsBefore = this.#invalidations
    const needed = this.versionKeys(namespace, r.tags)
    const unknown = this.#unknown(needed)
    const since = this.versions.seq
    const read = await redis.readMany(fullKeys, unknown)
    if (read === undefined) return fullKeys.map(() => UNAVAILABLE)
    this.versions.fromRead(unknown, read.versions, since)
    const texts = read.raws.map((raw) => raw !== null && isCompressed(raw) ? this.#decompress(namespace, raw) ?? null : raw)
    const envelopes = texts.map((text) => text === null ? undefined : decodeEnvelope(text))
    if (!await this.#readEntryTags(envelopes)) return fullKeys.map(() => UNAVAILABLE)
    return fullKeys.map((fullKey, i) =>
      this.#judge(namespace, fullKey, envelopes[i], texts[i]?.length ?? 1, r, needed, invalidationsBefore, count))
  }

  /** The text of a compressed entry; undefined (a miss, counted, logged once) when it does not decompress. */
  #decompress (namespace: string, raw: string): string | undefined {
    try {
      return decompress(raw)
    } catch (err) {
      this.counters.record({ type: 'decompression-failure', namespace })
      if (!this.#decompressionLogged) {
        this.#decompressionLogged = true
        this.#logger?.warn({ namespace, err: { message: (err as Error).message } },
          'cache: a compressed entry did not decompress; read as a miss (further failures are counted in cache_decompression_failures_total, not logged)')
      }
      return undefined
    }
  }

  /** Writes a value to both tiers and tells the other instances to drop their copy. */
  async write (namespace: string, fullKey: string, value: unknown, r: ResolvedOptions,
    knownVersions: Map<string, string | undefined> | undefined, invalidationsBefore: number): Promise<Envelope> {
    const needed = this.versionKeys(namespace, r.tags)
    // Versions seen before the value was loaded: a load that raced an invalidation is stamped with the
    // old version, so it is a miss, never a stale value under the new one.
    const versionOf = (key: string): string | undefined => knownVersions?.get(key) ?? this.versions.get(key)
    const useRedis = this.redis !== undefined && r.redis
    const missing = useRedis ? needed.filter((key) => versionOf(key) === undefined) : []
    if (missing.length > 0 && this.redis !== undefined) {
      const since = this.versions.seq
      const read = await this.redis.readVersions(missing)
      if (read !== undefined) this.versions.fromRead(missing, read, since)
    }
    const now = Date.now()
    const tags: Record<string, string> = {}
    for (const tag of r.tags) tags[tag] = versionOf(this.layout.tag(tag)) ?? UNKNOWN_VERSION
    const envelope: Envelope = {
      format: 2,
      value,
      createdAt: now,
      expiresAt: now + r.ttl,
      staleUntil: now + r.ttl + r.grace,
      generation: versionOf(needed[0] ?? '') ?? UNKNOWN_VERSION,
      tags,
      schemaHash: r.schema?.hash
    }
    const valueJson = JSON.stringify(value)
    const stored = encodeEnvelope(envelope, valueJson)
    if (this.memory !== undefined && r.memory && this.#canFill(fullKey, invalidationsBefore)) {
      // The memory tier keeps its own frozen copy: the caller's object stays the caller's to change.
      this.#fill(namespace, fullKey, { ...envelope, value: JSON.parse(valueJson) }, stored.length)
    }
    const known = envelope.generation !== UNKNOWN_VERSION && Object.values(tags).every((v) => v !== UNKNOWN_VERSION)
    if (this.redis !== undefined && r.redis && known) {
      // Sent together, answered in one round trip: Redis runs them in order on the one connection,
      // so no instance hears of the new value before it is there.
      await Promise.all([this.redis.write(fullKey, compress(stored, r.compression), r.ttl + r.grace), this.#publish({ kind: 'keys', keys: [fullKey] })])
    }
    return envelope
  }

  async delete (fullKeys: string[]): Promise<void> {
    for (const key of fullKeys) this.memory?.delete(key)
    if (this.redis === undefined) return
    await Promise.all([this.redis.delete(fullKeys), this.#publish({ kind: 'keys', keys: fullKeys })])
  }

  async invalidateTags (tags: string[]): Promise<void> {
    this.#apply({ kind: 'tags', tags })
    if (this.redis === undefined) return
    const keys = tags.map(this.layout.tag)
    const versions = await this.redis.bump(keys)
    this.#learn(keys, versions)
    await this.#publish(versions === undefined ? { kind: 'tags', tags } : { kind: 'tags', tags, versions })
  }

  async clear (namespace: string): Promise<void> {
    this.#apply({ kind: 'namespace', namespace })
    if (this.redis === undefined) return
    const keys = [this.layout.generation(namespace)]
    const versions = await this.redis.bump(keys)
    this.#learn(keys, versions)
    await this.#publish(versions?.[0] === undefined ? { kind: 'namespace', namespace } : { kind: 'namespace', namespace, version: versions[0] })
  }

  onReconnect (): void {
    this.#lastBroadInvalidation = ++this.#invalidations
    this.memory?.clear()
    this.versions.clear()
    this.#logger?.debug({}, 'cache: memory tier and versions dropped after a reconnect (invalidations may have been missed)')
  }

  stats (): CacheStats {
    return this.counters.snapshot(this.memory === undefined ? undefined : { entries: this.memory.entries, bytes: this.memory.bytes })
  }

  ready (): Promise<void> {
    return this.#bus?.ready() ?? Promise.resolve()
  }

  async close (): Promise<void> {
    clearInterval(this.#sweepTimer)
    await this.#bus?.close()
    this.redis?.close()
    this.memory?.clear()
  }

  #redisUsable (r: ResolvedOptions): boolean {
    return r.redis && this.redis !== undefined && this.redis.usable()
  }

  /** The version keys not known in process; the shared empty array when all are (the usual case). */
  #unknown (keys: readonly string[]): readonly string[] {
    let unknown: string[] | undefined
    for (const key of keys) {
      if (this.versions.get(key) === undefined) (unknown ??= []).push(key)
    }
    return unknown ?? EMPTY
  }

  #hasUnreadTags (envelope: Envelope): boolean {
    for (const tag in envelope.tags) {
      if (this.versions.get(this.layout.tag(tag)) === undefined) return true
    }
    return false
  }

  /** Entries may carry tags the caller did not declare: read those versions once (then they are known). */
  async #readEntryTags (envelopes: ReadonlyArray<Envelope | undefined>): Promise<boolean> {
    const tagKey = this.layout.tag
    const unread = new Set<string>()
    for (const envelope of envelopes) {
      if (envelope === undefined) continue
      for (const tag of unreadTags(envelope, tagKey, this.#versionOf)) unread.add(tagKey(tag))
    }
    if (unread.size === 0 || this.redis === undefined) return true
    const keys = [...unread]
    const since = this.versions.seq
    const read = await this.redis.readVersions(keys)
    if (read === undefined) return false
    this.versions.fromRead(keys, read, since)
    return true
  }

  #judge (namespace: string, fullKey: string, envelope: Envelope | undefined, size: number, r: ResolvedOptions,
    needed: readonly string[], invalidationsBefore: number, count: boolean): Lookup {
    const judged = envelope !== undefined && versionsMatch(envelope, needed[0] ?? '', this.layout.tag, this.#versionOf)
      ? this.#judgeSchema(fullKey, envelope, r)
      : undefined
    const now = Date.now()
    const fresh = judged !== undefined && now < judged.expiresAt
    if (count) this.counters.count(fresh ? 'hit' : 'miss', namespace, 'redis')
    if (fresh) {
      if (this.memory !== undefined && r.memory && this.#canFill(fullKey, invalidationsBefore)) {
        this.#fill(namespace, fullKey, judged, size)
      }
      return { fresh: { envelope: judged, tier: 'redis' } }
    }
    // A miss or a stale entry: a load follows, and its write is stamped with these versions.
    const versions = new Map(needed.map((key) => [key, this.versions.get(key)]))
    if (judged === undefined || now >= judged.staleUntil) return { versions }
    return { stale: { envelope: judged, tier: 'redis' }, versions }
  }

  #fill (namespace: string, fullKey: string, envelope: Envelope, size: number): void {
    if (this.#freeze) deepFreeze(envelope.value)
    this.memory?.set(fullKey, { envelope: Object.freeze(envelope), namespace, checkBy: Date.now() + this.#syncMs }, size)
  }

  /** Versions this instance bumped to; unknown (read again when needed) when the bump failed. */
  #learn (keys: readonly string[], versions: readonly string[] | undefined): void {
    keys.forEach((key, i) => {
      const version = versions?.[i]
      if (version === undefined) this.versions.forget(key)
      else this.versions.advance(key, version)
    })
  }

  /**
   * Re-reads every known version: a change that no message announced (a lost message, an instance
   * whose publish failed) is applied here, at most syncInterval late.
   */
  async #sweep (): Promise<void> {
    if (this.#sweeping || this.redis === undefined || !this.redis.usable() || this.versions.size === 0) return
    this.#sweeping = true
    try {
      const keys = this.versions.keys()
      for (let i = 0; i < keys.length; i += SWEEP_CHUNK) {
        const chunk = keys.slice(i, i + SWEEP_CHUNK)
        const since = this.versions.seq
        const read = await this.redis.readVersions(chunk)
        if (read === undefined) return
        const changed = this.versions.fromRead(chunk, read, since)
        if (changed.length > 0) this.#applyChanged(changed)
      }
    } finally {
      this.#sweeping = false
    }
  }

  #applyChanged (keys: readonly string[]): void {
    const tags = keys.filter((key) => key.startsWith(this.#tagPrefix)).map((key) => key.slice(this.#tagPrefix.length + 1, -1))
    const namespaces = keys.filter((key) => key.startsWith(this.#generationPrefix)).map((key) => key.slice(this.#generationPrefix.length + 1, -1))
    this.#logger?.debug({ tags, namespaces }, 'cache: versions changed without a message; applied')
    if (tags.length > 0) this.#applyRemote({ kind: 'tags', tags }, false)
    for (const namespace of namespaces) this.#applyRemote({ kind: 'namespace', namespace }, false)
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

  #applyRemote (invalidation: Invalidation, fromMessage = true): void {
    // A message says what changed, not what it changed to: its versions are not trusted (see versions.ts).
    if (fromMessage && invalidation.kind === 'tags') {
      for (const tag of invalidation.tags) this.versions.forget(this.layout.tag(tag))
    } else if (fromMessage && invalidation.kind === 'namespace') {
      this.versions.forget(this.layout.generation(invalidation.namespace))
    }
    const evicted = this.#apply(invalidation)
    this.counters.record({ type: 'invalidation-received', kind: invalidation.kind, evicted })
  }

  async #publish (invalidation: Invalidation): Promise<void> {
    // Published even without a local memory tier: other instances may well have one.
    await this.redis?.publish(this.#channel, InvalidationBus.encode(this.instanceId, invalidation))
  }
}
