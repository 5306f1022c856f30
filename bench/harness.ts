// The measuring core: a contender is anything that can be run for a while and say how fast it went;
// compare() runs ours and the alternatives in alternating rounds (ours, alt1, alt2, ours, alt1, …) so
// that drift on a shared machine hits every contender alike, and keeps the per-round ratios.
import { performance } from 'node:perf_hooks'

export interface Settings {
  quick: boolean
  /** Rounds of the alternation; ratios are taken per round. */
  rounds: number
  /** Length of one in-process measurement (closed loop). */
  roundMs: number
  /** Length of one HTTP measurement (autocannon). */
  httpRoundMs: number
  /** Run once per contender, unmeasured, before the rounds. */
  warmupMs: number
  /** Operations kept in flight by the in-process closed loop. */
  concurrency: number
  /** autocannon connections. */
  connections: number
}

export const QUICK: Settings = { quick: true, rounds: 2, roundMs: 200, httpRoundMs: 500, warmupMs: 100, concurrency: 32, connections: 20 }
export const FULL: Settings = { quick: false, rounds: 7, roundMs: 1_500, httpRoundMs: 2_500, warmupMs: 700, concurrency: 32, connections: 20 }

/** One measurement of one contender. */
export interface Sample {
  /** Operations or requests per second. */
  rate: number
  /** 99th percentile latency, ms. */
  p99: number
  /** Failed operations, or non-2xx responses and socket errors. */
  errors: number
  /** HTTP contenders in a server process of their own: the server's CPU time per request, µs (user + system, all threads). */
  cpuUs?: number
  /** Given the case's Redis: redis-server's CPU time per request, µs. */
  redisCpuUs?: number
}

export interface Contender {
  name: string
  measure: (ms: number) => Promise<Sample>
}

export interface Comparison {
  ours: Sample[]
  theirs: Sample[][]
}

/** Warm every contender, then `rounds` rounds in a fixed order; index r of every array is round r. */
export async function compare (settings: Settings, ours: Contender, theirs: readonly Contender[],
  ms: number = settings.roundMs): Promise<Comparison> {
  const all = [ours, ...theirs]
  // No warm-up in the CI smoke (warmupMs 0), which only checks that the cases run.
  if (settings.warmupMs > 0) for (const contender of all) await contender.measure(settings.warmupMs)
  const samples: Sample[][] = all.map(() => [])
  for (let round = 0; round < settings.rounds; round++) {
    for (const [i, contender] of all.entries()) samples[i]?.push(await contender.measure(ms))
  }
  return { ours: samples[0] ?? [], theirs: samples.slice(1) }
}

/** How long the closed loop may keep the event loop on microtasks before every worker yields once. */
const YIELD_EVERY_MS = 5

/**
 * Keeps `concurrency` calls of `op` in flight for `ms` and counts completions. `op` gets a running
 * index so callers can spread keys. Latency is recorded per call for the p99.
 * Operations that answer from memory resolve without leaving the microtask queue; a server would
 * still turn its event loop between requests. So every YIELD_EVERY_MS all workers wait for one
 * setImmediate together: timers and sockets (the health PING, the invalidation bus) run as they would.
 */
export function closedLoop (op: (i: number) => Promise<unknown>, concurrency: number): (ms: number) => Promise<Sample> {
  let next = 0
  return async (ms) => {
    const latencies: number[] = []
    let errors = 0
    const start = performance.now()
    const end = start + ms
    let yieldAt = start + YIELD_EVERY_MS
    let turn: Promise<void> | undefined
    const worker = async (): Promise<void> => {
      while (performance.now() < end) {
        if (turn !== undefined || performance.now() >= yieldAt) {
          turn ??= new Promise((resolve) => {
            setImmediate(() => {
              turn = undefined
              yieldAt = performance.now() + YIELD_EVERY_MS
              resolve()
            })
          })
          await turn
        }
        const began = performance.now()
        try {
          await op(next++)
        } catch {
          errors++
        }
        latencies.push(performance.now() - began)
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker))
    const elapsed = (performance.now() - start) / 1000
    return { rate: latencies.length / elapsed, p99: percentile(latencies, 0.99), errors }
  }
}

export function percentile (values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = Float64Array.from(values).sort()
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN
}

export function median (values: readonly number[]): number {
  return percentile(values, 0.5)
}

export function spread (values: readonly number[]): { min: number, median: number, max: number } {
  return { min: Math.min(...values), median: median(values), max: Math.max(...values) }
}

/** Per-round ratio ours/theirs of the rates. */
export function ratios (ours: readonly Sample[], theirs: readonly Sample[]): number[] {
  return ours.map((sample, i) => sample.rate / (theirs[i]?.rate ?? Number.NaN))
}

/** Runs fn(0 … n-1), `size` at a time: warm-ups fast without a thousand commands queued at once. */
export async function inChunks (n: number, size: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  for (let start = 0; start < n; start += size) {
    await Promise.all(Array.from({ length: Math.min(size, n - start) }, (_, j) => fn(start + j)))
  }
}
