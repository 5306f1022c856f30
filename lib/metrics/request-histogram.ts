// http_request_duration_seconds without prom-client's per-observation work (label validation, an
// object per call, a hashed key): every request of a route lands on a series found through two small
// maps the route's hook holds, and an observation is a few increments. prom-client reads it at scrape
// time through the same interface its own Histogram offers the registry (name, help, type, get()).
import type { Registry } from 'prom-client'

interface Series {
  readonly labels: { method: string, route: string, status_code: string }
  /** Per-bucket counts, not cumulative; turned cumulative at scrape time. */
  readonly counts: Float64Array
  sum: number
  count: number
}

/** The series of one route pattern, by method and status code. */
export type RouteSeries = Map<string, Map<number, Series>>

interface ExportedValue { labels: Record<string, string | number>, value: number, metricName: string }

export class RequestHistogram {
  readonly name: string
  readonly help: string
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  readonly #bounds: readonly number[]
  readonly #routes = new Map<string, RouteSeries>()

  constructor (options: { name: string, help: string, buckets: readonly number[], registers: Registry[] }) {
    this.name = options.name
    this.help = options.help
    this.#bounds = [...options.buckets].sort((a, b) => a - b)
    for (const registry of options.registers) registry.registerMetric(this as never)
  }

  /** The series map of one route pattern: resolve once per route and keep it. */
  route (route: string): RouteSeries {
    let series = this.#routes.get(route)
    if (series === undefined) {
      series = new Map()
      this.#routes.set(route, series)
    }
    return series
  }

  observe (route: RouteSeries, routeLabel: string, method: string, statusCode: number, seconds: number): void {
    let byStatus = route.get(method)
    if (byStatus === undefined) {
      byStatus = new Map()
      route.set(method, byStatus)
    }
    let series = byStatus.get(statusCode)
    if (series === undefined) {
      series = { labels: { method, route: routeLabel, status_code: String(statusCode) }, counts: new Float64Array(this.#bounds.length), sum: 0, count: 0 }
      byStatus.set(statusCode, series)
    }
    series.sum += seconds
    series.count++
    const bounds = this.#bounds
    for (let i = 0; i < bounds.length; i++) {
      if (seconds <= (bounds[i] as number)) {
        (series.counts[i] as number)++
        break
      }
    }
  }

  /** The registry's view, shaped as prom-client's Histogram shapes it. */
  async get (): Promise<{ name: string, help: string, type: string, aggregator: string, values: ExportedValue[] }> {
    const values: ExportedValue[] = []
    const bucket = `${this.name}_bucket`
    for (const route of this.#routes.values()) {
      for (const byStatus of route.values()) {
        for (const series of byStatus.values()) {
          let cumulative = 0
          for (let i = 0; i < this.#bounds.length; i++) {
            cumulative += series.counts[i] as number
            values.push({ labels: { ...series.labels, le: this.#bounds[i] as number }, value: cumulative, metricName: bucket })
          }
          values.push({ labels: { ...series.labels, le: '+Inf' }, value: series.count, metricName: bucket })
          values.push({ labels: series.labels, value: series.sum, metricName: `${this.name}_sum` })
          values.push({ labels: series.labels, value: series.count, metricName: `${this.name}_count` })
        }
      }
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }

  reset (): void {
    this.#routes.clear()
  }
}
