// The expired event for sessions nobody was using when they ended. Redis deletes an expired session
// key by itself and tells nobody (keyspace notifications are off on managed Redis, per node on
// Cluster, and need rights the least-privilege ACL user lacks), so every instance looks at the suite's
// own expiry ledger (keys.ts: sess:exp:{b}, a lower bound of each session's expiry) every `every` ms:
// entries past due whose session key is gone are claimed by one script per bucket, so exactly one
// instance wins each; it runs the handlers, then acknowledges (deletes the entry). An instance that
// dies between claim and acknowledgement leaves the claim to lapse after `leaseMs`, and another
// instance reports it then: at-least-once.
//
// Delay: an expiry is reported by the first sweep after it, so within `every` (plus the sweep's own
// round trips), while at most `limit` entries per bucket (16 buckets) fall due per sweep; more wait
// for the next sweeps.
import type { SessionEvents } from './events.js'
import type { SessionBackend } from './types.js'

export interface ExpirySweepOptions {
  backend: SessionBackend
  events: SessionEvents
  /** SESSION_EVENTS_SWEEP. */
  every: number
  /** How long a claim holds before another instance may report the same expiry. Default 60 s. */
  leaseMs?: number
  /** Entries examined per bucket per sweep. Default 100. */
  limit?: number
  logger?: { debug: (obj: object, msg: string) => void }
  now?: () => number
}

export class ExpirySweep {
  readonly #options: Required<Omit<ExpirySweepOptions, 'logger'>> & Pick<ExpirySweepOptions, 'logger'>
  #timer: NodeJS.Timeout | undefined
  #running: Promise<number> | undefined

  constructor (options: ExpirySweepOptions) {
    this.#options = { leaseMs: 60_000, limit: 100, now: Date.now, ...options }
  }

  start (): void {
    if (this.#timer !== undefined) return
    this.#timer = setInterval(() => { this.sweep().catch(() => {}) }, this.#options.every)
    this.#timer.unref()
  }

  /**
   * Stops the timer and waits for a sweep under way (its handlers included), for at most `waitMs`:
   * shutdown stays bounded. An expiry whose handlers did not finish is not acknowledged, so another
   * instance reports it once the claim lapses.
   */
  async stop (waitMs = 1_000): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
    const running = this.#running
    if (running === undefined) return
    let timer: NodeJS.Timeout | undefined
    await Promise.race([running.catch(() => {}), new Promise<void>((resolve) => { timer = setTimeout(resolve, waitMs) })])
    clearTimeout(timer)
  }

  /** One sweep (never two at once); resolves with how many expiries this instance reported. */
  sweep (): Promise<number> {
    this.#running ??= this.#sweep().finally(() => { this.#running = undefined })
    return this.#running
  }

  async #sweep (): Promise<number> {
    const { backend, events, leaseMs, limit, now } = this.#options
    let claimed
    try {
      claimed = await backend.claimExpired(now(), leaseMs, limit)
    } catch (err) {
      // Redis unreachable: the entries stay in the ledger for a later sweep (the store logs the outage).
      this.#options.logger?.debug({ err: { name: (err as Error).name } }, 'session expiry sweep failed')
      return 0
    }
    if (claimed.length === 0) return 0
    await Promise.all(claimed.map(({ handle, userId }) => events.deliver({ type: 'expired', id: handle, userId, reason: 'timeout', at: now() })))
    // Not acknowledged (Redis gone meanwhile): reported again after the lease, by whichever instance claims it.
    await backend.ackExpired(claimed).catch(() => {})
    return claimed.length
  }
}
