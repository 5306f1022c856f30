// What one route (or the whole HTTP cache) may keep written in Redis, counted by this instance: at
// most `maxEntries` live entries and `maxBytes` of what they store (the entry as written: a binary
// body as base64, headers, ETag, key). A crawler sending random query strings then costs a bounded
// amount of memory on the Redis that also holds sessions and rate limits (often noeviction, where a
// full instance fails session writes). Counted per instance, with no Redis command: N instances may
// write up to N × the cap. An entry counts until its storage TTL ends (an invalidated entry stays in
// Redis until then too), so the budget frees itself as entries expire.

interface Written { expiresAt: number, bytes: number }

export class RouteBudget {
  readonly maxEntries: number
  readonly maxBytes: number
  /** Insertion order is expiry order: one route has one storage TTL. */
  readonly #written = new Map<string, Written>()
  #bytes = 0

  constructor (maxEntries: number, maxBytes: number) {
    this.maxEntries = maxEntries
    this.maxBytes = maxBytes
  }

  get capped (): boolean {
    return this.maxEntries !== Infinity || this.maxBytes !== Infinity
  }

  /** Reserves room for one write of `bytes` under `key`; false when the route is at its cap. */
  admit (key: string, bytes: number, ttlMs: number, now = Date.now()): boolean {
    if (!this.capped) return true
    const previous = this.#written.get(key)
    const entries = this.#written.size - (previous === undefined ? 0 : 1)
    let used = this.#bytes - (previous?.bytes ?? 0)
    if (entries + 1 > this.maxEntries || used + bytes > this.maxBytes) {
      this.#expire(now)
      if (this.#written.size - (this.#written.has(key) ? 1 : 0) + 1 > this.maxEntries) return false
      used = this.#bytes - (this.#written.get(key)?.bytes ?? 0)
      if (used + bytes > this.maxBytes) return false
    }
    this.#forget(key)
    this.#written.set(key, { expiresAt: now + ttlMs, bytes })
    this.#bytes += bytes
    return true
  }

  /** Drops a reservation whose write did not happen (another budget refused it). */
  release (key: string): void {
    this.#forget(key)
  }

  #expire (now: number): void {
    for (const [key, written] of this.#written) {
      if (written.expiresAt > now) break
      this.#forget(key)
    }
  }

  #forget (key: string): void {
    const written = this.#written.get(key)
    if (written === undefined) return
    this.#written.delete(key)
    this.#bytes -= written.bytes
  }
}
