// Features keep plain cumulative totals (cache.stats(), rateLimit.stats(), sessions.stats()); Prometheus
// wants counters. At each scrape we add the growth since the previous scrape, so the series stay
// monotonic `_total` counters and rate() works, without the features knowing about prom-client.
import type { Counter } from 'prom-client'

export class CumulativeCounter<L extends string> {
  readonly #counter: Counter<L>
  readonly #last = new Map<string, number>()
  readonly #seen = new Set<string>()

  constructor (counter: Counter<L>) {
    this.#counter = counter
  }

  /** Brings the counter up to `total`, the source's running total for these labels. */
  sync (labels: Partial<Record<L, string>>, total: unknown): void {
    if (typeof total !== 'number' || !Number.isFinite(total) || total < 0) return
    const key = labelKey(labels)
    const previous = this.#last.get(key) ?? 0
    this.#last.set(key, total)
    // A total below the last one means the source restarted from zero: all of it is new.
    const delta = total >= previous ? total - previous : total
    if (delta > 0) this.#counter.inc(labels, delta)
    else if (!this.#seen.has(key)) this.#counter.inc(labels, 0) // the series exists from its first scrape
    this.#seen.add(key)
  }
}

function labelKey (labels: Record<string, string | undefined>): string {
  return Object.keys(labels).sort().map((name) => `${name}=${labels[name] ?? ''}`).join('\u0000')
}

/** Caps the distinct values of a label an app may create; later ones fold into `other`. */
export class BoundedLabel {
  readonly #values = new Set<string>()
  readonly #max: number

  constructor (max: number) {
    this.#max = max
  }

  value (raw: string): string {
    if (this.#values.has(raw)) return raw
    if (this.#values.size >= this.#max) return 'other'
    this.#values.add(raw)
    return raw
  }
}
