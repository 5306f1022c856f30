// Where stored responses live (a namespace of app.cache) and how identical requests collapse.
//
// Collapse rides on the cache's getOrSet, whose flight runs a loader once per key per process and,
// with a short Redis lock, once across instances. Here the "loader" is a request: the first request
// that misses becomes the flight's loader and goes on to run the route handler; getOrSet then
// holds every other caller (on this instance, and on others polling the lock) until that request's
// onSend hands over the stored response (`Fill.complete`), or says it cannot be stored
// (`Fill.abandon`). The wait is bounded by `collapseWait` (getOrSet's hard timeout and lock wait):
// past it, the waiters stop waiting and run their own handlers, and the slow one still fills the
// cache when it finishes.
import type { Cache } from '../cache/index.js'
import { StoredResponseSchema, type StoredResponse } from './entry.js'
import { NotStored } from '../errors/index.js'

/** What a lookup found: a stored response, this caller's turn to run the handler, or neither. */
export type Lookup =
  | { kind: 'found', entry: StoredResponse, collapsed: boolean }
  | { kind: 'fill', fill: Fill }
  | { kind: 'miss' }

/** The handle of the request whose handler fills the entry; settle it exactly once. */
export interface Fill {
  /** Hands the response to every request waiting on this key, and stores it. */
  complete: (entry: StoredResponse) => void
  /** The response cannot be stored: waiting requests run their own handlers. */
  abandon: () => void
}

export interface HttpCacheStats {
  hits: number
  staleHits: number
  misses: number
  bypasses: number
  stores: number
  notModified: number
  /** Requests answered by another request's handler run instead of their own. */
  collapsed: number
  revalidations: number
  invalidations: number
}

export interface ResponseStoreOptions {
  /** The namespace of app.cache that holds responses. */
  cache: Cache
  /** Longest a request waits for an identical one's handler before running its own. */
  collapseWaitMs: number
  /** A fill never settled by its request (the handler hung) is abandoned after this long. */
  fillTimeoutMs: number
}

const PEEK = { schema: StoredResponseSchema }

export class ResponseStore {
  readonly stats: HttpCacheStats = {
    hits: 0, staleHits: 0, misses: 0, bypasses: 0, stores: 0, notModified: 0, collapsed: 0, revalidations: 0, invalidations: 0
  }

  readonly #cache: Cache
  readonly #collapseWaitMs: number
  readonly #fillTimeoutMs: number

  constructor (options: ResponseStoreOptions) {
    this.#cache = options.cache
    this.#collapseWaitMs = options.collapseWaitMs
    this.#fillTimeoutMs = options.fillTimeoutMs
  }

  /** The stored response when this process's memory tier has it fresh: synchronous, no Redis read. */
  peekMemory (key: string): StoredResponse | undefined {
    // A key the cache refuses is a miss here too, as in peek(); buildResponseKey hashes any key
    // that could be refused, so this is a guard, not a path.
    try {
      return this.#cache.peek(key, PEEK)
    } catch {
      return undefined
    }
  }

  /**
   * The stored response, if any, without collapse: the hit path past the memory tier. One options object for every call,
   * so the cache resolves nothing per hit; a miss then goes through lookup() (one more read, on a miss only).
   */
  peek (key: string): Promise<StoredResponse | undefined> {
    // Not async: one promise fewer per hit. A failed read is a miss, as everywhere in the cache.
    return this.#cache.get(key, PEEK).catch(() => undefined)
  }

  /** The stored response, or this caller's turn to fill it, or (after the bounded wait) neither. */
  async lookup (key: string, storageTtlMs: number, tags: readonly string[]): Promise<Lookup> {
    const started = Date.now()
    let fill: Fill | undefined
    let gaveUp = false
    let handOver!: () => void
    const handedOver = new Promise<'fill'>((resolve) => { handOver = () => resolve('fill') })
    const loaded = this.#cache.getOrSet(key, () => {
      // getOrSet may call a loader late (its lock wait ended after we stopped waiting): not ours to run.
      if (gaveUp) throw new NotStored('the request stopped waiting')
      return new Promise<StoredResponse>((resolve, reject) => {
        fill = this.#fill(resolve, reject)
        handOver()
      })
    }, {
      schema: StoredResponseSchema,
      ttl: storageTtlMs,
      grace: 0,
      tags,
      timeout: { hard: this.#collapseWaitMs },
      lockWait: this.#collapseWaitMs
    })
    loaded.catch(() => undefined) // the filling request has moved on; waiters read their own copy
    const first = await Promise.race([loaded, handedOver]).catch(() => undefined)
    if (first === 'fill' && fill !== undefined) return { kind: 'fill', fill }
    if (first !== undefined && first !== 'fill') {
      const collapsed = first.storedAt >= started
      if (collapsed) this.stats.collapsed++
      return { kind: 'found', entry: first, collapsed }
    }
    gaveUp = true
    return { kind: 'miss' }
  }

  /** Stores a response outside a fill (a revalidation, or a request that stopped waiting). Never throws. */
  async store (key: string, entry: StoredResponse, storageTtlMs: number, tags: readonly string[]): Promise<void> {
    this.stats.stores++
    await this.#cache.set(key, entry, { schema: StoredResponseSchema, ttl: storageTtlMs, grace: 0, tags })
  }

  /** Every response carrying one of these tags becomes a miss, on every instance. */
  async invalidate (tags: readonly string[]): Promise<void> {
    if (tags.length === 0) return
    this.stats.invalidations++
    await this.#cache.invalidateTags(tags)
  }

  #fill (resolve: (entry: StoredResponse) => void, reject: (err: Error) => void): Fill {
    let settled = false
    const settle = (): boolean => {
      if (settled) return false
      settled = true
      clearTimeout(timer)
      return true
    }
    const abandon = (): void => { if (settle()) reject(new NotStored('the response was not storable')) }
    const timer = setTimeout(abandon, this.#fillTimeoutMs)
    timer.unref()
    return {
      complete: (entry) => {
        if (!settle()) return
        this.stats.stores++
        resolve(entry)
      },
      abandon
    }
  }
}
