// The in-process copy of namespace generations and tag versions, so a Redis hit is judged without
// reading them again: a hit costs one GET.
//
// Three sources keep it current: this instance's own bumps (INCR's reply), the invalidation bus (the
// message carries the new version), and a periodic re-read of every known key (the sweep, engine.ts),
// which also covers a lost message. A reconnect forgets everything: the next lookups read what they need.
//
// Versions only grow in Redis, except when Redis itself lost them (a restart without persistence, a
// flush); a Redis read is therefore taken as the truth, but never over a value that a bump or message
// set after that read was sent: the `seq` of each value tells which is newer.
const MAX_KEYS = 10_000

interface Known { value: string, seq: number }

export class VersionTable {
  readonly #known = new Map<string, Known>()
  #seq = 0

  /** A point in the history of this table, taken before a Redis read is sent. */
  get seq (): number {
    return this.#seq
  }

  get size (): number {
    return this.#known.size
  }

  get (key: string): string | undefined {
    return this.#known.get(key)?.value
  }

  keys (): string[] {
    return [...this.#known.keys()]
  }

  /** Values read from Redis by a read sent at `since`; returns the keys whose value changed. */
  fromRead (keys: readonly string[], values: ReadonlyArray<string | null>, since: number): string[] {
    const changed: string[] = []
    keys.forEach((key, i) => {
      const value = values[i] ?? '0' // a version key that does not exist yet: nothing was invalidated
      const known = this.#known.get(key)
      if (known !== undefined && known.seq > since) return // a bump or message is newer than this read
      if (known !== undefined && known.value !== value) changed.push(key)
      this.#set(key, value)
    })
    return changed
  }

  /** A version this instance bumped to, or that a message announced: kept unless already past it. */
  advance (key: string, value: string): void {
    const known = this.#known.get(key)
    if (known === undefined || Number(value) > Number(known.value)) this.#set(key, value)
  }

  forget (key: string): void {
    this.#known.delete(key)
    this.#seq++
  }

  clear (): void {
    this.#known.clear()
    this.#seq++
  }

  #set (key: string, value: string): void {
    this.#known.delete(key)
    this.#known.set(key, { value, seq: ++this.#seq })
    // Bounded: the oldest key is simply read again when next needed.
    if (this.#known.size > MAX_KEYS) {
      const oldest = this.#known.keys().next().value
      if (oldest !== undefined) this.#known.delete(oldest)
    }
  }
}
