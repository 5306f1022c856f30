// npm run bench                      full mode: figures; writes BENCHMARKS.md, bench/results.svg, bench/results.json
// npm run bench -- --quick           CI smoke: every case briefly, no claims about speed; writes nothing
// npm run bench -- --only 2,3        some cases (prints, writes nothing unless --out)
// npm run bench -- --out FILE.md     write the report there (the SVG and JSON next to it)
// npm run bench -- --report FILE.json  rebuild the report from a saved run (after editing bench/notes.ts)
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { cases } from './cases/index.js'
import { machine, ROOT } from './environment.js'
import { FULL, QUICK } from './harness.js'
import { missNotes } from './notes.js'
import { markdown, svgChart, type Report } from './report.js'
import { checkFinite, runCases } from './runner.js'

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    out: { type: 'string' },
    report: { type: 'string' }
  }
})

let report: Report
let out = values.out
if (values.report !== undefined) {
  report = { ...JSON.parse(readFileSync(values.report, 'utf8')) as Report, missNotes }
  out ??= path.join(ROOT, 'BENCHMARKS.md')
} else {
  const settings = values.quick ? QUICK : FULL
  const only = values.only === undefined ? undefined : new Set(values.only.split(',').map(Number))
  const started = performance.now()
  const { results, skipped } = await runCases(cases.filter((c) => only === undefined || only.has(c.id)), settings,
    (line) => process.stdout.write(`${line}\n`))
  const args = process.argv.slice(2).join(' ')
  report = {
    machine: machine(),
    command: `npm run bench${args === '' ? '' : ` -- ${args}`}`,
    mode: settings.quick ? 'quick (smoke: figures are not meaningful)' : 'full',
    results,
    skipped,
    missNotes,
    elapsedS: (performance.now() - started) / 1000
  }
  if (!settings.quick && only === undefined) out ??= path.join(ROOT, 'BENCHMARKS.md')
}

const problems = checkFinite(report.results)
const base = out === undefined ? undefined : (path.basename(out) === 'BENCHMARKS.md' ? path.join(path.dirname(out), 'bench', 'results') : out.replace(/\.md$/, ''))
const svgFile = base === undefined ? undefined : `${base}.svg`
const text = markdown(report, svgFile === undefined || out === undefined ? 'bench/results.svg' : path.relative(path.dirname(out), svgFile))
process.stdout.write(`\n${text}\n`)
if (out !== undefined && base !== undefined && svgFile !== undefined) {
  writeFileSync(out, text)
  writeFileSync(svgFile, svgChart(report.results))
  if (values.report === undefined) writeFileSync(`${base}.json`, `${JSON.stringify({ ...report, missNotes: {} }, null, 2)}\n`)
  process.stdout.write(`wrote ${path.relative(process.cwd(), out)} and ${path.relative(process.cwd(), svgFile)}\n`)
}
if (problems.length > 0) {
  process.stderr.write(`bench: ${problems.length} problem(s):\n${problems.map((p) => `  ${p}`).join('\n')}\n`)
  process.exitCode = 1
}
// Clients of the alternatives may keep sockets or timers; every case closed its own, so end here.
process.exit()
