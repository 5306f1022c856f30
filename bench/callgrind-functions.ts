// Instructions by function from a callgrind dump of a node process: what `npm run bench:instructions
// -- --functions N` prints per contender. Callgrind names JIT-compiled JavaScript only by address, so
// node runs with --perf-basic-prof and each address is looked up in the /tmp/perf-<pid>.map it writes
// (code freed and its address reused: the newest entry wins). Self cost only: a function's own
// instructions, not those of what it calls (V8 inlines small callees into their callers, so compare
// frames between two builds of one contender, not across contenders).
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

/** `JS:*'name file:///…/node_modules/pkg/file.js:1:2` → `JS:name pkg/file.js:1:2`; the repository's own files relative to it. */
function shortName (name: string): string {
  return name.replace(/^JS:[~^+*]'?/, 'JS:').replace('file://', '').replace(/ \/[^ ]*\/node_modules\//, ' ').replace(` ${ROOT}`, ' ')
}

interface CodeRange { start: number, end: number, name: string }

function perfMap (file: string): CodeRange[] {
  const newest = new Map<number, CodeRange>()
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const [start, size, ...name] = line.split(' ')
    if (start === undefined || size === undefined || name.length === 0) continue
    const at = parseInt(start, 16)
    newest.set(at, { start: at, end: at + parseInt(size, 16), name: name.join(' ') })
  }
  return [...newest.values()].sort((a, b) => a.start - b.start)
}

function lookup (ranges: CodeRange[], address: number): string | undefined {
  let low = 0
  let high = ranges.length - 1
  while (low <= high) {
    const middle = (low + high) >> 1
    const range = ranges[middle]!
    if (address < range.start) high = middle - 1
    else if (address >= range.end) low = middle + 1
    else return range.name
  }
  return undefined
}

/**
 * Self instructions per function in `dump` (written with --dump-instr=yes --compress-pos=no
 * --compress-strings=no), divided by `per`, the `top` largest. JavaScript frames are named as the
 * perf map names them (`JS:*name file:line`; the tier mark dropped, so one function's tiers add up).
 */
export function topFunctions (dump: string, perfMapFile: string, per: number, top: number): Array<[string, number]> {
  const ranges = perfMap(perfMapFile)
  const cost = new Map<string, number>()
  let fn = ''
  let afterCall = false
  for (const line of readFileSync(dump, 'utf8').split('\n')) {
    if (line.startsWith('fn=')) { fn = line.slice(3); continue }
    if (line.startsWith('calls=')) { afterCall = true; continue }
    if (!line.startsWith('0x')) continue
    // The line after calls= is the call's inclusive cost, not this function's own.
    if (afterCall) { afterCall = false; continue }
    const [address, , instructions] = line.split(' ')
    const jit = fn.startsWith('0x') ? lookup(ranges, parseInt(address!, 16)) : undefined
    // C++ frames without their parameter lists (V8's are long).
    const name = jit === undefined ? fn.replace(/\(.*$/, '') : shortName(jit)
    cost.set(name, (cost.get(name) ?? 0) + Number(instructions))
  }
  return [...cost].map(([name, total]): [string, number] => [name, total / per]).sort((a, b) => b[1] - a[1]).slice(0, top)
}
