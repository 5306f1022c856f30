// What tracing costs per operation, in process, no Redis: a cache memory hit, and an HTTP cache hit
// and a rate-limit decision through app.inject, each with tracing off, then on (the real OpenTelemetry
// SDK's batch processor into an in-memory exporter emptied as it goes). Not part of `npm run bench`; a quick figure for README:
//   node --import tsx bench/tracing-cost.ts
import { context, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { BasicTracerProvider, BatchSpanProcessor, InMemorySpanExporter } from '@opentelemetry/sdk-trace-base'
import { createCache, enableTracing } from '../index.js'
import { buildServer } from '../server.js'

const exporter = new InMemorySpanExporter()
// The batch processor, as production runs it (the simple one, for tests, keeps growing at this rate).
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(exporter)] }))
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())

/** The best of 5 rounds, tracing off and on in turn (so drift and noise hit both alike); ns per op. */
async function perOp (n: number, op: () => Promise<unknown>): Promise<{ off: number, on: number }> {
  for (let i = 0; i < n / 10; i++) await op() // warm-up
  const best = { off: Infinity, on: Infinity }
  for (let round = 0; round < 10; round++) {
    const mode = round % 2 === 0 ? 'off' : 'on'
    const tracing = mode === 'on' ? enableTracing() : undefined
    const started = process.hrtime.bigint()
    for (let i = 0; i < n; i++) {
      await op()
      if (i % 1000 === 0) exporter.reset()
    }
    best[mode] = Math.min(best[mode], Number(process.hrtime.bigint() - started) / n)
    tracing?.disable()
  }
  return best
}

const cache = createCache()
await cache.set('k', { id: 1 })
const app = await buildServer({ env: { NODE_ENV: 'development', LOG_LEVEL: 'silent' }, processEnv: false })
app.get('/cached', { config: { cache: { ttl: '1m' } } }, async () => ({ ok: true }))
app.get('/limited', { config: { rateLimit: { max: 1e9, timeWindow: '1 minute' } } }, async () => ({ ok: true }))
await app.ready()

const cases: Array<[string, number, () => Promise<unknown>]> = [
  ['cache.get, memory hit', 50_000, () => cache.get('k')],
  // inject keeps ~10 KB per request until the process ends (a bare Fastify app too): few rounds.
  ['HTTP cache hit (inject)', 2_000, () => app.inject('/cached')],
  ['rate-limit decision (inject)', 2_000, () => app.inject('/limited')]
]
for (const [name, n, op] of cases) {
  const { off, on } = await perOp(n, op)
  console.log(`${name.padEnd(30)} off ${(off / 1000).toFixed(2)} µs   on ${(on / 1000).toFixed(2)} µs   +${((on - off) / 1000).toFixed(2)} µs`)
}
await app.close()
