// The in-process limiter: the same algorithms and bans as the Redis scripts (scripts.ts), in a bounded
// map. It serves development without Redis and is the default fallback while Redis is down; its counts
// are per process, so N instances allow up to N × max while they rely on it.
import type { Limiter, LimiterResult, LimitKeys, LimitParams } from './types.js'

export interface MemoryLimiterOptions {
  /** Most keys kept; the least recently used go first. Default 10 000. */
  maxKeys?: number
  /** Milliseconds, fractional allowed; for tests. Default: a monotonic wall clock. */
  now?: () => number
}

interface Entry {
  /** Fixed: the count. Sliding: unused. */
  count: number
  /** Fixed: when the window ends. Sliding: the theoretical arrival time. */
  until: number
}

const EPSILON = 0.001

const defaultNow = (): number => performance.timeOrigin + performance.now()

export class MemoryLimiter implements Limiter {
  readonly #entries = new Map<string, Entry>()
  readonly #maxKeys: number
  readonly #now: () => number

  constructor (options: MemoryLimiterOptions = {}) {
    this.#maxKeys = Math.max(1, options.maxKeys ?? 10_000)
    this.#now = options.now ?? defaultNow
  }

  get size (): number {
    return this.#entries.size
  }

  consume (keys: LimitKeys, params: LimitParams): Promise<LimiterResult> {
    return Promise.resolve(this.consumeSync(keys, params))
  }

  consumeSync (keys: LimitKeys, params: LimitParams): LimiterResult {
    const now = this.#now()
    const { max, ban } = params
    if (ban !== undefined) {
      const banned = this.#live(keys.ban, now)
      if (banned !== undefined) {
        const left = Math.ceil(banned.until - now)
        return { allowed: false, current: max + 1, remaining: 0, resetMs: left, retryAfterMs: left, banned: true }
      }
    }
    return params.algorithm === 'sliding' ? this.#sliding(keys, params, now) : this.#fixed(keys, params, now)
  }

  /** The same answer as the read scripts (scripts.ts): the count so far, nothing written. */
  peekSync (keys: LimitKeys, params: LimitParams): LimiterResult {
    const now = this.#now()
    const { max, timeWindow } = params
    const banned = params.ban === undefined ? undefined : this.#live(keys.ban, now)
    if (banned !== undefined) {
      const left = Math.ceil(banned.until - now)
      return { allowed: false, current: max + 1, remaining: 0, resetMs: left, retryAfterMs: left, banned: true }
    }
    const entry = this.#live(keys.counter, now)
    if (params.algorithm === 'sliding') {
      if (max <= 0) return { allowed: false, current: 1, remaining: 0, resetMs: timeWindow, retryAfterMs: timeWindow, banned: false }
      const interval = timeWindow / max
      const used = entry === undefined ? 0 : Math.max(0, entry.until - now)
      const current = Math.ceil(used / interval - 1e-6)
      const wait = used + interval - timeWindow - EPSILON
      return { allowed: wait <= 0, current, remaining: wait <= 0 ? Math.max(0, max - current) : 0, resetMs: Math.ceil(used), retryAfterMs: wait <= 0 ? 0 : Math.ceil(wait), banned: false }
    }
    const current = entry?.count ?? 0
    const ttl = entry === undefined ? 0 : Math.ceil(entry.until - now)
    return current <= max
      ? { allowed: true, current, remaining: max - current, resetMs: ttl, retryAfterMs: 0, banned: false }
      : { allowed: false, current, remaining: 0, resetMs: ttl, retryAfterMs: Math.max(1, ttl), banned: false }
  }

  #fixed (keys: LimitKeys, params: LimitParams, now: number): LimiterResult {
    const { max, timeWindow } = params
    let entry = this.#live(keys.counter, now)
    if (entry === undefined) {
      entry = { count: 0, until: now + timeWindow }
    }
    entry.count++
    if (entry.count > max && params.continueExceeding === true) {
      entry.until = now + timeWindow
    } else if (entry.count > max && params.exponentialBackoff === true) {
      entry.until = now + Math.min(timeWindow * 2 ** (entry.count - max - 1), 1e15)
    }
    this.#set(keys.counter, entry)
    const ttl = Math.max(1, Math.ceil(entry.until - now))
    if (entry.count <= max) {
      return { allowed: true, current: entry.count, remaining: max - entry.count, resetMs: ttl, retryAfterMs: 0, banned: false }
    }
    return this.#refuse(keys, params, now, entry.count, ttl, ttl)
  }

  // GCRA, as SLIDING_WINDOW_LUA: see the comment there.
  #sliding (keys: LimitKeys, params: LimitParams, now: number): LimiterResult {
    const { max, timeWindow } = params
    if (max <= 0) return this.#refuse(keys, params, now, 1, timeWindow, timeWindow)
    const interval = timeWindow / max
    const tat = Math.max(this.#live(keys.counter, now)?.until ?? now, now)
    const used = tat + interval - now
    if (used <= timeWindow + EPSILON) {
      this.#set(keys.counter, { count: 0, until: tat + interval })
      const current = Math.max(1, Math.ceil(used / interval - 1e-6))
      return { allowed: true, current, remaining: Math.max(0, max - current), resetMs: Math.ceil(used), retryAfterMs: 0, banned: false }
    }
    return this.#refuse(keys, params, now, max + 1, Math.ceil(tat - now), Math.ceil(used - timeWindow - EPSILON))
  }

  #refuse (keys: LimitKeys, params: LimitParams, now: number, current: number, resetMs: number, retryMs: number): LimiterResult {
    const { ban } = params
    if (ban !== undefined && ban.after > 0) {
      const strikes = this.#live(keys.strikes, now) ?? { count: 0, until: now + ban.withinMs }
      strikes.count++
      if (strikes.count >= ban.after) {
        this.#entries.delete(keys.strikes)
        this.#set(keys.ban, { count: 1, until: now + ban.durationMs })
        return { allowed: false, current, remaining: 0, resetMs: Math.max(resetMs, ban.durationMs), retryAfterMs: ban.durationMs, banned: true }
      }
      this.#set(keys.strikes, strikes)
    }
    return { allowed: false, current, remaining: 0, resetMs, retryAfterMs: Math.max(1, retryMs), banned: false }
  }

  /** The entry if it has not expired (an expired one is dropped). */
  #live (key: string, now: number): Entry | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    if (entry.until <= now) {
      this.#entries.delete(key)
      return undefined
    }
    return entry
  }

  // Map keeps insertion order: re-inserting marks a key as recently used, and the first key is the oldest.
  #set (key: string, entry: Entry): void {
    this.#entries.delete(key)
    this.#entries.set(key, entry)
    while (this.#entries.size > this.#maxKeys) {
      const oldest = this.#entries.keys().next()
      if (oldest.done === true) break
      this.#entries.delete(oldest.value)
    }
  }
}
