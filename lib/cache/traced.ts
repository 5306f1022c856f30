// The cache as createCache() hands it out: each traced operation checks the tracing channel first
// and, with nobody listening, goes straight to the namespace's own method (cache.ts stays as it is).
// Which tier answered is noted from inside (stats.ts counts), the loader and lock waits from get-or-set.ts.
import { cacheChannel, traceCache } from '../tracing/index.js'
import type { CacheStats } from './stats.js'
import type { Cache, CacheDefaults, GetOptions, GetOrSetOptions, Loader, ManyLoader, SetOptions } from './types.js'

type Options = GetOrSetOptions<never>

class TracedCache {
  readonly #inner: Cache

  constructor (inner: Cache) {
    this.#inner = inner
  }

  get namespaceName (): string {
    return this.#inner.namespaceName
  }

  get (key: string, options?: GetOptions): Promise<unknown> {
    const inner = this.#inner
    if (!cacheChannel.start.hasSubscribers) return inner.get(key, options)
    return traceCache('get', inner.namespaceName, key, undefined, () => inner.get(key, options))
  }

  peek (key: string, options?: GetOptions): unknown {
    return this.#inner.peek(key, options)
  }

  set (key: string, value: unknown, options?: SetOptions): Promise<void> {
    const inner = this.#inner
    if (!cacheChannel.start.hasSubscribers) return inner.set(key, value, options)
    return traceCache('set', inner.namespaceName, key, undefined, () => inner.set(key, value, options))
  }

  getOrSet (key: string, loader: Loader<unknown>, options?: Options): Promise<unknown> {
    const inner = this.#inner
    if (!cacheChannel.start.hasSubscribers) return inner.getOrSet(key, loader, options)
    return traceCache('getOrSet', inner.namespaceName, key, undefined, () => inner.getOrSet(key, loader, options))
  }

  getMany (keys: readonly string[], options?: GetOptions): Promise<unknown[]> {
    return this.#inner.getMany(keys, options)
  }

  getOrSetMany (keys: readonly string[], loader: ManyLoader<unknown>, options?: Options): Promise<unknown[]> {
    const inner = this.#inner
    if (!cacheChannel.start.hasSubscribers) return inner.getOrSetMany(keys, loader, options)
    return traceCache('getOrSetMany', inner.namespaceName, undefined, keys.length, () => inner.getOrSetMany(keys, loader, options))
  }

  has (key: string, options?: GetOptions): Promise<boolean> {
    return this.#inner.has(key, options)
  }

  delete (key: string): Promise<void> {
    const inner = this.#inner
    if (!cacheChannel.start.hasSubscribers) return inner.delete(key)
    return traceCache('delete', inner.namespaceName, key, undefined, () => inner.delete(key))
  }

  invalidateTags (tags: readonly string[]): Promise<void> {
    const inner = this.#inner
    if (!cacheChannel.start.hasSubscribers) return inner.invalidateTags(tags)
    return traceCache('invalidateTags', inner.namespaceName, undefined, tags.length, () => inner.invalidateTags(tags))
  }

  clear (): Promise<void> {
    return this.#inner.clear()
  }

  namespace (name: string, defaults?: CacheDefaults): Cache {
    return traceable(this.#inner.namespace(name, defaults))
  }

  stats (): CacheStats {
    return this.#inner.stats()
  }

  onReconnect (): void {
    this.#inner.onReconnect()
  }

  ready (): Promise<void> {
    return this.#inner.ready()
  }

  close (): Promise<void> {
    return this.#inner.close()
  }
}

/** A namespace whose operations are published on the cache tracing channel while it has subscribers. */
export function traceable (cache: Cache): Cache {
  // Every member of Cache is here (checked); the overloads are the interface's, the implementations delegate.
  const traced: Record<keyof Cache, unknown> = new TracedCache(cache)
  return traced as unknown as Cache
}
