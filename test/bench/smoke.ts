// Shared by the bench smoke tests: run some cases briefly, in-process, and check they produced finite
// numbers. Nothing here says anything about speed (no timing assertions).
import type { Test } from 'tap'
import { cases } from '../../bench/cases/index.js'
import { QUICK, type Settings } from '../../bench/harness.js'
import { checkFinite, runCases } from '../../bench/runner.js'

// Shorter than `npm run bench -- --quick`: this only proves the cases still run (one round, no
// warm-up: an HTTP case's load-generator runs, not its length, are what the time goes to).
export const SMOKE: Settings = { ...QUICK, rounds: 1, roundMs: 100, httpRoundMs: 200, warmupMs: 0 }

/** Runs the cases with these ids; those in `mustRun` may not be skipped as unavailable. */
export async function smoke (t: Test, ids: readonly number[], mustRun: readonly number[]): Promise<void> {
  const selected = cases.filter((c) => ids.includes(c.id))
  t.equal(selected.length, ids.length, 'every id names a case')
  const lines: string[] = []
  const { results, skipped } = await runCases(selected, SMOKE, (line) => lines.push(line))
  t.same(checkFinite(results), [], lines.join('\n'))
  t.equal(results.length + skipped.length, selected.length, 'every case either ran or said why not')
  for (const result of results) t.ok(result.rows.length > 0, `case ${result.id} has figures`)
  t.same(skipped.filter((s) => mustRun.includes(s.id)), [], 'these cases are never skipped')
  if (skipped.length > 0) t.comment(`not run: ${skipped.map((s) => `${s.id} (${s.reason})`).join('; ')}`)
}
