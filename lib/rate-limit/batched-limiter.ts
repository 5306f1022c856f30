// Batched mode (RATE_LIMIT_SYNC=batched): each instance takes a lease of a fixed window's quota from
// Redis (LEASE_LUA: up to `lease` requests at once, never past max) and decides locally until it is
// spent, so most requests make no Redis call. Bound: the Redis counter never passes max, and a lease
// expires here no later than its Redis window (its end is measured from before the call was sent), so
// the only over-admission is clock drift between this process and Redis within one window; we state
// and test the looser bound `max + instances × lease`. The cost is under-admission: quota leased by an
// instance that then goes quiet is lost to the others until the window ends (at most instances × lease).
import type { RedisLimiter } from './redis-limiter.js'
import { LEASE_SCRIPT } from './scripts.js'
import type { LimiterResult } from './types.js'

interface Lease {
  /** Requests this instance may still admit in this window. */
  left: number
  /** The Redis counter after the last grant (leased by every instance, spent or not). */
  counted: number
  /** Local monotonic ms when the Redis window ends (or sooner). */
  until: number
  /** Redis granted nothing: refuse here until `until`. */
  exhausted: boolean
  /** A lease call in flight; requests arriving meanwhile wait for it instead of sending their own. */
  pending: Promise<void> | undefined
}

export interface BatchedLimiterOptions {
  /** Requests taken per lease; default: 5 % of max, at least 1, at most 1000. */
  leaseSize?: ((max: number) => number) | undefined
  /** Windows tracked at once; the oldest go first (their unspent lease is given up). Default 10 000. */
  maxKeys?: number | undefined
  now?: (() => number) | undefined
}

export const defaultLeaseSize = (max: number): number => Math.max(1, Math.min(1000, Math.floor(max / 20)))

export class BatchedLimiter {
  readonly #redis: RedisLimiter
  readonly #leases = new Map<string, Lease>()
  readonly #leaseSize: (max: number) => number
  readonly #maxKeys: number
  readonly #now: () => number

  constructor (redis: RedisLimiter, options: BatchedLimiterOptions = {}) {
    this.#redis = redis
    this.#leaseSize = options.leaseSize ?? defaultLeaseSize
    this.#maxKeys = Math.max(1, options.maxKeys ?? 10_000)
    this.#now = options.now ?? (() => performance.now())
  }

  /** Lease size for a limit of `max` (for the over-admission bound: instances × this). */
  leaseSize (max: number): number {
    return Math.max(1, Math.trunc(this.#leaseSize(max)))
  }

  /** A local answer when a lease (or a known-exhausted window) is in hand; else one lease call first. Rejects when Redis fails. */
  consume (counter: string, max: number, windowMs: number): LimiterResult | Promise<LimiterResult> {
    const now = this.#now()
    let lease = this.#leases.get(counter)
    if (lease !== undefined && lease.until <= now && lease.pending === undefined) {
      this.#leases.delete(counter)
      lease = undefined
    }
    if (lease !== undefined && lease.pending === undefined) {
      if (lease.left > 0) {
        lease.left--
        const current = Math.min(max, lease.counted - lease.left)
        return { allowed: true, current, remaining: max - current, resetMs: Math.ceil(lease.until - now), retryAfterMs: 0, banned: false }
      }
      if (lease.exhausted) {
        const wait = Math.max(1, Math.ceil(lease.until - now))
        return { allowed: false, current: max + 1, remaining: 0, resetMs: wait, retryAfterMs: wait, banned: false }
      }
    }
    const pending = lease?.pending ?? this.#fetch(counter, max, windowMs, lease)
    return pending.then(() => this.consume(counter, max, windowMs))
  }

  #fetch (counter: string, max: number, windowMs: number, previous: Lease | undefined): Promise<void> {
    const sentAt = this.#now()
    const lease: Lease = previous ?? { left: 0, counted: 0, until: sentAt + windowMs, exhausted: false, pending: undefined }
    const pending = this.#redis.call(LEASE_SCRIPT, counter, [String(windowMs), String(max), String(this.leaseSize(max))]).then((reply) => {
      const [granted, counted, ttl] = (reply as unknown[]).map(Number) as [number, number, number]
      lease.left += granted
      lease.counted = counted
      // From the send time: the lease ends here before its window ends in Redis.
      lease.until = sentAt + ttl
      lease.exhausted = granted === 0
      lease.pending = undefined
    }, (err: unknown) => {
      lease.pending = undefined
      throw err
    })
    lease.pending = pending
    this.#leases.delete(counter)
    this.#leases.set(counter, lease)
    if (this.#leases.size > this.#maxKeys) {
      const oldest = this.#leases.keys().next()
      if (oldest.done !== true) this.#leases.delete(oldest.value)
    }
    return pending
  }
}
