// Case 8: /health and /health/ready under load (autocannon, many connections), with Redis up and
// with Redis frozen (SIGSTOP: the socket stays open and nothing answers, the worst case for a probe).
// The routes answer from cached state, so their p99 should not move when Redis freezes.
import { setTimeout as sleep } from 'node:timers/promises'
import { buildOurApp, startRedis } from '../environment.js'
import { spread, type Settings } from '../harness.js'
import { listen, load } from '../http.js'
import { figureRow, type CaseResult } from '../results.js'

export async function health (settings: Settings): Promise<CaseResult> {
  const redis = await startRedis()
  const app = await buildOurApp(redis, { REDIS_PING_INTERVAL: '200ms', REDIS_PING_TIMEOUT: '200ms' })
  try {
    const base = await listen(app)
    const rounds = settings.quick ? 1 : Math.min(settings.rounds, 3)
    const figures = { upP99: [] as number[], frozenP99: [] as number[], upRate: [] as number[], frozenRate: [] as number[], readyUpP99: [] as number[], readyFrozenP99: [] as number[] }
    const frozenStatuses: string[] = []
    const target = (path: string): { url: string, accept: number[] } => ({ url: `${base}${path}`, accept: [503] })
    await load(target('/health'), settings.warmupMs, settings.connections)
    for (let round = 0; round < rounds; round++) {
      const up = await load(target('/health'), settings.httpRoundMs, settings.connections)
      const readyUp = await load(target('/health/ready'), settings.httpRoundMs / 2, settings.connections)
      redis.freeze()
      try {
        // Let the background PING see the freeze (interval + timeout), so we measure the steady frozen state.
        await sleep(settings.quick ? 500 : 1_000)
        const frozen = await load(target('/health'), settings.httpRoundMs, settings.connections)
        const readyFrozen = await load(target('/health/ready'), settings.httpRoundMs / 2, settings.connections)
        figures.frozenP99.push(frozen.p99)
        figures.frozenRate.push(frozen.rate)
        figures.readyFrozenP99.push(readyFrozen.p99)
        frozenStatuses.push(`${app.redisState.status} (/health: ${frozen.statuses['2xx']} 2xx, ${frozen.statuses['5xx']} 5xx)`)
      } finally {
        redis.thaw()
      }
      figures.upP99.push(up.p99)
      figures.upRate.push(up.rate)
      figures.readyUpP99.push(readyUp.p99)
      // The next round starts from a healthy connection; after the last one there is nothing to wait for.
      const deadline = round + 1 < rounds ? Date.now() + 10_000 : 0
      while (app.redisState.status !== 'connected' && Date.now() < deadline) await sleep(100)
    }
    const ratio = figures.frozenRate.map((rate, i) => rate / (figures.upRate[i] ?? Number.NaN))
    return {
      id: 8,
      title: 'Health routes under load, Redis up and frozen',
      rows: [
        figureRow('GET /health p99, Redis up', figures.upP99, 'ms'),
        figureRow('GET /health p99, Redis frozen', figures.frozenP99, 'ms'),
        figureRow('GET /health/ready p99, Redis up', figures.readyUpP99, 'ms'),
        figureRow('GET /health/ready p99, Redis frozen', figures.readyFrozenP99, 'ms'),
        figureRow('GET /health throughput, Redis up', figures.upRate, 'req/s'),
        figureRow('GET /health throughput frozen / up', ratio, '×', undefined)
      ],
      notes: [
        `${settings.connections} connections; ${rounds} round(s) of up → frozen (SIGSTOP) → thawed.`,
        `Reported state while frozen: ${frozenStatuses.join('; ')}.`,
        `Median p99 up ${spread(figures.upP99).median} ms vs frozen ${spread(figures.frozenP99).median} ms.`
      ]
    }
  } finally {
    await app.close()
    await redis.stop()
  }
}
