// What a case reports: ratio rows (ours / theirs per round, the chart's bars) and figure rows
// (counts, latencies, bytes) that are not a ratio but still have a target or a meaning.
import { ratios, spread, type Comparison, type Sample } from './harness.js'

export interface RatioRow {
  kind: 'ratio'
  label: string
  /** Minimum median ratio the issue asks for; undefined when the row is informational. */
  target: number | undefined
  ratios: number[]
  unit: string
  oursRate: number
  theirsRate: number
  /** Errors seen by either side over all rounds: a comparison with errors is suspect. */
  errors: number
}

export interface FigureRow {
  kind: 'figure'
  label: string
  /** One value per round. */
  values: number[]
  unit: string
  /** Human-readable target, e.g. '= 1' or '≤ 50 ms'. */
  target: string | undefined
  /** Whether the target is met (undefined when there is none). */
  met: boolean | undefined
}

export type Row = RatioRow | FigureRow

export interface CaseResult {
  id: number
  title: string
  rows: Row[]
  notes: string[]
}

/** One ratio row per alternative of a comparison. */
export function ratioRows (comparison: Comparison, alternatives: ReadonlyArray<{ label: string, target: number | undefined }>,
  unit: string): RatioRow[] {
  return alternatives.map((alternative, i) => {
    const theirs = comparison.theirs[i] ?? []
    return {
      kind: 'ratio',
      label: alternative.label,
      target: alternative.target,
      ratios: ratios(comparison.ours, theirs),
      unit,
      oursRate: spread(comparison.ours.map((s) => s.rate)).median,
      theirsRate: spread(theirs.map((s) => s.rate)).median,
      errors: sum(comparison.ours) + sum(theirs)
    }
  })
}

export function figureRow (label: string, values: number[], unit: string, target?: { text: string, met: (median: number) => boolean }): FigureRow {
  return {
    kind: 'figure',
    label,
    values,
    unit,
    target: target?.text,
    met: target === undefined ? undefined : target.met(spread(values).median)
  }
}

export function ratioMet (row: RatioRow): boolean | undefined {
  return row.target === undefined ? undefined : spread(row.ratios).median >= row.target
}

function sum (samples: readonly Sample[]): number {
  return samples.reduce((total, s) => total + s.errors, 0)
}

type CpuKind = 'server' | 'redis'

/**
 * CPU per request, one row per alternative: the ratio is theirs / ours per round (above 1: ours costs
 * less CPU per request), and the Ours/Theirs columns give the µs. The server's, for contenders measured
 * in a server process of their own (Sample.cpuUs); redis-server's, where the case measured it.
 */
export function cpuRows (comparison: Comparison, alternatives: ReadonlyArray<{ label: string, target: number | undefined }>,
  kind: CpuKind = 'server'): RatioRow[] {
  const cpu = (samples: readonly Sample[]): number[] => samples.map((s) => (kind === 'server' ? s.cpuUs : s.redisCpuUs) ?? Number.NaN)
  const ours = cpu(comparison.ours)
  return alternatives.map((alternative, i) => {
    const theirs = cpu(comparison.theirs[i] ?? [])
    return {
      kind: 'ratio',
      label: `${alternative.label}: ${kind === 'server' ? 'server' : 'Redis'} CPU per request (theirs / ours)`,
      target: alternative.target,
      ratios: ours.map((value, round) => (theirs[round] ?? Number.NaN) / value),
      unit: 'µs/req',
      oursRate: spread(ours).median,
      theirsRate: spread(theirs).median,
      errors: sum(comparison.ours) + sum(comparison.theirs[i] ?? [])
    }
  })
}

/**
 * The rows of an HTTP comparison, per alternative: requests per second (ours / theirs), server CPU per
 * request (theirs / ours) and, when the case measured it, Redis CPU per request (theirs / ours).
 */
export function httpRows (comparison: Comparison, alternatives: ReadonlyArray<{ label: string, target: number | undefined, cpuTarget?: number }>): RatioRow[] {
  const rates = ratioRows(comparison, alternatives, 'req/s')
  const server = cpuRows(comparison, alternatives.map((a) => ({ label: a.label, target: a.cpuTarget })))
  const withRedis = comparison.ours.some((s) => s.redisCpuUs !== undefined)
  const redis = withRedis ? cpuRows(comparison, alternatives.map((a) => ({ label: a.label, target: undefined })), 'redis') : []
  return rates.flatMap((row, i) => [row, server[i], redis[i]].filter((r): r is RatioRow => r !== undefined))
}
