// One request, one time budget: the store calls of one request share REDIS_COMMAND_TIMEOUT between
// them (a sign-in on a dead link waits once, not per call). Only time spent waiting on the store counts:
// a slow handler or a rate-limit decision that waited out a failover spends none of it. A store call
// started with less than a full command timeout left is bounded by what is left. One shared sweep timer watches every such call (running only while there
// is one), instead of a setTimeout + Promise.race per call; the Redis client's commandTimeout bounds
// the rest.

/** Granularity of the sweep: the most a request's budget can be overrun by. */
const SWEEP_MS = 20

interface Watched { at: number, expire: () => void }

/** What is left of one request's store-time budget; spent by the store calls as they settle. */
export class RequestBudget {
  #leftMs: number

  constructor (ms: number) {
    this.#leftMs = ms
  }

  /** The deadline of a store call starting at `now`, with `extraMs` more (what is left of a failover wait). */
  deadline (now: number, extraMs: number): number {
    return now + this.#leftMs + extraMs
  }

  spend (ms: number): void {
    this.#leftMs = Math.max(0, this.#leftMs - ms)
  }
}

export class DeadlineSweep {
  readonly #now: () => number
  readonly #watched = new Set<Watched>()
  #timer: NodeJS.Timeout | undefined

  constructor (now: () => number) {
    this.#now = now
  }

  /** `operation`, or a rejection once `deadline` passes when that comes before the client's own timeout. */
  bound<T> (operation: Promise<T>, deadline: number, commandTimeout: number): Promise<T> {
    const left = deadline - this.#now()
    if (left >= commandTimeout - SWEEP_MS) return operation
    operation.catch(() => {}) // its late failure is not this request's any more
    if (left <= 0) return Promise.reject(new Error('request time budget spent'))
    return new Promise<T>((resolve, reject) => {
      const entry: Watched = { at: deadline, expire: () => reject(new Error('request time budget spent')) }
      this.#watched.add(entry)
      this.#timer ??= setInterval(() => this.#sweep(), SWEEP_MS).unref()
      operation.then(resolve, reject).finally(() => this.#unwatch(entry))
    })
  }

  #sweep (): void {
    const now = this.#now()
    for (const entry of this.#watched) {
      if (entry.at <= now) {
        entry.expire()
        this.#unwatch(entry)
      }
    }
  }

  #unwatch (entry: Watched): void {
    this.#watched.delete(entry)
    if (this.#watched.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer)
      this.#timer = undefined
    }
  }
}
