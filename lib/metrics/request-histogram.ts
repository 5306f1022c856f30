// Histograms without prom-client's per-observation work (label validation, an object per call, a
// hashed key): a caller finds its series through small maps it holds (or keeps the series itself),
// and an observation is a few increments. prom-client reads them at scrape time through the interface
// its own Histogram offers the registry (name, help, type, get()).
//  - RequestHistogram: http_request_duration_seconds, by route pattern, method and status code;
//  - CommandHistogram: redis_client_command_duration_seconds, by connection and command.
import type { Registry } from 'prom-client'

interface Series {
  readonly labels: Record<string, string>
  /** Per-bucket counts, not cumulative; turned cumulative at scrape time. */
  readonly counts: Float64Array
  sum: number
  count: number
}

interface ExportedValue { labels: Record<string, string | number>, value: number, metricName: string }

interface HistogramOptions { name: string, help: string, buckets: readonly number[], registers: Registry[] }

/** The series store, the increment and the export shared by the histograms below. */
class LeanHistogram {
  readonly name: string
  readonly help: string
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  readonly #bounds: readonly number[]
  readonly #series: Series[] = []

  constructor (options: HistogramOptions) {
    this.name = options.name
    this.help = options.help
    this.#bounds = [...options.buckets].sort((a, b) => a - b)
    for (const registry of options.registers) registry.registerMetric(this as never)
  }

  /** A new series, exported from now on; its owner keeps it and passes it to record(). */
  protected series (labels: Record<string, string>): Series {
    const series = { labels, counts: new Float64Array(this.#bounds.length), sum: 0, count: 0 }
    this.#series.push(series)
    return series
  }

  protected record (series: Series, seconds: number): void {
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
    for (const series of this.#series) {
      let cumulative = 0
      for (let i = 0; i < this.#bounds.length; i++) {
        cumulative += series.counts[i] as number
        values.push({ labels: { ...series.labels, le: this.#bounds[i] as number }, value: cumulative, metricName: bucket })
      }
      values.push({ labels: { ...series.labels, le: '+Inf' }, value: series.count, metricName: bucket })
      values.push({ labels: series.labels, value: series.sum, metricName: `${this.name}_sum` })
      values.push({ labels: series.labels, value: series.count, metricName: `${this.name}_count` })
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }

  /** Zeroes every series in place: their owners (a route's hook, the command maps) keep using them. */
  reset (): void {
    for (const series of this.#series) {
      series.counts.fill(0)
      series.sum = 0
      series.count = 0
    }
  }
}

/** The series of one route pattern, by method and status code. */
export type RouteSeries = Map<string, Map<number, Series>>

export class RequestHistogram extends LeanHistogram {
  readonly #routes = new Map<string, RouteSeries>()

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
      series = this.series({ method, route: routeLabel, status_code: String(statusCode) })
      byStatus.set(statusCode, series)
    }
    this.record(series, seconds)
  }
}

/** By connection, then command: one Map lookup each per command, no key built. */
export class CommandHistogram extends LeanHistogram {
  readonly #connections = new Map<string, Map<string, Series>>()

  observe (connection: string, command: string, seconds: number): void {
    let byCommand = this.#connections.get(connection)
    if (byCommand === undefined) {
      byCommand = new Map()
      this.#connections.set(connection, byCommand)
    }
    let series = byCommand.get(command)
    if (series === undefined) {
      series = this.series({ connection, command })
      byCommand.set(command, series)
    }
    this.record(series, seconds)
  }
}
