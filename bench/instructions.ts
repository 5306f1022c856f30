// Instructions per request, counted by valgrind's callgrind in each bench server process: a figure
// that does not move with whatever else the machine runs, where req/s and CPU µs on this shared
// 2-core machine drift by ±10 % between rounds (issue 29: a 1 µs target cannot be read through that).
// It counts user-space instructions only (not the kernel's socket work, which both sides of a
// comparison share) and not cycles (cache misses, IPC), so it complements `npm run bench`, never
// replaces it.
//
// Each contender: the server (bench/server-child.ts, the built package as `npm run bench` runs it)
// starts under callgrind with counting off (the suite's apps with a long command timeout and cache
// syncInterval, see measure()); WARM requests let V8 optimise the hot path; counting goes
// on for N requests (autocannon, in this process, 10 connections); then for IDLE_S seconds with no
// requests, which gives the rate of the server's own timers (health checks, syncs), subtracted from
// the first figure. Under valgrind a request takes ~50× longer, so those timers would otherwise add
// several thousand instructions to every request, which at full speed they spread over ~50× more.
// Repeatable within ~1 % (raw route 68,295–69,515; Redis-tier hit 137,937–138,776 over three runs,
// one of them with four servers under valgrind on the two cores).
//
//   npm run bench:instructions                     every comparison
//   npm run bench:instructions -- --only 11        one case's
//   npm run bench:instructions -- --only 6 --functions 30   and each contender's 30 costliest functions
//   npm run bench:instructions -- --match '1,000 clients'  the comparisons whose label has that text
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { startRedis } from './environment.js'
import { topFunctions } from './callgrind-functions.js'
import type { ServerSpec } from './server-apps.js'
import type { ServerHello } from './server-child.js'

/** --functions N: also print each contender's N costliest functions (callgrind-functions.ts). */
const FUNCTIONS = process.argv.includes('--functions') ? Number(process.argv[process.argv.indexOf('--functions') + 1]) : 0
const WARM = 30_000
const N = 4_000
const IDLE_S = 10
const CONNECTIONS = 10

interface Contender { label: string, spec: Omit<ServerSpec, 'redisUrl'>, path: string, forwardedFor?: boolean }
interface Comparison { id: number, label: string, ours: Contender, theirs: Contender }

const suitePlain: Contender = { label: 'suite /plain', spec: { app: 'suite' }, path: '/plain' }
const comparisons: Comparison[] = [
  { id: 1, label: 'route-cache hit vs raw route', ours: { label: 'suite /cached', spec: { app: 'suite' }, path: '/cached' }, theirs: { label: 'raw /plain', spec: { app: 'raw' }, path: '/plain' } },
  { id: 6, label: 'exact limit vs unlimited', ours: { label: 'exact /limited', spec: { app: 'suite-rate-limit' }, path: '/limited' }, theirs: { label: '/unlimited', spec: { app: 'suite-rate-limit' }, path: '/unlimited' } },
  { id: 6, label: 'batched limit vs unlimited', ours: { label: 'batched /limited', spec: { app: 'suite-rate-limit', env: { RATE_LIMIT_SYNC: 'batched' } }, path: '/limited' }, theirs: { label: '/unlimited', spec: { app: 'suite-rate-limit' }, path: '/unlimited' } },
  { id: 6, label: 'batched limit vs the route with its two headers set by hand', ours: { label: 'batched /limited', spec: { app: 'suite-rate-limit', env: { RATE_LIMIT_SYNC: 'batched' } }, path: '/limited' }, theirs: { label: '/headers', spec: { app: 'suite-rate-limit' }, path: '/headers' } },
  { id: 6, label: 'two RateLimit headers set by hand vs unlimited', ours: { label: '/headers', spec: { app: 'suite-rate-limit' }, path: '/headers' }, theirs: { label: '/unlimited', spec: { app: 'suite-rate-limit' }, path: '/unlimited' } },
  { id: 6, label: 'exact, 1,000 clients vs unlimited', ours: { label: 'exact /limited, XFF', spec: { app: 'suite-rate-limit', trustProxy: ['127.0.0.1'] }, path: '/limited', forwardedFor: true }, theirs: { label: '/unlimited, XFF', spec: { app: 'suite-rate-limit', trustProxy: ['127.0.0.1'] }, path: '/unlimited', forwardedFor: true } },
  { id: 6, label: 'exact, 1,000 clients vs @fastify/rate-limit', ours: { label: 'exact /limited, XFF', spec: { app: 'suite-rate-limit', trustProxy: ['127.0.0.1'] }, path: '/limited', forwardedFor: true }, theirs: { label: 'official /limited, XFF', spec: { app: 'official-rate-limit', trustProxy: ['127.0.0.1'] }, path: '/limited', forwardedFor: true } },
  { id: 10, label: 'suite plain route vs bare Fastify', ours: suitePlain, theirs: { label: 'raw /plain', spec: { app: 'raw' }, path: '/plain' } },
  { id: 11, label: 'Redis-tier hit vs hand-written ioredis', ours: { label: 'suite-cache /items/{i}', spec: { app: 'suite-cache', keys: 1_000 }, path: '/items/{i}' }, theirs: { label: 'hand-cache /items/{i}', spec: { app: 'hand-cache', keys: 1_000 }, path: '/items/{i}' } },
  { id: 11, label: 'memory-tier hit vs the route uncached', ours: { label: 'suite-cache /hot', spec: { app: 'suite-cache', keys: 1_000 }, path: '/hot' }, theirs: { label: 'suite-cache /plain', spec: { app: 'suite-cache', keys: 1_000 }, path: '/plain' } },
  { id: 11, label: 'memory-tier hit vs bentocache', ours: { label: 'suite-cache /hot', spec: { app: 'suite-cache', keys: 1_000 }, path: '/hot' }, theirs: { label: 'bento-cache /hot', spec: { app: 'bento-cache' }, path: '/hot' } }
]

const serverChild = fileURLToPath(new URL('./server-child.ts', import.meta.url))

/** `amount` requests; `{i}` in the path and the client address taken round-robin over 1,000. Answers the failed ones. */
async function requests (url: string, contender: Contender, amount: number): Promise<number> {
  let i = 0
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    amount,
    requests: [{
      setupRequest: (request) => {
        const n = i++ % 1_000
        request.path = contender.path.replace('{i}', String(n))
        if (contender.forwardedFor === true) request.headers = { ...request.headers, 'x-forwarded-for': `10.0.${n >> 8}.${n & 255}` }
        return request
      }
    }]
  })
  return result.non2xx + result.errors
}

async function callgrindControl (pid: number, ...args: string[]): Promise<void> {
  const control = spawn('callgrind_control', [...args, String(pid)], { stdio: 'ignore' })
  const [code] = await once(control, 'exit') as [number | null]
  if (code !== 0) throw new Error(`callgrind_control ${args.join(' ')} exited ${String(code)}`)
}

function totalOf (dir: string, dump: number): number {
  const file = readdirSync(dir).find((name) => name.endsWith(`.${dump}`))
  if (file === undefined) throw new Error(`callgrind dump ${dump} missing in ${dir}`)
  const line = readFileSync(path.join(dir, file), 'utf8').split('\n').find((l) => l.startsWith('totals:'))
  return Number(line?.split(/\s+/)[1])
}

/** Instructions per request of one contender, the server's idle rate subtracted. */
async function measure (contender: Contender, redisUrl: string): Promise<{ perRequest: number, failed: number }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'frs-callgrind-'))
  // Under valgrind every command takes ~50× longer: the suite's default command timeout would turn
  // hits into timeouts (another path), so the suite's apps get a generous one.
  // Likewise, a memory-tier copy is due for a look at Redis once per syncInterval, and the requests
  // that arrive while that look is in flight take the asynchronous path: at full speed a few per
  // second among tens of thousands, under valgrind a share that grows with how slow the machine is
  // (the route-cache hit read 77,564 alone and 98,289 beside another server). A long interval keeps
  // the figure to the hit path a deployment pays on nearly every request.
  const suite = contender.spec.app.startsWith('suite')
  // The suite's background work (a PING and an INFO every REDIS_PING_INTERVAL, the session expiry
  // sweep) runs at wall-clock rates, ~1.5 M instructions a second under valgrind, and is subtracted as
  // the idle rate. It is left at its defaults: spaced out (a minute), it fell in one window and not the
  // other often enough to move figures by 10 %.
  const env = suite ? { REDIS_COMMAND_TIMEOUT: '10s', ...contender.spec.env } : contender.spec.env
  const spec: ServerSpec = { ...contender.spec, ...(env === undefined ? {} : { env }), ...(suite ? { cache: { syncInterval: '1h' } } : {}), redisUrl }
  const byFunction = FUNCTIONS > 0 ? ['--dump-instr=yes', '--compress-pos=no', '--compress-strings=no'] : []
  const child: ChildProcess = spawn('valgrind', ['-q', '--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${dir}/cg.%p`, ...byFunction,
    process.execPath, ...(FUNCTIONS > 0 ? ['--perf-basic-prof'] : []), '--import', 'tsx', serverChild, JSON.stringify(spec)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
  try {
    const [hello] = await once(child, 'message') as [ServerHello]
    const url = hello.url
    const pid = child.pid!
    await requests(url, contender, WARM)
    await callgrindControl(pid, '-z')
    await callgrindControl(pid, '-i', 'on')
    let started = performance.now()
    const failed = await requests(url, contender, N)
    const busyS = (performance.now() - started) / 1000
    await callgrindControl(pid, '-d')
    started = performance.now()
    await new Promise((resolve) => setTimeout(resolve, IDLE_S * 1000))
    const idleS = (performance.now() - started) / 1000
    await callgrindControl(pid, '-d')
    await callgrindControl(pid, '-i', 'off')
    const idlePerSecond = totalOf(dir, 2) / idleS
    if (FUNCTIONS > 0) {
      const dump = path.join(dir, readdirSync(dir).find((name) => name.endsWith('.1'))!)
      console.log(`\n${contender.label}: instructions per request by function (self, idle not subtracted)`)
      for (const [name, perRequest] of topFunctions(dump, `/tmp/perf-${pid}.map`, N, FUNCTIONS)) console.log(`${Math.round(perRequest).toString().padStart(8)}  ${name}`)
      rmSync(`/tmp/perf-${pid}.map`, { force: true })
    }
    return { perRequest: (totalOf(dir, 1) - idlePerSecond * busyS) / N, failed }
  } finally {
    const exited = once(child, 'exit')
    if (child.connected) child.disconnect() // server-child closes its app and exits
    setTimeout(() => child.kill('SIGKILL'), 10_000).unref()
    await exited
    rmSync(dir, { recursive: true, force: true })
  }
}

const only = process.argv.includes('--only') ? Number(process.argv[process.argv.indexOf('--only') + 1]) : undefined
/** --match TEXT: only the comparisons whose label contains TEXT (with or without --only). */
const match = process.argv.includes('--match') ? process.argv[process.argv.indexOf('--match') + 1] : undefined
const chosen = comparisons.filter((c) => (only === undefined || c.id === only) && (match === undefined || c.label.includes(match)))
const keyOf = (c: Contender): string => JSON.stringify([c.spec, c.path, c.forwardedFor])
const contenders = new Map(chosen.flatMap((c) => [c.ours, c.theirs]).map((c) => [keyOf(c), c]))
const redis = await startRedis()
const measured = new Map<string, { perRequest: number, failed: number }>()
try {
  // Two servers at a time: counts do not depend on the machine's load (the Redis-tier path's
  // per-turn MGET does depend on timing, which moves its figure by a few per cent).
  const queue = [...contenders]
  await Promise.all([0, 1].map(async () => {
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      const [key, contender] = next
      measured.set(key, await measure(contender, redis.url))
    }
  }))
} finally {
  await redis.stop()
}
console.log(`callgrind, ${N.toLocaleString('en')} requests after ${WARM.toLocaleString('en')} warm-up, ${CONNECTIONS} connections, Node ${process.version}\n`)
console.log('| Case | Comparison | Ours (instructions/request) | Theirs | Theirs / ours | Failed requests (ours, theirs) |')
console.log('| --- | --- | ---: | ---: | ---: | ---: |')
for (const comparison of chosen) {
  const ours = measured.get(keyOf(comparison.ours))!
  const theirs = measured.get(keyOf(comparison.theirs))!
  console.log(`| ${comparison.id} | ${comparison.label} (${comparison.ours.label} / ${comparison.theirs.label}) | ${Math.round(ours.perRequest).toLocaleString('en')} | ` +
    `${Math.round(theirs.perRequest).toLocaleString('en')} | ${(theirs.perRequest / ours.perRequest).toFixed(3)} | ${ours.failed}, ${theirs.failed} |`)
}
