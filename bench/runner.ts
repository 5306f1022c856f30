// Runs cases one after another (each owns its Redis and apps and closes them) and checks that each
// produced finite numbers: the only thing quick mode and its test assert.
import { performance } from 'node:perf_hooks'
import type { BenchCase } from './cases/index.js'
import { CaseUnavailableError } from './environment.js'
import { spread, type Settings } from './harness.js'
import { fmt, type Skipped } from './report.js'
import type { CaseResult } from './results.js'

export interface Run {
  results: CaseResult[]
  skipped: Skipped[]
}

export async function runCases (selected: readonly BenchCase[], settings: Settings, log: (line: string) => void): Promise<Run> {
  const run: Run = { results: [], skipped: [] }
  for (const benchCase of selected) {
    const started = performance.now()
    log(`case ${benchCase.id}: ${benchCase.title} …`)
    try {
      const result = await benchCase.run(settings)
      run.results.push(result)
      for (const row of result.rows) {
        const s = spread(row.kind === 'ratio' ? row.ratios : row.values)
        log(`  ${row.label}: median ${fmt(s.median)} (min ${fmt(s.min)}, max ${fmt(s.max)})${row.kind === 'figure' ? ` ${row.unit}` : ''}`)
      }
    } catch (err) {
      if (err instanceof CaseUnavailableError) {
        run.skipped.push({ id: benchCase.id, title: benchCase.title, reason: err.message })
        log(`  not run: ${err.message}`)
      } else {
        run.results.push({ id: benchCase.id, title: benchCase.title, rows: [], notes: [`failed: ${(err as Error).stack ?? String(err)}`] })
        log(`  failed: ${(err as Error).stack ?? String(err)}`)
      }
    }
    log(`  (${((performance.now() - started) / 1000).toFixed(1)} s)`)
  }
  return run
}

/** Problems that make a run worthless: a case that failed, produced no rows, or a non-finite number. */
export function checkFinite (results: readonly CaseResult[]): string[] {
  const problems: string[] = []
  for (const result of results) {
    if (result.rows.length === 0) problems.push(`case ${result.id}: no figures (${result.notes.join(' ')})`)
    for (const row of result.rows) {
      const values = row.kind === 'ratio' ? row.ratios : row.values
      if (values.length === 0 || values.some((v) => !Number.isFinite(v))) {
        problems.push(`case ${result.id}: ${row.label}: non-finite values ${JSON.stringify(values)}`)
      }
    }
  }
  return problems
}
