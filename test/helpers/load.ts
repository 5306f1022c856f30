// An open-loop load generator for the fault suite: requests start on a fixed schedule whatever the
// server does (a closed loop would slow down with the server and hide its stalls), over keep-alive
// connections, bounded by count and duration. Every request is recorded, including the ones that
// never finished: those are the failures a fault test exists to find.
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { Agent, request } from 'undici'

export interface LoadRequest {
  path: string
  method?: 'GET' | 'POST' | 'HEAD' | 'DELETE'
  headers?: Record<string, string>
  body?: string
  /** A label to group results by (defaults to the path). */
  tag?: string
}

export interface LoadOptions {
  /** http://127.0.0.1:port */
  baseUrl: string
  /** Requests started per second. */
  rate: number
  /** Stop starting requests after this long. */
  durationMs: number
  /** Stop starting requests after this many (default rate × duration). */
  maxRequests?: number
  /** The i-th request to send. */
  next: (i: number) => LoadRequest
  /** A request still running this long after it started is abandoned and counted as unfinished. */
  abandonAfterMs?: number
  /** Keep-alive connections in the pool. Default 32. */
  connections?: number
  /** Called with each result as it settles (to check bodies or collect ids). */
  onResult?: (result: LoadResult) => void
}

export interface LoadResult {
  i: number
  tag: string
  /** ms since the run started, scheduled and actual. */
  scheduledAt: number
  startedAt: number
  /** ms since the run started; undefined for an unfinished request. */
  endedAt: number | undefined
  latencyMs: number | undefined
  status: number | undefined
  error: string | undefined
  unfinished: boolean
  headers: Record<string, string | string[] | undefined>
  body: string
}

export interface LoadSummary {
  sent: number
  finished: number
  unfinished: number
  errors: number
  statuses: Record<string, number>
  p50: number
  p95: number
  p99: number
  max: number
  /** Achieved start rate, requests/s. */
  rate: number
}

export interface LoadRun {
  /** Epoch ms when the run started: results' times are relative to it. */
  t0: number
  results: LoadResult[]
  /**
   * Event-loop delay of this process during the run, ms (p99 and max). Server and load share the
   * process, so on a busy machine this is latency no server change could remove: the tests allow it
   * on top of a latency target unless FAULTS_STRICT=1.
   */
  loopDelay: { p99: number, max: number }
}

/**
 * A latency bound: the target, plus the machine's own noise unless FAULTS_STRICT=1. The noise is the
 * larger of this process' event-loop delay and the p99 of a control route that never touches Redis,
 * measured in the same window: latency Redis did not cause, which a shared 2-core CI box adds.
 */
export function latencyBound (targetMs: number, run: LoadRun, control?: readonly LoadResult[]): number {
  if (process.env['FAULTS_STRICT'] === '1') return targetMs
  const controlP99 = control === undefined ? 0 : summarize(control).p99
  return targetMs + Math.max(run.loopDelay.p99, controlP99)
}

/** Sends `rounds` sequential requests to each path so JIT and connection set-up are not measured. */
export async function warmUp (baseUrl: string, paths: readonly string[], rounds = 30): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    for (const path of paths) {
      const response = await request(baseUrl + path)
      await response.body.dump()
    }
  }
}

export function percentile (sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[index] ?? 0
}

export function summarize (results: readonly LoadResult[]): LoadSummary {
  const latencies = results.flatMap((r) => r.latencyMs === undefined ? [] : [r.latencyMs]).sort((a, b) => a - b)
  const statuses: Record<string, number> = {}
  for (const r of results) {
    const key = r.unfinished ? 'unfinished' : r.status === undefined ? 'error' : String(r.status)
    statuses[key] = (statuses[key] ?? 0) + 1
  }
  const first = results[0]?.startedAt ?? 0
  const last = results.at(-1)?.startedAt ?? 0
  return {
    sent: results.length,
    finished: results.filter((r) => !r.unfinished).length,
    unfinished: results.filter((r) => r.unfinished).length,
    errors: results.filter((r) => r.error !== undefined && !r.unfinished).length,
    statuses,
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    p99: percentile(latencies, 99),
    max: latencies.at(-1) ?? 0,
    rate: last > first ? Math.round((results.length - 1) / ((last - first) / 1000)) : 0
  }
}

/** One line for t.comment: counts, statuses and percentiles. */
export function describeSummary (name: string, s: LoadSummary): string {
  return `${name}: sent ${s.sent} at ${s.rate}/s, finished ${s.finished}, unfinished ${s.unfinished}, transport errors ${s.errors}, ` +
    `statuses ${JSON.stringify(s.statuses)}, p50 ${s.p50} ms, p95 ${s.p95} ms, p99 ${s.p99} ms, max ${s.max} ms`
}

/** Runs the load and resolves when every request has finished or been abandoned. */
export async function runLoad (options: LoadOptions): Promise<LoadRun> {
  const abandonAfterMs = options.abandonAfterMs ?? 10_000
  const maxRequests = options.maxRequests ?? Math.ceil(options.rate * options.durationMs / 1000)
  const intervalMs = 1000 / options.rate
  const agent = new Agent({ connections: options.connections ?? 32, keepAliveTimeout: 10_000, pipelining: 1 })
  const loop = monitorEventLoopDelay({ resolution: 10 })
  loop.enable()
  const t0 = Date.now()
  const results: LoadResult[] = []
  const pending: Array<Promise<void>> = []

  const fire = async (i: number, scheduledAt: number): Promise<void> => {
    const spec = options.next(i)
    const startedAt = Date.now() - t0
    const result: LoadResult = {
      i, tag: spec.tag ?? spec.path, scheduledAt, startedAt, endedAt: undefined, latencyMs: undefined, status: undefined, error: undefined, unfinished: false, headers: {}, body: ''
    }
    results.push(result)
    const abort = new AbortController()
    const timer = setTimeout(() => abort.abort(), abandonAfterMs)
    try {
      const response = await request(options.baseUrl + spec.path, {
        dispatcher: agent,
        method: spec.method ?? 'GET',
        headers: spec.headers,
        body: spec.body,
        signal: abort.signal
      })
      result.body = await response.body.text()
      result.status = response.statusCode
      result.headers = response.headers
    } catch (err) {
      if (abort.signal.aborted) result.unfinished = true
      result.error = (err as Error).message
    } finally {
      clearTimeout(timer)
      if (!result.unfinished) {
        result.endedAt = Date.now() - t0
        result.latencyMs = result.endedAt - startedAt
      }
      options.onResult?.(result)
    }
  }

  // Schedule against the clock, not against the previous timer: a late tick sends what it owes.
  await new Promise<void>((resolve) => {
    let sent = 0
    const tick = (): void => {
      const elapsed = Date.now() - t0
      while (sent < maxRequests && sent * intervalMs <= elapsed && elapsed < options.durationMs) {
        pending.push(fire(sent, Math.round(sent * intervalMs)))
        sent++
      }
      if (sent >= maxRequests || elapsed >= options.durationMs) {
        resolve()
        return
      }
      setTimeout(tick, Math.max(1, Math.min(intervalMs, 10)))
    }
    tick()
  })
  await Promise.all(pending)
  await agent.close().catch(() => {})
  loop.disable()
  // The histogram counts from its 10 ms sampling interval; report the delay beyond it.
  const lag = (ns: number): number => Math.max(0, Math.round(ns / 1e6 - 10))
  return { t0, results, loopDelay: { p99: lag(loop.percentile(99)), max: lag(loop.max) } }
}
