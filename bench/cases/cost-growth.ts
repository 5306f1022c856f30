// Case 9: does a getOrSet hit get slower as Redis fills? Three instances of our app on one server,
// each on its own logical database holding 1 k, 100 k or 1 M keys (DEBUG POPULATE), measured in
// alternating rounds. Then the memory tier's heap per 10 k entries, beside bentocache's memory tier.
import { runInNewContext } from 'node:vm'
import v8 from 'node:v8'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { BentoCache, bentostore } from 'bentocache'
import { memoryDriver } from 'bentocache/drivers/memory'
import { createCache } from '../../lib/cache/index.js'
import { buildOurApp, payload, startRedis } from '../environment.js'
import { closedLoop, compare, inChunks, spread, type Settings } from '../harness.js'
import { figureRow, type CaseResult } from '../results.js'

const ENTRIES = 10_000

/** global.gc without requiring node --expose-gc. */
function collector (): () => void {
  v8.setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  return () => { gc(); gc() }
}

async function heapDelta (fill: () => Promise<unknown>): Promise<number> {
  const gc = collector()
  gc()
  await sleep(20)
  gc()
  const before = process.memoryUsage().heapUsed
  const keep = await fill()
  gc()
  await sleep(20)
  gc()
  const after = process.memoryUsage().heapUsed
  // Keep the caches reachable until after the measurement.
  if (keep === undefined) throw new Error('nothing filled')
  return after - before
}

export async function costGrowth (settings: Settings): Promise<CaseResult> {
  const sizes = settings.quick ? [1_000, 5_000, 20_000] : [1_000, 100_000, 1_000_000]
  const HOT_KEYS = settings.quick ? 200 : 1_000
  // Quick mode fills a fifth and scales the heap figure up to 10 k entries.
  const filled = settings.quick ? ENTRIES / 5 : ENTRIES
  const label = (n: number): string => n >= 1_000_000 ? `${n / 1_000_000}M` : `${n / 1_000}k`
  const redis = await startRedis()
  const apps: FastifyInstance[] = []
  try {
    for (const [db, size] of sizes.entries()) {
      await redis.cliWith({ timeoutMs: 60_000 }, '-n', String(db), 'DEBUG', 'POPULATE', String(size), 'filler', '100')
      apps.push(await buildOurApp(redis, { REDIS_DB: String(db) }))
    }
    const namespaces = apps.map((app) => app.cache.namespace('growth', { memory: false, ttl: '1h' }))
    await inChunks(HOT_KEYS, 50, (i) => Promise.all(namespaces.map((ns) => ns.getOrSet(`k${i}`, () => payload(i)))))
    const miss = (): never => { throw new Error('unexpected miss') }
    const contenders = namespaces.map((ns, i) => ({
      name: label(sizes[i] ?? 0),
      measure: closedLoop((n) => ns.getOrSet(`k${n % HOT_KEYS}`, miss), settings.concurrency)
    }))
    const [first, ...rest] = contenders
    if (first === undefined) throw new Error('no sizes')
    const comparison = await compare(settings, first, rest)
    const samples = [comparison.ours, ...comparison.theirs]
    const rows = samples.flatMap((s, i) => [
      figureRow(`getOrSet hit throughput, ${label(sizes[i] ?? 0)} keys in Redis`, s.map((x) => x.rate), 'ops/s'),
      figureRow(`getOrSet hit p99, ${label(sizes[i] ?? 0)} keys in Redis`, s.map((x) => x.p99), 'ms')
    ])
    const largest = samples[samples.length - 1] ?? []
    rows.push(figureRow(`throughput ${label(sizes[sizes.length - 1] ?? 0)} / ${label(sizes[0] ?? 0)}`,
      largest.map((x, i) => x.rate / (comparison.ours[i]?.rate ?? Number.NaN)), '×'))

    // Memory tier: 10 k entries of the same ~1 KB payload, heap measured after full GCs.
    const oursBytes: number[] = []
    const bentoBytes: number[] = []
    for (let round = 0; round < (settings.quick ? 1 : 3); round++) {
      oursBytes.push(await heapDelta(async () => {
        // As in production, where values are not deep-frozen (freeze: true costs ~300 B per entry).
        const cache = createCache({ memory: { maxEntries: ENTRIES * 2, maxBytes: 1 << 30 }, freeze: false })
        for (let i = 0; i < filled; i++) await cache.getOrSet(`k${i}`, () => payload(i), { ttl: '1h' })
        return cache
      }))
      bentoBytes.push(await heapDelta(async () => {
        const cache = new BentoCache({ default: 'm', stores: { m: bentostore().useL1Layer(memoryDriver({ maxItems: ENTRIES * 2 })) } })
        for (let i = 0; i < filled; i++) await cache.getOrSet({ key: `k${i}`, factory: () => payload(i), ttl: '1h' })
        return cache
      }))
    }
    const mb = (bytes: number): number => bytes * (ENTRIES / filled) / 1024 / 1024
    rows.push(
      figureRow(`memory tier heap per ${ENTRIES / 1000}k entries, ours`, oursBytes.map(mb), 'MiB'),
      figureRow(`memory tier heap per ${ENTRIES / 1000}k entries, bentocache`, bentoBytes.map(mb), 'MiB')
    )
    return {
      id: 9,
      title: 'Cost growth with keys in Redis; memory-tier size',
      rows,
      notes: [
        `Each size lives in its own logical database of one server (DEBUG POPULATE, 100-byte values); ${HOT_KEYS} hot keys read round-robin, memory tier off.`,
        `Memory: ${ENTRIES.toLocaleString('en-US')} entries of a ~1 KB JSON payload, heapUsed delta after forced GC (median ours ${spread(oursBytes.map(mb)).median.toFixed(1)} MiB, bentocache ${spread(bentoBytes.map(mb)).median.toFixed(1)} MiB; ours keeps parsed objects, bentocache serialised strings).`
      ]
    }
  } finally {
    for (const app of apps) await app.close()
    await redis.stop()
  }
}
