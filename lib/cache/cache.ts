// createCache(): the public entry point. A Cache is one namespace's view of a shared engine: it
// validates keys, applies the namespace's defaults and delegates. Redis failures never reach a caller;
// only caller bugs do (CacheKeyError, CacheValueError) and the loader's own errors.
import type { Static, TSchema } from 'typebox'
import { CacheEngine } from './engine.js'
import { CacheValueError } from '../errors/index.js'
import { ReadThrough } from './get-or-set.js'
import { assertValidKey, assertValidTags, childNamespace, ROOT_NAMESPACE } from './keys.js'
import { resolveDefaults, resolveOptions, type ResolvedDefaults } from './options.js'
import type { CacheStats } from './stats.js'
import { traceable } from './traced.js'
import type { Cache, CacheDefaults, CacheOptions, GetOptions, GetOrSetOptions, Loader, ManyLoader, SetOptions } from './types.js'

/** A cache over an optional Redis client; without one, the same API over the memory tier alone. */
export function createCache (options: CacheOptions = {}): Cache {
  const engine = new CacheEngine(options)
  const { ttl, grace, timeout, lockTtl, lockWait, compression } = options
  const tiers = { memory: engine.memory !== undefined, redis: engine.redis !== undefined }
  const defaults = resolveDefaults({ ttl, grace, timeout, lockTtl, lockWait, compression, ...tiers })
  return traceable(new CacheScope(engine, new ReadThrough(engine), ROOT_NAMESPACE, defaults))
}

type AnySchemaOptions = GetOrSetOptions<TSchema | undefined>

/** Full keys remembered per namespace (cleared when full: a flood of new keys costs a rebuild, never memory). */
const FULL_KEY_CACHE_SIZE = 10_000

class CacheScope implements Cache {
  readonly #engine: CacheEngine
  readonly #readThrough: ReadThrough
  readonly #defaults: ResolvedDefaults
  /** The entry key of '' in this namespace: a full key is this plus the key, one concatenation. */
  readonly #keyPrefix: string
  readonly #fullKeys = new Map<string, string>()
  readonly namespaceName: string

  constructor (engine: CacheEngine, readThrough: ReadThrough, namespace: string, defaults: ResolvedDefaults) {
    this.#engine = engine
    this.#readThrough = readThrough
    this.namespaceName = namespace
    this.#defaults = defaults
    this.#keyPrefix = engine.layout.entry(namespace, '')
  }

  get<S extends TSchema>(key: string, options: GetOptions<S> & { schema: S }): Promise<Static<S> | undefined>
  get<T = unknown>(key: string, options?: GetOptions): Promise<T | undefined>
  async get (key: string, options?: GetOptions<TSchema | undefined>): Promise<unknown> {
    // One key, its own path (no array, no getMany): a memory hit is a Map lookup and a clock read.
    const fullKey = this.#fullKey(key)
    const r = resolveOptions(this.#defaults, options)
    const namespace = this.namespaceName
    const hit = this.#engine.memoryHit(namespace, fullKey, r)
    if (hit !== undefined) return hit.value
    const memory = this.#engine.lookupMemory(namespace, fullKey, r)
    if (memory.fresh !== undefined) return memory.fresh.envelope.value
    const remote = await this.#engine.lookupRedis(namespace, fullKey, r)
    if (remote.fresh !== undefined) return remote.fresh.envelope.value
    // Redis could not say: a memory entry that was only due for a check is still the best answer.
    return remote.unavailable === true ? memory.recheck?.envelope.value : undefined
  }

  peek<S extends TSchema>(key: string, options: GetOptions<S> & { schema: S }): Static<S> | undefined
  peek<T = unknown>(key: string, options?: GetOptions): T | undefined
  peek (key: string, options?: GetOptions<TSchema | undefined>): unknown {
    return this.#engine.memoryHit(this.namespaceName, this.#fullKey(key), resolveOptions(this.#defaults, options))?.value
  }

  getMany<S extends TSchema>(keys: readonly string[], options: GetOptions<S> & { schema: S }): Promise<Array<Static<S> | undefined>>
  getMany<T = unknown>(keys: readonly string[], options?: GetOptions): Promise<Array<T | undefined>>
  async getMany (keys: readonly string[], options?: GetOptions<TSchema | undefined>): Promise<unknown[]> {
    const fullKeys = keys.map((key) => this.#fullKey(key))
    const r = resolveOptions(this.#defaults, options)
    const namespace = this.namespaceName
    const memory = fullKeys.map((fullKey) => this.#engine.lookupMemory(namespace, fullKey, r))
    const found = memory.map((lookup) => lookup.fresh)
    const notInMemory = fullKeys.flatMap((fullKey, i) => found[i] === undefined ? [i] : [])
    if (notInMemory.length > 0) {
      const remote = await this.#engine.lookupRedisMany(namespace, notInMemory.map((i) => fullKeys[i] ?? ''), r)
      notInMemory.forEach((index, j) => {
        const lookup = remote[j]
        found[index] = lookup?.fresh ?? (lookup?.unavailable === true ? memory[index]?.recheck : undefined)
      })
    }
    return found.map((f) => f?.envelope.value)
  }

  set<S extends TSchema>(key: string, value: Static<S>, options: SetOptions<S> & { schema: S }): Promise<void>
  set (key: string, value: unknown, options?: SetOptions): Promise<void>
  async set (key: string, value: unknown, options?: SetOptions<TSchema | undefined>): Promise<void> {
    const fullKey = this.#fullKey(key)
    const r = resolveOptions(this.#defaults, options)
    if (value === undefined) throw new CacheValueError(`Cannot cache undefined under ${JSON.stringify(key)}; delete the key instead`, key, [])
    if (r.schema !== undefined && !r.schema.check(value)) {
      const errors = r.schema.errors(value)
      throw new CacheValueError(`The value for cache key ${JSON.stringify(key)} does not match its schema: ${errors.join('; ')}`, key, errors)
    }
    await this.#engine.write(this.namespaceName, fullKey, value, r, undefined, this.#engine.invalidations)
  }

  getOrSet<S extends TSchema>(key: string, loader: Loader<Static<S>>, options: GetOrSetOptions<S> & { schema: S }): Promise<Static<S>>
  getOrSet<T>(key: string, loader: Loader<T>, options?: GetOrSetOptions): Promise<T>
  getOrSet (key: string, loader: Loader<unknown>, options?: AnySchemaOptions): Promise<unknown> {
    // Not async: an async function returning ReadThrough's promise would adopt it, two more
    // microtask turns per call. A bad key or option still rejects rather than throws.
    try {
      const fullKey = this.#fullKey(key)
      const r = resolveOptions(this.#defaults, options)
      return this.#readThrough.getOrSet(this.namespaceName, key, fullKey, r, loader)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  getOrSetMany<S extends TSchema>(keys: readonly string[], loader: ManyLoader<Static<S>>, options: GetOrSetOptions<S> & { schema: S }): Promise<Array<Static<S> | undefined>>
  getOrSetMany<T>(keys: readonly string[], loader: ManyLoader<T>, options?: GetOrSetOptions): Promise<Array<T | undefined>>
  async getOrSetMany (keys: readonly string[], loader: ManyLoader<unknown>, options?: AnySchemaOptions): Promise<unknown[]> {
    // Duplicates are looked up and loaded once, then fanned back out in the caller's order.
    const unique = [...new Set(keys)]
    const fullKeys = unique.map((key) => this.#fullKey(key))
    const r = resolveOptions(this.#defaults, options)
    const values = await this.#readThrough.getOrSetMany(this.namespaceName, unique, fullKeys, r, loader)
    const byKey = new Map(unique.map((key, i) => [key, values[i]]))
    return keys.map((key) => byKey.get(key))
  }

  async has (key: string, options?: GetOptions<TSchema | undefined>): Promise<boolean> {
    return (await this.get(key, options as GetOptions)) !== undefined
  }

  async delete (key: string): Promise<void> {
    await this.#engine.delete([this.#fullKey(key)])
  }

  async invalidateTags (tags: readonly string[]): Promise<void> {
    assertValidTags(tags)
    if (tags.length > 0) await this.#engine.invalidateTags([...new Set(tags)])
  }

  async clear (): Promise<void> {
    await this.#engine.clear(this.namespaceName)
  }

  namespace (name: string, defaults: CacheDefaults = {}): Cache {
    const namespace = childNamespace(this.namespaceName, name)
    return new CacheScope(this.#engine, this.#readThrough, namespace, resolveDefaults(defaults, this.#defaults))
  }

  stats (): CacheStats {
    return this.#engine.stats()
  }

  onReconnect (): void {
    this.#engine.onReconnect()
  }

  ready (): Promise<void> {
    return this.#engine.ready()
  }

  close (): Promise<void> {
    return this.#engine.close()
  }

  /**
   * The key as stored, checked once per recent key: a hit then reuses the same string (its hash is
   * cached, so the memory tier's lookup does not hash a new concatenation) and runs no key check.
   */
  #fullKey (key: string): string {
    let fullKey = this.#fullKeys.get(key)
    if (fullKey === undefined) {
      assertValidKey(key)
      fullKey = this.#keyPrefix + key
      if (this.#fullKeys.size >= FULL_KEY_CACHE_SIZE) this.#fullKeys.clear()
      this.#fullKeys.set(key, fullKey)
    }
    return fullKey
  }
}
