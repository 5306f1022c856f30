// A long outage at 200 req/s (issue 9): ioredis queues nothing (no offline queue), so the commands a
// client holds stay bounded and the app's memory does not grow with the outage. The app runs in a
// child process so its RSS is its own, not the load generator's. CI runs 10 s; FAULTS_FULL=1 runs 30 s.
import t from 'tap'
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { useRedis, sleep, TS_NODE_ARGS } from '../helpers/index.js'
import { describeSummary, runLoad, summarize, warmUp } from '../helpers/load.js'

const FULL = process.env['FAULTS_FULL'] === '1'
const OUTAGE_MS = FULL ? 30_000 : 10_000
const BEFORE_MS = 2_000
const AFTER_MS = 3_000
const RATE = 200
const MB = 1024 * 1024

interface Memory { rss: number, offline: number, inFlight: number }

async function startChildApp (t: { teardown: (fn: () => unknown) => void }, env: Record<string, string>): Promise<string> {
  const child = spawn(process.execPath, ['--expose-gc', ...TS_NODE_ARGS, 'test/helpers/fault-app-child.ts'], {
    env: { ...process.env, FAULT_APP_ENV: JSON.stringify(env) },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(() => new Promise<void>((resolve) => {
    if (child.exitCode !== null) return resolve()
    child.once('exit', () => resolve())
    child.kill('SIGTERM')
    setTimeout(() => child.kill('SIGKILL'), 5_000).unref()
  }))
  const lines = createInterface({ input: child.stdout })
  for await (const line of lines) {
    if (line.startsWith('{"baseUrl"')) return (JSON.parse(line) as { baseUrl: string }).baseUrl
  }
  throw new Error('the fault app child exited before listening')
}

t.test(`${OUTAGE_MS / 1000} s outage at ${RATE} req/s`, async (t) => {
  if (FULL) t.setTimeout(180_000)
  const redis = await useRedis(t)
  const baseUrl = await startChildApp(t, { REDIS_URL: redis.url })
  const memory = async (): Promise<Memory> => await (await fetch(`${baseUrl}/__memory`)).json() as Memory
  await warmUp(baseUrl, ['/cached/warm', '/redis/warm', '/write/warm', '/plain'], 100)
  const baseline = (await memory()).rss

  const samples: Memory[] = []
  const state = { sampling: true }
  const sampler = (async () => {
    while (state.sampling) {
      samples.push(await memory().catch(() => ({ rss: 0, offline: 0, inFlight: 0 })))
      await sleep(500)
    }
  })()
  const outage = (async () => {
    await sleep(BEFORE_MS)
    await redis.kill()
    await sleep(OUTAGE_MS)
    await redis.restart()
  })()
  const run = await runLoad({
    baseUrl,
    rate: RATE,
    durationMs: BEFORE_MS + OUTAGE_MS + AFTER_MS,
    abandonAfterMs: 5_000,
    connections: 256,
    next: (i) => {
      const slot = i % 4
      if (slot === 0) return { path: `/cached/${i % 1000}`, tag: 'cached' }
      if (slot === 1) return { path: `/redis/${i % 1000}`, tag: 'redis' }
      if (slot === 2) return { path: `/write/${i % 1000}`, method: 'POST', body: 'x'.repeat(100), headers: { 'content-type': 'text/plain' }, tag: 'write' }
      return { path: '/plain', tag: 'plain' }
    }
  })
  await outage
  await sleep(2_000)
  state.sampling = false
  await sampler
  const after = (await memory()).rss
  const peak = Math.max(baseline, ...samples.map((s) => s.rss))
  const maxQueued = Math.max(0, ...samples.map((s) => s.offline + s.inFlight))
  const growth = (peak - baseline) / MB
  const residual = (after - baseline) / MB
  const summary = summarize(run.results)
  t.comment(describeSummary('all', summary))
  t.comment(`app process: RSS baseline ${(baseline / MB).toFixed(1)} MB, peak +${growth.toFixed(1)} MB, after recovery and GC +${residual.toFixed(1)} MB; commands held by ioredis max ${maxQueued}`)

  t.equal(summary.unfinished, 0, 'no request left unfinished')
  t.ok(maxQueued <= 1_000, `queued commands ${maxQueued} ≤ 1000`)
  t.ok(growth <= 30, `app RSS grew by ${growth.toFixed(1)} MB ≤ 30 MB`)
  t.ok(residual <= 10, `app RSS after recovery +${residual.toFixed(1)} MB ≤ 10 MB over baseline`)
  t.equal(run.results.filter((r) => r.tag === 'cached' && r.status !== 200).length, 0, 'cache-only requests all 200')
})
