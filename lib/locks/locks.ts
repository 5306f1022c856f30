// Distributed locks (`app.locks`): acquire with a TTL and a fencing token, release and extend only by
// the owner, and withLock, which keeps the lock alive while its work runs and always releases it.
// The primitive (scripts, key layout, single-instance limits) lives in store.ts.
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseDuration, type Duration } from '../config/index.js'
import type { LockStore } from './store.js'
import { lockChannel, traceLock } from '../tracing/index.js'

export { tryLock, tryFencedLock, releaseLock, extendLock, lockKeys, RedisLockStore, MemoryLockStore, type LockStore } from './store.js'
import { DurationError, LockBusyError, LockLostError, LockNameError } from '../errors/index.js'

export interface AcquireOptions {
  /** How long the lock lives unless extended. Default 30s. */
  ttl?: Duration
  /** How long to keep trying while another owner holds it. Default 0: one attempt. */
  wait?: Duration
  /** Pause between attempts while waiting (±50 % jitter, so waiters do not move in step). Default 50ms. */
  retryDelay?: Duration
}

export interface WithLockOptions extends AcquireOptions {
  /** Extend the lock every ttl/3 while the work runs. Default true. */
  autoExtend?: boolean
}

export interface LockStats {
  /** Locks acquired. */
  acquisitions: number
  /** Attempts that found the lock held by another owner. */
  contention: number
  /** acquire() calls that gave up after `wait` (FRS_LOCK_BUSY). */
  busy: number
  /** Redis errors and timeouts (FRS_LOCK_UNAVAILABLE). */
  failures: number
  /** Locks found expired or taken over when extending (FRS_LOCK_LOST). */
  lost: number
  /** Locks this instance holds right now. */
  held: number
}

export interface LockLogger {
  warn: (obj: object, msg?: string) => void
}

export interface LocksOptions {
  store: LockStore
  defaultTtl?: Duration
  logger?: LockLogger | undefined
}

/** A held lock. `fencingToken` grows with every acquisition of the same name: pass it to the resource you protect. */
export class Lock {
  readonly name: string
  readonly fencingToken: number
  /** The random owner token stored in Redis. */
  readonly owner: string
  #expiresAt: number
  #released = false
  readonly #locks: Locks

  constructor (locks: Locks, name: string, owner: string, fencingToken: number, ttlMs: number) {
    this.#locks = locks
    this.name = name
    this.owner = owner
    this.fencingToken = fencingToken
    this.#expiresAt = Date.now() + ttlMs
  }

  /** When the lock expires unless extended, as this process estimates it (Date.now() based). */
  get expiresAt (): number {
    return this.#expiresAt
  }

  get released (): boolean {
    return this.#released
  }

  /** Deletes the lock if this owner still holds it. False when it had expired or another owner holds it now. */
  async release (): Promise<boolean> {
    if (this.#released) return false
    const store = this.#locks.store
    const released = await (lockChannel.start.hasSubscribers ? traceLock('release', this.name, () => store.release(this.name, this.owner)) : store.release(this.name, this.owner))
    this.#released = true
    this.#locks.held.delete(this)
    return released
  }

  /** Pushes the expiry `ttl` from now if this owner still holds it; false when it was lost. */
  async extend (ttl: Duration): Promise<boolean> {
    const ttlMs = parseDuration(ttl, 'ttl')
    if (this.#released) return false
    const startedAt = Date.now()
    const extended = await this.#locks.store.extend(this.name, this.owner, ttlMs)
    if (extended) this.#expiresAt = startedAt + ttlMs
    return extended
  }
}

export class Locks {
  /** The backing store; exposed for the Lock objects this class hands out. */
  readonly store: LockStore
  /** Locks acquired and not yet released, released on close. */
  readonly held = new Set<Lock>()
  readonly #defaultTtl: number
  readonly #logger: LockLogger | undefined
  readonly #counts = { acquisitions: 0, contention: 0, busy: 0, failures: 0, lost: 0 }

  constructor (options: LocksOptions) {
    this.store = options.store
    this.#defaultTtl = parseDuration(options.defaultTtl ?? '30s', 'defaultTtl')
    this.#logger = options.logger
  }

  /** One attempt (retried for `wait`): the lock, or undefined when another owner still holds it. */
  async tryAcquire (name: string, options: AcquireOptions = {}): Promise<Lock | undefined> {
    return lockChannel.start.hasSubscribers ? traceLock('acquire', name, () => this.#tryAcquire(name, options)) : this.#tryAcquire(name, options)
  }

  async #tryAcquire (name: string, options: AcquireOptions): Promise<Lock | undefined> {
    validateName(name)
    const ttlMs = parseDuration(options.ttl ?? this.#defaultTtl, 'ttl')
    if (ttlMs < 1) throw new DurationError('ttl must be at least 1 ms')
    const waitMs = parseDuration(options.wait ?? 0, 'wait')
    const retryMs = Math.max(1, parseDuration(options.retryDelay ?? 50, 'retryDelay'))
    const deadline = Date.now() + waitMs
    for (;;) {
      const owner = randomUUID()
      const startedAt = Date.now()
      let token: number | undefined
      try {
        token = await this.store.acquire(name, owner, ttlMs)
      } catch (err) {
        this.#counts.failures++
        // A timed-out SET may still have landed: give the orphan back rather than leave it for its ttl.
        this.store.release(name, owner).catch(() => {})
        throw err
      }
      if (token !== undefined) {
        this.#counts.acquisitions++
        const lock = new Lock(this, name, owner, token, ttlMs - (Date.now() - startedAt))
        this.held.add(lock)
        return lock
      }
      this.#counts.contention++
      const left = deadline - Date.now()
      if (left <= 0) return undefined
      await sleep(Math.min(left, retryMs * (0.5 + Math.random())))
    }
  }

  /** The lock, or LockBusyError (FRS_LOCK_BUSY) after `wait`, or FRS_LOCK_UNAVAILABLE when Redis fails. */
  async acquire (name: string, options: AcquireOptions = {}): Promise<Lock> {
    const lock = await this.tryAcquire(name, options)
    if (lock === undefined) {
      this.#counts.busy++
      throw new LockBusyError(name, parseDuration(options.wait ?? 0, 'wait'))
    }
    return lock
  }

  /**
   * Runs `fn` holding the lock, extends it every ttl/3 while `fn` runs, and always releases it.
   * If the lock is lost meanwhile, `signal` aborts at once and withLock rejects with LockLostError
   * (FRS_LOCK_LOST) once `fn` settles: check `signal.aborted` before committing, or use the fencing token.
   */
  async withLock<T> (name: string, fn: (lock: Lock, signal: AbortSignal) => T | Promise<T>, options: WithLockOptions = {}): Promise<T> {
    const lock = await this.acquire(name, options)
    const ttlMs = parseDuration(options.ttl ?? this.#defaultTtl, 'ttl')
    const controller = new AbortController()
    const stopExtending = options.autoExtend === false ? () => {} : this.#keepAlive(lock, ttlMs, controller)
    try {
      const result = await fn(lock, controller.signal)
      if (controller.signal.aborted) throw controller.signal.reason
      return result
    } finally {
      stopExtending()
      // The lock expires by itself if Redis is down now; never hide fn's outcome behind a release error.
      await lock.release().catch((err: Error) => {
        this.#logger?.warn({ lock: name, err: { message: err.message } }, 'locks: could not release a lock; it expires at its ttl')
      })
    }
  }

  stats (): LockStats {
    // A lock left to expire instead of released stops counting at its ttl.
    const now = Date.now()
    for (const lock of this.held) if (lock.expiresAt <= now) this.held.delete(lock)
    return { ...this.#counts, held: this.held.size }
  }

  /** Releases every lock still held (bounded by the store's command timeout). */
  async close (): Promise<void> {
    await Promise.all([...this.held].map((lock) => lock.release().catch(() => false)))
  }

  #keepAlive (lock: Lock, ttlMs: number, controller: AbortController): () => void {
    const lose = (): void => {
      if (controller.signal.aborted) return
      this.#counts.lost++
      this.#logger?.warn({ lock: lock.name }, 'locks: a lock was lost while its work ran')
      controller.abort(new LockLostError(lock.name))
    }
    const timer = setInterval(() => {
      lock.extend(ttlMs).then((extended) => {
        if (!extended) lose()
      }, () => {
        // Redis unreachable: keep trying while the ttl lasts; past it another owner may hold the lock.
        this.#counts.failures++
        if (Date.now() >= lock.expiresAt) lose()
      })
    }, Math.max(1, Math.floor(ttlMs / 3)))
    timer.unref()
    return () => clearInterval(timer)
  }
}

function validateName (name: string): void {
  if (typeof name !== 'string' || name.length === 0 || name.length > 512) {
    throw new LockNameError(`A lock name must be a string of 1 to 512 characters, got ${JSON.stringify(name)}`)
  }
}
