// getOrSet and getOrSetMany: the read-through paths, where stampedes, grace and timeouts live.
//
// One "flight" per key and process: concurrent callers share it, so the loader runs once per process.
// Across instances, the flight takes a short Redis lock (SET NX PX with a random token) before running
// the loader; an instance that finds the lock taken polls Redis for the value the holder will write,
// takes the lock itself if the holder vanished, and after `lockWait` runs the loader anyway, so a
// crashed holder costs a bounded wait and never an error. The lock is released by compare-and-delete
// so an instance whose lock expired mid-load cannot delete the next holder's lock.
//
// A flight answers its callers as early as it can: a fresh value from Redis; else, when a stale value
// within grace exists, the loader's value if it arrives within timeout.soft (default 0) or the stale one
// (the loader keeps going in the background); else the loader's value, bounded by timeout.hard. A loader
// error falls back to the stale value when there is one (stale-if-error).
import { setTimeout as sleep } from 'node:timers/promises'
import { beginLockWait, cacheChannel, endLockWait, traceLoader } from '../tracing/index.js'
import type { CacheEngine, Found, Lookup } from './engine.js'
import type { Envelope } from './entry.js'
import { CacheTimeoutError, CacheValueError } from '../errors/index.js'
import type { ResolvedOptions } from './options.js'
import type { Loader, ManyLoader } from './types.js'

const LOCK_POLL_MS = 40

interface Flight { answer: Promise<Found>, startedAt: number }

interface Call {
  namespace: string
  key: string
  fullKey: string
  r: ResolvedOptions
}

export class ReadThrough {
  readonly #engine: CacheEngine
  readonly #flights = new Map<string, Flight>()
  #lockTokens = 0

  constructor (engine: CacheEngine) {
    this.#engine = engine
  }

  /**
   * Not async: each answer is one promise (a hit from memory an already resolved one), no adoption of
   * another. The call's record is built past the memory tier: a memory hit allocates only its promise.
   */
  getOrSet (namespace: string, key: string, fullKey: string, r: ResolvedOptions, loader: Loader<unknown>): Promise<unknown> {
    const hit = this.#engine.memoryHit(namespace, fullKey, r)
    if (hit !== undefined) return Promise.resolve(hit.value)
    const memory = this.#engine.lookupMemory(namespace, fullKey, r)
    if (memory.fresh !== undefined) return Promise.resolve(memory.fresh.envelope.value)
    const call: Call = { namespace, key, fullKey, r }
    let flight = this.#flights.get(call.fullKey)
    // A flight stays in the map until its lock is released, after it answered: one that began before
    // an invalidation of this key may carry the invalidated value, so a later caller starts afresh.
    if (flight !== undefined && this.#engine.invalidatedSince(call.fullKey, flight.startedAt)) flight = undefined
    if (flight === undefined) {
      flight = this.#fly(call, loader, memory)
    } else if (memory.stale !== undefined) {
      // Someone is already refreshing this key: serve stale rather than wait.
      return Promise.resolve(this.#served(call, memory.stale))
    }
    return flight.answer.then((found) => this.#served(call, found))
  }

  async getOrSetMany (namespace: string, keys: string[], fullKeys: string[], r: ResolvedOptions,
    loader: ManyLoader<unknown>): Promise<unknown[]> {
    const invalidationsBefore = this.#engine.invalidations
    const lookups: Lookup[] = fullKeys.map((fullKey) => this.#engine.lookupMemory(namespace, fullKey, r))
    const notInMemory = fullKeys.flatMap((fullKey, i) => lookups[i]?.fresh === undefined ? [i] : [])
    const remote = await this.#engine.lookupRedisMany(namespace, notInMemory.map((i) => fullKeys[i] ?? ''), r)
    notInMemory.forEach((index, j) => {
      const found = remote[j] ?? {}
      const memory = lookups[index]
      // Redis could not say: a memory entry only due for a check is still good.
      const fresh = found.fresh ?? (found.unavailable === true ? memory?.recheck : undefined)
      lookups[index] = { fresh, stale: newest(memory?.stale, found.stale), versions: found.versions }
    })
    const misses = keys.flatMap((_, i) => lookups[i]?.fresh === undefined ? [i] : [])
    if (misses.length > 0) {
      const controller = new AbortController()
      const missingKeys = misses.map((i) => keys[i] ?? '')
      const started = Date.now()
      let values: ReadonlyArray<unknown>
      try {
        const load = (): ReadonlyArray<unknown> | Promise<ReadonlyArray<unknown>> => loader(missingKeys, { namespace, signal: controller.signal })
        values = await this.#bounded(cacheChannel.start.hasSubscribers ? () => traceLoader(namespace, load) : load,
          r.hardTimeout, missingKeys.join(','), controller)
        this.#engine.counters.record({ type: 'load', namespace, durationMs: Date.now() - started })
      } catch (err) {
        this.#engine.counters.record({ type: err instanceof CacheTimeoutError ? 'load-timeout' : 'load-error', namespace })
        // Stale-if-error, all or nothing: one key without a fallback means the caller sees the error.
        if (misses.some((i) => lookups[i]?.stale === undefined)) throw err
        return lookups.map((lookup) => (lookup.fresh ?? lookup.stale)?.envelope.value)
      }
      await Promise.all(misses.map(async (index, j) => {
        const value = values[j]
        const lookup = lookups[index]
        if (value === undefined || lookup === undefined) return
        this.#validate(keys[index] ?? '', value, r)
        const envelope = await this.#engine.write(namespace, fullKeys[index] ?? '', value, r, lookup.versions, invalidationsBefore)
        lookup.fresh = { envelope, tier: 'redis' }
      }))
    }
    return lookups.map((lookup) => lookup.fresh?.envelope.value)
  }

  #served (call: Call, found: Found): unknown {
    if (Date.now() >= found.envelope.expiresAt) this.#engine.counters.count('stale', call.namespace, found.tier)
    return found.envelope.value
  }

  /**
   * A Redis hit answers the flight and lands it at once: that is the hot path, a GET and two promises.
   * Anything else (a miss, a stale entry) goes on to #load's lock, loader, timeouts and grace.
   */
  #fly (call: Call, loader: Loader<unknown>, memory: Lookup): Flight {
    const flight: Flight = { answer: undefined as unknown as Promise<Found>, startedAt: this.#engine.invalidations }
    const land = (): void => { if (this.#flights.get(call.fullKey) === flight) this.#flights.delete(call.fullKey) }
    // One promise for a hit. A miss's own answer lands the flight when its load is over, or at once
    // on an error (#miss), so callers that arrive after a hard timeout start a new flight rather than
    // inherit the error.
    const failed = (err: unknown): never => {
      land()
      throw err
    }
    flight.answer = this.#engine.lookupRedis(call.namespace, call.fullKey, call.r).then((remote) => {
      if (remote.fresh !== undefined) {
        land()
        return remote.fresh
      }
      // Redis could not say: a memory entry only due for a check is still good.
      if (remote.unavailable === true && memory.recheck !== undefined) {
        land()
        return memory.recheck
      }
      try {
        return this.#miss(call, loader, memory.stale, remote, flight.startedAt, land)
      } catch (err) {
        return failed(err)
      }
    }, failed)
    this.#flights.set(call.fullKey, flight)
    return flight
  }

  #miss (call: Call, loader: Loader<unknown>, memoryStale: Found | undefined, remote: Lookup,
    invalidationsBefore: number, land: () => void): Promise<Found> {
    let settle!: (found: Found) => void
    let fail!: (err: unknown) => void
    const answer = new Promise<Found>((resolve, reject) => { settle = resolve; fail = reject })
    // #run settles `answer` (maybe early, with a stale value) and only returns once the load is over.
    this.#run(call, loader, newest(memoryStale, remote.stale), remote.versions, invalidationsBefore, settle, fail)
      .catch(fail).finally(land).catch(() => undefined)
    // A failed answer (a hard timeout) lands the flight at once: later callers start a new one.
    answer.then(undefined, land)
    return answer
  }

  async #run (call: Call, loader: Loader<unknown>, stale: Found | undefined, versions: Lookup['versions'],
    invalidationsBefore: number, resolve: (found: Found) => void, reject: (err: unknown) => void): Promise<void> {
    const { namespace, key, r } = call
    const controller = new AbortController()
    const timers: NodeJS.Timeout[] = []
    const after = (ms: number, fn: () => void): void => { timers.push(setTimeout(fn, ms)) }
    if (stale !== undefined) {
      if (r.softTimeout === 0) resolve(stale)
      else after(r.softTimeout, () => resolve(stale))
    } else if (r.hardTimeout !== undefined) {
      const hard = r.hardTimeout
      after(hard, () => {
        this.#engine.counters.record({ type: 'load-timeout', namespace })
        reject(new CacheTimeoutError(key, hard))
        controller.abort(new CacheTimeoutError(key, hard))
      })
    }
    try {
      const envelope = await this.#loadOnce(call, loader, stale, versions, invalidationsBefore, controller.signal)
      resolve({ envelope, tier: 'redis' })
    } catch (err) {
      this.#engine.counters.record({ type: 'load-error', namespace })
      if (stale !== undefined) resolve(stale)
      else reject(err)
    } finally {
      for (const timer of timers) clearTimeout(timer)
    }
  }

  /** Runs the loader under the cross-instance lock, or reads what the lock holder wrote. */
  async #loadOnce (call: Call, loader: Loader<unknown>, stale: Found | undefined,
    versions: Lookup['versions'], invalidationsBefore: number, signal: AbortSignal): Promise<Envelope> {
    const redis = this.#engine.redis
    if (redis === undefined || !call.r.redis) return this.#load(call, loader, stale, versions, invalidationsBefore, signal)
    const lockKey = this.#engine.layout.lock(call.namespace, call.key)
    const token = `${this.#engine.instanceId}:${++this.#lockTokens}`
    let lock = await redis.acquireLock(lockKey, token, call.r.lockTtl)
    if (lock === 'taken') lock = await redis.reclaimOwnLock(lockKey, `${this.#engine.instanceId}:`, token, call.r.lockTtl)
    const waitUntil = Date.now() + call.r.lockWait
    const wait = lock === 'taken' && cacheChannel.start.hasSubscribers ? beginLockWait(call.namespace) : undefined
    while (lock === 'taken' && Date.now() < waitUntil && !signal.aborted) {
      await sleep(LOCK_POLL_MS)
      const written = await this.#engine.lookupRedis(call.namespace, call.fullKey, call.r, false)
      if (written.fresh !== undefined) {
        endLockWait(wait, 'written')
        return written.fresh.envelope
      }
      lock = await redis.acquireLock(lockKey, token, call.r.lockTtl)
    }
    endLockWait(wait, lock ?? 'unavailable')
    try {
      return await this.#load(call, loader, stale, versions, invalidationsBefore, signal)
    } finally {
      // Not awaited: the callers have their value once it is written. The release follows the write
      // on the same connection, and the next SET NX on this key from this process follows the release.
      if (lock === 'acquired') redis.releaseLock(lockKey, token).catch(() => {})
    }
  }

  async #load (call: Call, loader: Loader<unknown>, stale: Found | undefined,
    versions: Lookup['versions'], invalidationsBefore: number, signal: AbortSignal): Promise<Envelope> {
    const started = Date.now()
    const context = { key: call.key, namespace: call.namespace, stale: stale?.envelope.value, signal }
    const value = await (cacheChannel.start.hasSubscribers ? traceLoader(call.namespace, () => loader(context)) : loader(context))
    this.#engine.counters.record({ type: 'load', namespace: call.namespace, durationMs: Date.now() - started })
    this.#validate(call.key, value, call.r)
    if (value === undefined) {
      // Nothing to cache (JSON has no undefined); the callers still get the answer.
      const now = Date.now()
      return { format: 2, value, createdAt: now, expiresAt: now + call.r.ttl, staleUntil: now, generation: '', tags: {} }
    }
    return this.#engine.write(call.namespace, call.fullKey, value, call.r, versions, invalidationsBefore)
  }

  #validate (key: string, value: unknown, r: ResolvedOptions): void {
    if (value === undefined || r.schema === undefined || r.schema.check(value)) return
    const errors = r.schema.errors(value)
    throw new CacheValueError(`The loader's value for cache key ${JSON.stringify(key)} does not match its schema: ${errors.join('; ')}`, key, errors)
  }

  async #bounded<T> (work: () => T | Promise<T>, ms: number | undefined, key: string, controller: AbortController): Promise<T> {
    if (ms === undefined) return work()
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        const err = new CacheTimeoutError(key, ms)
        controller.abort(err)
        reject(err)
      }, ms)
    })
    try {
      return await Promise.race([Promise.resolve().then(work), timeout])
    } finally {
      clearTimeout(timer)
    }
  }
}

function newest (a: Found | undefined, b: Found | undefined): Found | undefined {
  if (a === undefined) return b
  if (b === undefined) return a
  return b.envelope.createdAt > a.envelope.createdAt ? b : a
}
