// The Redis tier: every command the cache sends, each one bounded in time and unable to throw.
// A failure comes back as `undefined` (a miss, a lock not taken, a write skipped) and is logged once
// per outage, not once per command.
//
// Tags and namespace generations on Cluster. A tag spans entries in every slot, so no single Lua script
// can read an entry and its tag versions on Cluster (a script may only touch keys of one slot). Rather
// than pin every entry to one slot (a hot shard) or read the tags after the entry (two round trips),
// a read sends GET entry and the reads of the version keys it expects (the namespace generation plus
// the tags the caller declares) in the same tick: on a standalone server they share the socket and
// one round trip (GET + MGET); on Cluster each goes to its own node in parallel, one GET per version
// key, since ioredis neither splits a cross-slot MGET nor pipelines across slots. The reads are not
// atomic, which is fine: a version bump that lands between them is indistinguishable from one that
// landed just after the read. Only an entry carrying tags the caller did not declare costs a second
// round trip for those versions. Each version key has its own hash tag, so tags spread over shards.
import type { Cluster, Redis } from 'ioredis'
import { releaseLock, tryLock } from '../lock-store.js'

export type RedisClient = Redis | Cluster

export interface CacheLogger {
  warn: (obj: object, msg?: string) => void
  debug: (obj: object, msg?: string) => void
}

export interface RedisTierOptions {
  client: RedisClient
  logger?: CacheLogger | undefined
  isRedisReady?: (() => boolean) | undefined
  /** Upper bound on any one operation, in case the client has no commandTimeout. */
  operationTimeoutMs: number
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

  /** GET the entry and read the versions it will be judged against, in one round trip. */
  async read (entryKey: string, versionKeys: readonly string[]): Promise<{ raw: string | null, versions: Map<string, string> } | undefined> {
    return this.#run('read', async () => {
      const [raw, versions] = await Promise.all([this.#client.get(entryKey), this.#mget(versionKeys)])
      return { raw, versions: toVersionMap(versionKeys, versions) }
    })
  }

  async readMany (entryKeys: readonly string[], versionKeys: readonly string[]): Promise<{ raws: Array<string | null>, versions: Map<string, string> } | undefined> {
    return this.#run('read', async () => {
      const [raws, versions] = await Promise.all([this.#mget(entryKeys), this.#mget(versionKeys)])
      return { raws, versions: toVersionMap(versionKeys, versions) }
    })
  }

  async readVersions (versionKeys: readonly string[]): Promise<Map<string, string> | undefined> {
    if (versionKeys.length === 0) return new Map()
    return this.#run('read', async () => toVersionMap(versionKeys, await this.#mget(versionKeys)))
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

  /** INCR each version key: entries written with the old versions stop matching. */
  async bump (versionKeys: readonly string[]): Promise<boolean> {
    return await this.#run('invalidate', async () => {
      await Promise.all(versionKeys.map((k) => this.#client.incr(k)))
      return true
    }) ?? false
  }

  /** SET NX PX: 'acquired', 'taken' by another instance, or undefined when Redis cannot say. */
  async acquireLock (lockKey: string, token: string, ttlMs: number): Promise<'acquired' | 'taken' | undefined> {
    return this.#run('lock', async () => await tryLock(this.#client, lockKey, token, ttlMs) ? 'acquired' : 'taken')
  }

  /** Compare-and-delete (lib/lock-store.ts): never deletes a lock another instance took after ours expired. */
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
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`cache ${operation} did not finish within ${this.#options.operationTimeoutMs} ms`)),
        this.#options.operationTimeoutMs)
      timer.unref()
    })
    try {
      const result = await Promise.race([command(), deadline])
      this.#recovered()
      return result
    } catch (err) {
      this.#failed(operation, err as Error)
      return undefined
    } finally {
      clearTimeout(timer)
    }
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

function toVersionMap (keys: readonly string[], values: ReadonlyArray<string | null>): Map<string, string> {
  // A version key that does not exist yet is version '0': nothing was ever invalidated.
  return new Map(keys.map((key, i) => [key, values[i] ?? '0']))
}
