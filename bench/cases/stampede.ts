// Case 5: 1,000 concurrent misses on one key spread over 4 app instances sharing one Redis. Counts how
// many times the loader runs: ours should run it once; bentocache (4 instances, memory + Redis + bus)
// and a hand-written cache-aside (4 clients) are counted beside it. A fresh key every round.
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import { bento, CacheAside } from '../alternatives.js'
import { buildOurApp, connected, payload, plainClient, startRedis } from '../environment.js'
import type { Settings } from '../harness.js'
import { figureRow, type CaseResult } from '../results.js'

const INSTANCES = 4
const CALLERS = 1_000
const LOAD_MS = 50

type GetOrSet = (key: string, loader: () => Promise<unknown>) => Promise<unknown>

/** Runs CALLERS concurrent getOrSet calls, round-robin over the instances; returns loader runs and wall time. */
async function stampede (instances: readonly GetOrSet[], key: string): Promise<{ runs: number, ms: number }> {
  let runs = 0
  const loader = async (): Promise<unknown> => {
    runs++
    await sleep(LOAD_MS)
    return payload(1)
  }
  const started = performance.now()
  await Promise.all(Array.from({ length: CALLERS }, (_, i) => instances[i % instances.length]?.(key, loader)))
  return { runs, ms: performance.now() - started }
}

export async function stampedeCase (settings: Settings): Promise<CaseResult> {
  const redis = await startRedis()
  const apps: FastifyInstance[] = []
  const clients: Redis[] = []
  const bentos: Array<ReturnType<typeof bento>> = []
  try {
    for (let i = 0; i < INSTANCES; i++) {
      apps.push(await buildOurApp(redis))
      const bentoClient = await connected(plainClient(redis))
      const asideClient = await connected(plainClient(redis))
      clients.push(bentoClient, asideClient)
      bentos.push(bento(bentoClient, 'both', 'stampede'))
    }
    const ours: GetOrSet[] = apps.map((app) => (key, loader) => app.cache.getOrSet(key, loader, { ttl: '1h' }))
    const theirs: GetOrSet[] = bentos.map((b) => (key, loader) => b.getOrSet({ key, factory: loader, ttl: '1h' }))
    const aside: GetOrSet[] = clients.filter((_, i) => i % 2 === 1).map((c) => {
      const cache = new CacheAside(c, 3_600_000)
      return (key, loader) => cache.getOrSet(key, loader)
    })
    const runs = { ours: [] as number[], bento: [] as number[], aside: [] as number[] }
    const ms = { ours: [] as number[], bento: [] as number[], aside: [] as number[] }
    for (let round = 0; round < settings.rounds; round++) {
      for (const [name, instances] of [['ours', ours], ['bento', theirs], ['aside', aside]] as const) {
        const result = await stampede(instances, `stampede:${name}:${round}`)
        runs[name].push(result.runs)
        ms[name].push(result.ms)
      }
    }
    return {
      id: 5,
      title: `Stampede: ${CALLERS.toLocaleString('en-US')} concurrent misses, ${INSTANCES} instances`,
      rows: [
        figureRow('loader runs, ours', runs.ours, 'runs', { text: '= 1', met: (m) => m === 1 }),
        figureRow('loader runs, bentocache (4 instances, memory + Redis + bus)', runs.bento, 'runs'),
        figureRow('loader runs, hand-written cache-aside (4 clients)', runs.aside, 'runs'),
        figureRow('time until all callers answered, ours', ms.ours, 'ms'),
        figureRow('time until all callers answered, bentocache', ms.bento, 'ms'),
        figureRow('time until all callers answered, cache-aside', ms.aside, 'ms')
      ],
      notes: [`Loader takes ${LOAD_MS} ms; ${CALLERS / INSTANCES} callers per instance; a fresh key per round.`]
    }
  } finally {
    for (const app of apps) await app.close()
    for (const b of bentos) await b.disconnect().catch(() => {})
    for (const c of clients) c.disconnect()
    await redis.stop()
  }
}
