import t from 'tap'
import { buildLimitKeys } from '../../../lib/rate-limit/keys.js'
import { MemoryLimiter } from '../../../lib/rate-limit/memory-limiter.js'
import { RateLimitStore } from '../../../lib/rate-limit/store.js'
import type { LimitParams } from '../../../lib/rate-limit/types.js'
import { captureLogger } from './clients.js'

function clock (start = 1_000_000): { now: () => number, advance: (ms: number) => void } {
  let time = start
  return { now: () => time, advance: (ms) => { time += ms } }
}

const keys = buildLimitKeys({ scope: 'test', id: 'client' })

t.test('fixed window: exactly max, then refused until the window ends', async (t) => {
  const { now, advance } = clock()
  const limiter = new MemoryLimiter({ now })
  const params: LimitParams = { max: 3, timeWindow: 1000, algorithm: 'fixed' }
  const results = [1, 2, 3, 4].map(() => limiter.consumeSync(keys, params))
  t.same(results.map((r) => r.allowed), [true, true, true, false])
  t.same(results.map((r) => r.current), [1, 2, 3, 4], 'counts like @fastify/rate-limit')
  t.same(results.map((r) => r.remaining), [2, 1, 0, 0])
  advance(999)
  const last = limiter.consumeSync(keys, params)
  t.equal(last.allowed, false, '1 ms before the end, still refused')
  t.equal(last.retryAfterMs, 1)
  advance(1)
  t.match(limiter.consumeSync(keys, params), { allowed: true, current: 1, resetMs: 1000 }, 'a new window at exactly timeWindow')
})

t.test('sliding window (GCRA): exact at the edges', async (t) => {
  const { now, advance } = clock()
  const limiter = new MemoryLimiter({ now })
  const params: LimitParams = { max: 4, timeWindow: 1000, algorithm: 'sliding' } // one request per 250 ms
  for (let i = 1; i <= 4; i++) t.match(limiter.consumeSync(keys, params), { allowed: true, current: i, remaining: 4 - i, resetMs: i * 250 })
  t.match(limiter.consumeSync(keys, params), { allowed: false, current: 5, retryAfterMs: 250, resetMs: 1000 })
  advance(249)
  t.match(limiter.consumeSync(keys, params), { allowed: false, retryAfterMs: 1 }, '1 ms before the slot frees')
  advance(1)
  t.match(limiter.consumeSync(keys, params), { allowed: true, current: 4, remaining: 0 }, 'one slot exactly one interval later')
  t.match(limiter.consumeSync(keys, params), { allowed: false }, 'and only one')
  advance(1000)
  for (let i = 1; i <= 4; i++) t.equal(limiter.consumeSync(keys, params).allowed, true, 'whole quota again one window after the last allowed')
  t.equal(limiter.consumeSync(keys, params).allowed, false)
})

t.test('sliding window: no double burst across a boundary, unlike fixed', async (t) => {
  const { now, advance } = clock()
  const limiter = new MemoryLimiter({ now })
  const count = (algorithm: 'fixed' | 'sliding', id: string): number => {
    const k = buildLimitKeys({ scope: 'burst', id, algorithm })
    let allowed = 0
    for (let i = 0; i < 20; i++) if (limiter.consumeSync(k, { max: 10, timeWindow: 1000, algorithm }).allowed) allowed++
    return allowed
  }
  advance(900)
  t.equal(count('fixed', 'f'), 10)
  t.equal(count('sliding', 's'), 10)
  advance(200) // the fixed window that began at 900 still runs; try again 200 ms later
  t.equal(count('fixed', 'f'), 0)
  t.equal(count('sliding', 's'), 2, 'sliding gives back one request per 100 ms')
})

t.test('max 0 refuses everything', async (t) => {
  const limiter = new MemoryLimiter({ now: clock().now })
  t.equal(limiter.consumeSync(keys, { max: 0, timeWindow: 1000, algorithm: 'sliding' }).allowed, false)
  t.equal(limiter.consumeSync(keys, { max: 0, timeWindow: 1000, algorithm: 'fixed' }).allowed, false)
})

t.test('ban after repeated refusals, then free again', async (t) => {
  const { now, advance } = clock()
  const limiter = new MemoryLimiter({ now })
  const params: LimitParams = { max: 1, timeWindow: 100, algorithm: 'fixed', ban: { after: 2, durationMs: 5000, withinMs: 5000 } }
  t.equal(limiter.consumeSync(keys, params).allowed, true)
  t.match(limiter.consumeSync(keys, params), { allowed: false, banned: false })
  t.match(limiter.consumeSync(keys, params), { allowed: false, banned: true, retryAfterMs: 5000 })
  advance(1000)
  t.match(limiter.consumeSync(keys, params), { allowed: false, banned: true, retryAfterMs: 4000 }, 'the window reset but the ban holds')
  advance(4000)
  t.match(limiter.consumeSync(keys, params), { allowed: true, banned: false })
})

// Issue 32 (coverage): what the in-process limiter (no Redis, or the fallback while Redis is down)
// does to a client that keeps going past the limit, as @fastify/rate-limit's options ask.
t.test('past the limit, continueExceeding restarts the window and exponentialBackoff doubles it at each refusal', async (t) => {
  const { now, advance } = clock()
  const limiter = new MemoryLimiter({ now })
  const steady: LimitParams = { max: 1, timeWindow: 1000, algorithm: 'fixed', continueExceeding: true }
  t.equal(limiter.consumeSync(keys, steady).allowed, true)
  for (let i = 0; i < 3; i++) {
    advance(900)
    t.match(limiter.consumeSync(keys, steady), { allowed: false, retryAfterMs: 1000 }, `refused ${i + 1}: the full window again, not the 100 ms left`)
  }
  advance(1000)
  t.equal(limiter.consumeSync(keys, steady).allowed, true, 'free once it stops for a window')

  const other = buildLimitKeys({ scope: 'test', id: 'backoff' })
  const backoff: LimitParams = { max: 1, timeWindow: 1000, algorithm: 'fixed', exponentialBackoff: true }
  t.equal(limiter.consumeSync(other, backoff).allowed, true)
  t.same([1, 2, 3].map(() => limiter.consumeSync(other, backoff).retryAfterMs), [1000, 2000, 4000], 'each refusal doubles the wait')
})

t.test('a ban in force is seen by a peek, which counts nothing', async (t) => {
  const { now } = clock()
  const limiter = new MemoryLimiter({ now })
  const params: LimitParams = { max: 1, timeWindow: 1000, algorithm: 'fixed', ban: { after: 1, durationMs: 60_000, withinMs: 60_000 } }
  for (let i = 0; i < 3; i++) limiter.consumeSync(keys, params)
  const peeked = limiter.peekSync(keys, params)
  t.match(peeked, { allowed: false, banned: true, remaining: 0 })
  t.ok(peeked.retryAfterMs > 1000, 'the ban, not the window, decides the wait')
  t.same(limiter.peekSync(keys, params), peeked, 'peeking again changes nothing')
})

t.test('the number of keys kept is bounded', async (t) => {
  const limiter = new MemoryLimiter({ maxKeys: 100, now: clock().now })
  for (let i = 0; i < 1000; i++) limiter.consumeSync(buildLimitKeys({ scope: 's', id: String(i) }), { max: 5, timeWindow: 60_000, algorithm: 'fixed' })
  t.equal(limiter.size, 100)
})

t.test('the store without Redis: in-process decisions, counted, logged once as in-process', async (t) => {
  const { logs, logger } = captureLogger()
  const seen: string[] = []
  const store = new RateLimitStore({ logger, onDecision: (d) => { seen.push(`${d.source}:${String(d.allowed)}`) } })
  t.equal(store.backend, 'memory')
  const decisions = []
  for (let i = 0; i < 3; i++) decisions.push(await store.consume('ip', { max: 2, timeWindow: '1m', algorithm: 'sliding' }))
  t.same(decisions.map((d) => d.allowed), [true, true, false])
  t.same(seen, ['memory:true', 'memory:true', 'memory:false'])
  t.match(store.stats(), { allowed: 2, limited: 1, fallback: 0, open: 0, closed: 0 })
  t.equal(logs.length, 1)
  t.match(logs[0], { level: 'info', msg: /no Redis configured/ })
  t.throws(() => new RateLimitStore({ whenRedisDown: 'maybe' as 'open' }), /whenRedisDown must be one of/)
  t.throws(() => new RateLimitStore({ ban: { after: 0, duration: '1m' } }), /ban.after/)
})
