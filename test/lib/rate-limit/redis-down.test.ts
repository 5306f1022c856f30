// Each Redis-down mode with Redis SIGKILLed and SIGSTOPped: decisions keep coming within the time
// budget (plus a loose margin: a bound, not a performance claim), are counted, and logged once per burst.
import t from 'tap'
import { useRedis } from '../../helpers/fixtures.js'
import { waitFor } from '../../helpers/wait.js'
import type { RateLimitDecision, RedisDownMode } from '../../../lib/rate-limit/types.js'
import { captureLogger, connectClient, openStore } from './clients.js'

const BUDGET_MS = 250
const BOUND_MS = 1000

for (const fault of ['killed', 'frozen'] as const) {
  for (const mode of ['fallback', 'open', 'closed'] as RedisDownMode[]) {
    t.test(`${mode} while Redis is ${fault}`, async (t) => {
      const server = await useRedis(t)
      const { logs, logger } = captureLogger()
      const seen: RateLimitDecision[] = []
      const store = await openStore(t, {
        redis: await connectClient(t, server), whenRedisDown: mode, timeout: BUDGET_MS, logger, onDecision: (d) => { seen.push(d) }
      })
      t.match(logs, [{ level: 'info', msg: new RegExp(`while Redis is down, .*${mode === 'fallback' ? 'in-process' : mode === 'open' ? 'fail open' : 'fail closed'}`) }],
        'the mode is logged once at creation')
      const consume = (): Promise<RateLimitDecision> => store.consume('client', { max: 2, timeWindow: '1m', algorithm: 'sliding' })
      t.match(await consume(), { source: 'redis', allowed: true })

      if (fault === 'killed') await server.kill()
      else server.freeze()

      const decisions: RateLimitDecision[] = []
      const durations: number[] = []
      for (let i = 0; i < 4; i++) {
        const started = performance.now()
        decisions.push(await consume())
        durations.push(Math.round(performance.now() - started))
      }
      t.ok(durations.every((ms) => ms < BOUND_MS), `every decision settled in < ${BOUND_MS} ms: ${durations.join(', ')} ms`)
      t.ok(decisions.every((d) => d.source === mode), `every decision made by the ${mode} mode`)
      if (mode === 'fallback') {
        t.same(decisions.map((d) => d.allowed), [true, true, false, false], 'the in-process limiter counts from zero, per process')
      } else if (mode === 'open') {
        t.ok(decisions.every((d) => d.allowed && !d.unavailable))
      } else {
        t.ok(decisions.every((d) => !d.allowed && d.unavailable && d.retryAfterMs > 0), 'refused as unavailable (503), not limited (429)')
      }
      const stats = store.stats()
      t.equal(stats[mode], 4)
      t.equal(stats.redisFailures, 4)
      t.equal(stats.allowed, 1)
      t.equal(seen.length, 5, 'onDecision saw every decision')
      t.equal(logs.filter((l) => l.level === 'warn').length, 1, 'one warning for the whole burst of failures')
      t.match(logs[1], { level: 'warn', msg: /Redis unavailable/ })

      if (fault === 'frozen') server.thaw()
      else await server.restart()
      const back = await waitFor(async () => {
        const d = await store.consume('after', { max: 5, timeWindow: '1m' })
        return d.source === 'redis' ? d : undefined
      }, { what: 'decisions by Redis again', timeoutMs: 10_000 })
      t.equal(back.allowed, true)
      t.match(logs.at(-1), { level: 'info', msg: /Redis answers again/ }, 'recovery logged once')
      t.equal(logs.filter((l) => l.level === 'info').length, 2)
    })
  }
}

t.test('a connection known to be down is skipped without a Redis command', async (t) => {
  const server = await useRedis(t)
  const client = await connectClient(t, server)
  let ready = false
  const store = await openStore(t, { redis: client, isRedisReady: () => ready })
  const started = performance.now()
  const decision = await store.consume('skip', { max: 1, timeWindow: '1m' })
  t.ok(performance.now() - started < 50, 'answered at once')
  t.match(decision, { source: 'fallback', allowed: true })
  t.equal(store.stats().redisFailures, 0, 'no command was tried')
  t.equal(await server.cli('DBSIZE'), '0')
  ready = true
  t.match(await store.consume('skip', { max: 1, timeWindow: '1m' }), { source: 'redis', allowed: true })
})
