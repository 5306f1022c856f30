// The Redis tier: every command the cache sends, unable to throw. Each command is bounded by the
// client's own commandTimeout (the suite sets it; see RedisTier's constructor for a client without
// one), with no timer of ours per command. A failure comes back as `undefined` (a miss, a lock not
// taken, a write skipped) and is logged once per outage, not once per command; after a connection-level
// failure Redis is skipped for `retryAfterMs` (a circuit breaker, as bentocache's remote cache has).
//
// A hit is one GET: namespace generations and tag versions live in process (versions.ts). Version keys
// that are not known yet are read with MGET in the same tick as the GET (one round trip on a
// standalone server; on Cluster each version key is its own GET to its own node, since ioredis neither
// splits a cross-slot MGET nor pipelines across slots). Each version key has its own hash tag, so
// tags spread over shards.
import type { Cluster, Redis } from 'ioredis'
import { releaseLock, tryLock } from '../locks/index.js'

export type RedisClient = Redis | Cluster

export interface CacheLogger {
  warn: (obj: object, msg?: string) => void
  debug: (obj: object, msg?: string) => void
}

export interface RedisTierOptions {
  client: RedisClient
  logger?: CacheLogger | undefined
  isRedisReady?: (() => boolean) | undefined
  /** After a connection failure or timeout, skip Redis this long instead of waiting on it again. */
  retryAfterMs: number
  onFailure?: ((operation: string) => void) | undefined
}

export class RedisTier {
  readonly #client: RedisClient
  readonly #options: RedisTierOptions
  #skipUntil = 0
  #failing = false
  #failures = 0
  #closed = false

  constructor (options: RedisTierOptions) {
    this.#client = options.client
    this.#options = options
  }

  get isCluster (): boolean {
    return this.#client.isCluster
  }

  /** False while Redis is known to be down: callers then go straight to memory and loaders. */
  usable (): boolean {
    if (this.#closed || Date.now() < this.#skipUntil) return false
    return this.#options.isRedisReady?.() ?? true
  }

  close (): void {
    this.#closed = true
  }

  /**
   * GET one entry: null when absent, undefined when Redis could not answer. The GETs asked for in one
   * event-loop turn leave as one MGET, sent from setImmediate (one socket write instead of one per GET,
   * the cost that dominated the profile of hits over HTTP), as ioredis's auto-pipelining batches; the
   * suite's client does not enable it. A turn is what counts: each HTTP request is parsed in a callback
   * of its own, so a batch per tick (process.nextTick) held one request's GET and wrote once per
   * request. Still one command, and one round trip, per hit when alone. On Cluster, where an MGET must
   * stay in one slot, each key is its own GET.
   */
  get (entryKey: string): Promise<string | null | undefined> {
    if (!this.usable()) return Promise.resolve(undefined)
    if (this.isCluster) return this.#client.get(entryKey).then(this.#ok, this.#readFailed)
    return new Promise((resolve) => {
      if (this.#batch === undefined) {
        this.#batch = { keys: [], resolves: [] }
        setImmediate(this.#flush)
      }
      this.#batch.keys.push(entryKey)
      this.#batch.resolves.push(resolve)
    })
  }

  #batch: { keys: string[], resolves: Array<(raw: string | null | undefined) => void> } | undefined

  readonly #flush = (): void => {
    const batch = this.#batch
    this.#batch = undefined
    if (batch === undefined) return
    const { keys, resolves } = batch
    const first = keys[0]
    if (keys.length === 1 && first !== undefined) {
      const resolve = resolves[0]!
      this.#client.get(first).then((raw) => { resolve(this.#ok(raw)) }, (err: unknown) => { resolve(this.#readFailed(err)) })
      return
    }
    this.#client.mget(...keys).then((raws) => {
      if (this.#failing) this.#recovered()
      for (let i = 0; i < resolves.length; i++) resolves[i]?.(raws[i] ?? null)
    }, (err: unknown) => {
      this.#failed('read', err as Error)
      for (const resolve of resolves) resolve(undefined)
    })
  }

  /** GET the entry and MGET version keys not known yet, in the same tick. */
  async read (entryKey: string, versionKeys: readonly string[]): Promise<{ raw: string | null, versions: Array<string | null> } | undefined> {
    return this.#run('read', async () => {
      const [raw, versions] = await Promise.all([this.#client.get(entryKey), this.#mget(versionKeys)])
      return { raw, versions }
    })
  }

  async readMany (entryKeys: readonly string[], versionKeys: readonly string[]): Promise<{ raws: Array<string | null>, versions: Array<string | null> } | undefined> {
    return this.#run('read', async () => {
      const [raws, versions] = await Promise.all([this.#mget(entryKeys), this.#mget(versionKeys)])
      return { raws, versions }
    })
  }

  async readVersions (versionKeys: readonly string[]): Promise<Array<string | null> | undefined> {
    if (versionKeys.length === 0) return []
    return this.#run('read', () => this.#mget(versionKeys))
  }

  async write (entryKey: string, json: string, ttlMs: number): Promise<boolean> {
    return await this.#run('write', async () => (await this.#client.set(entryKey, json, 'PX', Math.max(1, ttlMs))) === 'OK') ?? false
  }

  async delete (keys: readonly string[]): Promise<boolean> {
    if (keys.length === 0) return true
    return await this.#run('delete', async () => {
      await (this.isCluster ? Promise.all(keys.map((k) => this.#client.del(k))) : this.#client.del(...keys))
      return true
    }) ?? false
  }

  /** INCR each version key: entries written with the old versions stop matching. The new versions. */
  async bump (versionKeys: readonly string[]): Promise<string[] | undefined> {
    return await this.#run('invalidate', async () => {
      const versions = await Promise.all(versionKeys.map((k) => this.#client.incr(k)))
      return versions.map(String)
    })
  }

  /** SET NX PX: 'acquired', 'taken' by another instance, or undefined when Redis cannot say. */
  async acquireLock (lockKey: string, token: string, ttlMs: number): Promise<'acquired' | 'taken' | undefined> {
    return this.#run('lock', async () => await tryLock(this.#client, lockKey, token, ttlMs) ? 'acquired' : 'taken')
  }

  /**
   * The lock is taken: when this instance's own token holds it, no flight of ours is running it (the
   * in-process flight would have been joined), so it is a lock whose release failed during an outage.
   * Take it over instead of waiting `lockWait` for a value nobody will write. Another instance's lock
   * is left alone.
   */
  async reclaimOwnLock (lockKey: string, ownPrefix: string, token: string, ttlMs: number): Promise<'acquired' | 'taken' | undefined> {
    return await this.#run('lock', async () => {
      const holder = await this.#client.get(lockKey)
      if (holder !== null && !holder.startsWith(ownPrefix)) return 'taken'
      if (holder !== null) await releaseLock(this.#client, lockKey, holder)
      return await tryLock(this.#client, lockKey, token, ttlMs) ? 'acquired' : 'taken'
    })
  }

  /** Compare-and-delete (lib/locks/store.ts): never deletes a lock another instance took after ours expired. */
  async releaseLock (lockKey: string, token: string): Promise<void> {
    await this.#run('unlock', () => releaseLock(this.#client, lockKey, token))
  }

  async publish (channel: string, message: string): Promise<void> {
    await this.#run('publish', () => this.#client.publish(channel, message))
  }

  async #mget (keys: readonly string[]): Promise<Array<string | null>> {
    if (keys.length === 0) return []
    // A Cluster MGET across slots fails with CROSSSLOT; parallel GETs reach each slot's node.
    return this.isCluster ? Promise.all(keys.map((k) => this.#client.get(k))) : this.#client.mget(...keys)
  }

  async #run<T> (operation: string, command: () => Promise<T>): Promise<T | undefined> {
    if (!this.usable()) return undefined
    try {
      const result = await command()
      if (this.#failing) this.#recovered()
      return result
    } catch (err) {
      this.#failed(operation, err as Error)
      return undefined
    }
  }

  // Bound once: the hit path allocates no closure per call.
  readonly #ok = <T>(value: T): T => {
    if (this.#failing) this.#recovered()
    return value
  }

  readonly #readFailed = (err: unknown): undefined => {
    this.#failed('read', err as Error)
    return undefined
  }

  #failed (operation: string, err: Error): void {
    this.#failures++
    this.#options.onFailure?.(operation)
    // A reply error (WRONGTYPE, OOM, NOSCRIPT…) is about one command; anything else (connection
    // closed, timeout, writable stream gone) says the server is unreachable, so stop waiting on it.
    const connectionLevel = err.name !== 'ReplyError'
    if (connectionLevel) this.#skipUntil = Date.now() + this.#options.retryAfterMs
    if (!this.#failing) {
      this.#failing = true
      this.#options.logger?.warn({ operation, err: { message: err.message, name: err.name } },
        'cache: Redis operation failed; serving from memory and loaders until it answers again (further failures are not logged)')
    }
  }

  #recovered (): void {
    if (!this.#failing) return
    this.#options.logger?.warn({ failedOperations: this.#failures }, 'cache: Redis answers again')
    this.#failing = false
    this.#failures = 0
  }
}
