// The in-process copy of namespace generations and tag versions, so a Redis hit is judged without
// reading them again: a hit costs one GET.
//
// Three sources keep it current: this instance's own bumps (INCR's reply), a Redis read when a value
// is not known, and a periodic re-read of every known key (the sweep, engine.ts), which also covers a
// lost message. An invalidation message from another instance makes its keys unknown (read again when
// next needed): it is never taken as a value, since anyone allowed to PUBLISH could forge one, and a
// version announced ahead of Redis would stamp entries that a later real bump then makes look fresh.
// A reconnect forgets everything: the next lookups read what they need.
//
// Versions only grow in Redis, except when Redis itself lost them (a restart without persistence, a
// flush); a Redis read is therefore taken as the truth, but never over a value that a bump or a
// message set (or forgot) after that read was sent: the `seq` of each value tells which is newer.
const MAX_KEYS = 10_000

/** undefined: forgotten (read again when needed), kept with its seq so an older read cannot restore it. */
interface Known { value: string | undefined, seq: number }

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
      if (known?.value !== undefined && known.value !== value) changed.push(key)
      this.#set(key, value)
    })
    return changed
  }

  /** A version this instance bumped to (INCR's reply): kept unless already past it. */
  advance (key: string, value: string): void {
    const known = this.#known.get(key)
    if (known?.value === undefined || Number(value) > Number(known.value)) this.#set(key, value)
  }

  /**
   * The value is no longer known: the next lookup reads it from Redis. A read sent before this call
   * may still be on its way with the old value; the entry stays, valueless, so fromRead refuses it.
   */
  forget (key: string): void {
    this.#set(key, undefined)
  }

  clear (): void {
    this.#known.clear()
    this.#seq++
  }

  #set (key: string, value: string | undefined): void {
    this.#known.delete(key)
    this.#known.set(key, { value, seq: ++this.#seq })
    // Bounded: the oldest key is simply read again when next needed.
    if (this.#known.size > MAX_KEYS) {
      const oldest = this.#known.keys().next().value
      if (oldest !== undefined) this.#known.delete(oldest)
    }
  }
}
