// One outage under load, timed: load starts, Redis is killed or frozen after `beforeMs`, brought back
// after `outageMs`, and the load runs `afterMs` more. Detection and recovery are read from
// app.redisState (what health serves), polled every 5 ms.
import type { FastifyInstance } from 'fastify'
import type { RedisServer } from './redis-process.js'
import { sleep } from './wait.js'
import { runLoad, type LoadOptions, type LoadResult, type LoadRun } from './load.js'
import { waitUntil } from './fault-app.js'

export type OutageKind = 'kill' | 'freeze'

export interface OutageOptions extends Omit<LoadOptions, 'durationMs'> {
  app: FastifyInstance
  redis: RedisServer
  kind: OutageKind
  beforeMs: number
  outageMs: number
  afterMs: number
  /** Called every 100 ms during the run (memory and queue sampling). */
  sample?: () => void
}

export interface OutageRun extends LoadRun {
  /** Epoch ms. */
  faultAt: number
  restoreAt: number
  detectedAt: number
  recoveredAt: number
  detectionMs: number
  /** From the restart (kill: includes the server's boot) or SIGCONT (freeze) to 'connected'. */
  recoveryMs: number
  /** Results of requests started between fault and restore. */
  during: (tag?: string) => LoadResult[]
  tagged: (tag: string) => LoadResult[]
}

export async function runOutage (options: OutageOptions): Promise<OutageRun> {
  const { app, redis, kind, beforeMs, outageMs, afterMs, sample, ...load } = options
  const timer = sample === undefined ? undefined : setInterval(sample, 100)
  let faultAt = 0
  let restoreAt = 0
  let detectedAt = 0
  let recoveredAt = 0
  const fault = (async () => {
    await sleep(beforeMs)
    faultAt = Date.now()
    if (kind === 'kill') await redis.kill()
    else redis.freeze()
    detectedAt = await waitUntil(() => app.redisState.status === 'disconnected', 10_000, `disconnected after ${kind}`)
    await sleep(Math.max(0, outageMs - (Date.now() - faultAt)))
    restoreAt = Date.now()
    if (kind === 'kill') await redis.restart()
    else redis.thaw()
    recoveredAt = await waitUntil(() => app.redisState.status === 'connected', 15_000, `connected after ${kind}`)
  })()
  // A failed fault step must not leave the load running unobserved: surface it after the load.
  const faultDone = fault.then(() => undefined, (err: unknown) => err)
  let run: LoadRun
  try {
    run = await runLoad({ ...load, durationMs: beforeMs + outageMs + afterMs })
  } finally {
    clearInterval(timer)
  }
  const faultError = await faultDone
  if (faultError !== undefined) throw faultError
  const inWindow = (r: LoadResult): boolean => run.t0 + r.startedAt >= faultAt && run.t0 + r.startedAt < restoreAt
  return {
    ...run,
    faultAt,
    restoreAt,
    detectedAt,
    recoveredAt,
    detectionMs: detectedAt - faultAt,
    recoveryMs: recoveredAt - restoreAt,
    during: (tag) => run.results.filter((r) => inWindow(r) && (tag === undefined || r.tag === tag)),
    tagged: (tag) => run.results.filter((r) => r.tag === tag)
  }
}
