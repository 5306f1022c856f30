// The alternatives users would otherwise pick, set up the way their docs show, on the same Redis and
// the same payload as ours.
import { createCache as createDedupeCache } from 'async-cache-dedupe'
import { BentoCache, bentostore } from 'bentocache'
import { memoryDriver } from 'bentocache/drivers/memory'
import { redisBusDriver, redisDriver } from 'bentocache/drivers/redis'
import type { Redis } from 'ioredis'

/** A hand-written cache-aside: GET + JSON.parse, SET PX on a miss. No dedupe, no lock. */
export class CacheAside {
  readonly #client: Redis
  readonly #ttlMs: number

  constructor (client: Redis, ttlMs = 300_000) {
    this.#client = client
    this.#ttlMs = ttlMs
  }

  async getOrSet<T>(key: string, loader: () => Promise<T> | T): Promise<T> {
    const raw = await this.#client.get(key)
    if (raw !== null) return JSON.parse(raw) as T
    const value = await loader()
    await this.#client.set(key, JSON.stringify(value), 'PX', this.#ttlMs)
    return value
  }

  async get<T>(key: string): Promise<T | undefined> {
    const raw = await this.#client.get(key)
    return raw === null ? undefined : JSON.parse(raw) as T
  }
}

/** bentocache on Redis alone (L2 only), or with its memory tier and Redis bus (both tiers). */
export function bento (client: Redis, tiers: 'redis' | 'both', prefix = 'bento'): BentoCache<{ cache: ReturnType<typeof bentostore> }> {
  let store = bentostore()
  if (tiers === 'both') store = store.useL1Layer(memoryDriver({ maxItems: 10_000 }))
  store = store.useL2Layer(redisDriver({ connection: client, prefix }))
  // With both tiers, bentocache needs its bus to keep instances' memory tiers coherent, as ours does.
  if (tiers === 'both') store = store.useBus(redisBusDriver({ connection: client.options }))
  return new BentoCache({ default: 'cache', ttl: '5m', stores: { cache: store } })
}

export interface DedupeCache {
  fetch: (key: string) => Promise<unknown>
  clear: () => Promise<void>
}

/** async-cache-dedupe with its Redis storage; `load` runs on a miss. */
export function dedupe (client: Redis, load: (key: string) => Promise<unknown>): DedupeCache {
  const cache = createDedupeCache({ ttl: 300, storage: { type: 'redis', options: { client } } })
  return cache.define('fetch', { ttl: 300 }, load) as unknown as DedupeCache
}
