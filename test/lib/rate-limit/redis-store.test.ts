// Behaviour Redis decides, against a real redis-server: limits, windows, GCRA edges, two instances
// sharing one limit, NOSCRIPT recovery, bans and the client's keyPrefix.
import { createHash } from 'node:crypto'
import t from 'tap'
import { useRedis } from '../../helpers/fixtures.js'
import { sleep } from '../../helpers/wait.js'
import { RedisLimiter, type IncrementWaiter } from '../../../lib/rate-limit/redis-limiter.js'
import { PLAIN_FIXED_WINDOW_LUA, PLAIN_FIXED_WINDOW_SCRIPT, SLIDING_WINDOW_LUA } from '../../../lib/rate-limit/scripts.js'
import { RateLimitStore } from '../../../lib/rate-limit/store.js'
import type { RateLimitAlgorithm } from '../../../lib/rate-limit/types.js'
import { connectClient, openStore } from './clients.js'

const server = await useRedis(t)

async function newStore (tt: Parameters<typeof connectClient>[0], options: ConstructorParameters<typeof RateLimitStore>[0] = {}): Promise<RateLimitStore> {
  return await openStore(tt, { redis: await connectClient(tt, server), ...options })
}

for (const algorithm of ['fixed', 'sliding'] as RateLimitAlgorithm[]) {
  t.test(`${algorithm}: the limit is reached at exactly max`, async (t) => {
    const store = await newStore(t)
    const decisions = []
    for (let i = 0; i < 6; i++) decisions.push(await store.consume(`exact-${algorithm}`, { max: 5, timeWindow: '10s', algorithm }))
    t.same(decisions.map((d) => d.allowed), [true, true, true, true, true, false])
    t.same(decisions.map((d) => d.remaining), [4, 3, 2, 1, 0, 0])
    t.ok(decisions.every((d) => d.source === 'redis'))
    const refused = decisions[5]
    t.ok(refused !== undefined && refused.current > 5 && refused.retryAfterMs > 0 && refused.retryAfterMs <= 10_000)
    t.match(store.stats(), { allowed: 5, limited: 1, redisFailures: 0 })
  })

  t.test(`${algorithm}: two store instances on two clients share one limit exactly`, async (t) => {
    const [a, b] = [await newStore(t), await newStore(t)]
    const attempts = Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? a : b).consume('shared', { max: 15, timeWindow: '10s', algorithm, scope: algorithm }))
    const decisions = await Promise.all(attempts)
    t.equal(decisions.filter((d) => d.allowed).length, 15, 'exactly max allowed across both instances')
    t.ok(decisions.every((d) => d.source === 'redis'))
  })
}

t.test('fixed: the decisions of one event-loop turn are one script call on one server, and exactly those of one INCR each', async (t) => {
  const store = await newStore(t)
  const calls = async (): Promise<number> => Number(/cmdstat_evalsha:calls=(\d+)/.exec(await server.cli('INFO', 'commandstats'))?.[1] ?? 0)
  await store.consume('merge-warm', { max: 5, timeWindow: '10s' }) // the script is loaded
  const before = await calls()
  // 30 requests in one turn on one key, 10 on another: one call, not 40 (nor one per key).
  const decisions = await Promise.all([
    ...Array.from({ length: 30 }, () => store.consume('merged', { max: 12, timeWindow: '10s' })),
    ...Array.from({ length: 10 }, () => store.consume('other', { max: 12, timeWindow: '10s' }))
  ])
  t.equal(await calls() - before, 1, 'one EVALSHA for the whole turn')
  const merged = decisions.slice(0, 30)
  t.same(merged.map((d) => d.current), Array.from({ length: 30 }, (_, i) => i + 1), 'each request sees the count after its own increment, in arrival order')
  t.same(merged.map((d) => d.allowed), Array.from({ length: 30 }, (_, i) => i < 12), 'exactly max allowed: the first 12')
  t.same(merged.slice(0, 12).map((d) => d.remaining), Array.from({ length: 12 }, (_, i) => 11 - i))
  t.ok(merged.every((d) => d.resetMs > 9_000 && d.resetMs <= 10_000), 'one window, started by the first increment')
  t.same(decisions.slice(30).map((d) => d.current), Array.from({ length: 10 }, (_, i) => i + 1))
  const [counter] = (await server.cli('KEYS', '*merged*')).split(/\s+/).filter(Boolean)
  t.equal(await server.cli('GET', counter ?? ''), '30', 'the counter in Redis holds all 30')
  // The next turn continues the same counter.
  t.match(await store.consume('merged', { max: 12, timeWindow: '10s' }), { allowed: false, current: 31 })
})

t.test('fixed: a merged increment whose first waiter throws still answers the others of its turn; the throw surfaces on its own', async (t) => {
  const client = await connectClient(t, server)
  const limiter = new RedisLimiter(() => client)
  const surfaced: unknown[] = []
  // Captured here instead of failing the test run as an uncaught exception.
  process.setUncaughtExceptionCaptureCallback((err) => { surfaced.push(err) })
  t.teardown(() => { process.setUncaughtExceptionCaptureCallback(null) })
  const answers: Array<[number, number]> = []
  const rest = new Promise<void>((resolve, reject) => {
    const throwing: IncrementWaiter = { granted: () => { throw new Error('a downstream bug') }, failed: reject }
    const counting: IncrementWaiter = {
      granted: (current, ttl) => {
        answers.push([current, ttl])
        if (answers.length === 2) resolve()
      },
      failed: reject
    }
    for (const waiter of [throwing, counting, counting]) limiter.increment(PLAIN_FIXED_WINDOW_SCRIPT, 'rl:{throwing|x}:f', '10000', waiter)
  })
  await rest
  t.same(answers.map(([current]) => current), [2, 3], 'the two others got their own counts')
  await new Promise((resolve) => setImmediate(resolve))
  t.match(surfaced, [{ message: 'a downstream bug' }], 'the throw was not swallowed')
})

t.test('fixed: one key asked with two windows in one turn: each window its own group, counted one after the other', async (t) => {
  const store = await newStore(t)
  // Alternating windows on one counter (a per-request timeWindow): the first window's requests are
  // counted first (its group came first), then the second's, each request its own count.
  const decisions = await Promise.all(Array.from({ length: 6 }, (_, i) => store.consume('two-windows', { max: 100, timeWindow: i % 2 === 0 ? '10s' : '20s' })))
  t.same(decisions.map((d) => d.current), [1, 4, 2, 5, 3, 6])
  t.same(decisions.map((d) => d.timeWindow), [10_000, 20_000, 10_000, 20_000, 10_000, 20_000])
  t.ok(decisions.every((d) => d.resetMs > 9_000 && d.resetMs <= 10_000), 'the window the first increment started')
  const [counter] = (await server.cli('KEYS', '*two-windows*')).split(/\s+/).filter(Boolean)
  t.equal(await server.cli('GET', counter ?? ''), '6')
})
t.test('fixed: 1,000 clients in one turn: counted exactly, key by key, in a few calls; a flushed script is loaded again', async (t) => {
  const store = await newStore(t)
  const calls = async (): Promise<number> => {
    const stats = await server.cli('INFO', 'commandstats')
    return Number(/cmdstat_evalsha:calls=(\d+)/.exec(stats)?.[1] ?? 0) + Number(/cmdstat_eval:calls=(\d+)/.exec(stats)?.[1] ?? 0)
  }
  const turn = (windowOf: (i: number) => number): Promise<Array<Awaited<ReturnType<RateLimitStore['consume']>>>> =>
    Promise.all(Array.from({ length: 2_000 }, (_, i) => store.consume(`client-${i % 1_000}`, { max: 1, timeWindow: windowOf(i % 1_000) })))
  await store.consume('many-warm', { max: 5, timeWindow: '10s' })
  const before = await calls()
  const first = await turn((i) => 10_000 + (i % 3) * 1_000)
  // 1,000 keys, 256 per call: 4 calls.
  t.equal(await calls() - before, 4, 'a handful of calls for 2,000 decisions on 1,000 keys')
  t.same(first.slice(0, 1_000).map((d) => [d.allowed, d.current]), Array.from({ length: 1_000 }, () => [true, 1]), 'each client\'s first request is allowed')
  t.same(first.slice(1_000).map((d) => [d.allowed, d.current]), Array.from({ length: 1_000 }, () => [false, 2]), 'and its second, in the same turn, refused')
  t.ok(first.every((d, i) => d.resetMs <= 10_000 + ((i % 1_000) % 3) * 1_000 && d.resetMs > 9_000 + ((i % 1_000) % 3) * 1_000), 'each key has its own window')
  await server.cli('SCRIPT', 'FLUSH')
  const again = await turn(() => 10_000)
  t.ok(again.every((d) => !d.allowed && d.current >= 3), 'after SCRIPT FLUSH the multi-key script is run again (EVAL) and keeps counting')
  t.match(await store.consume('client-7', { max: 1, timeWindow: 10_000 }), { allowed: false, current: 5 }, 'the counter holds every increment')
})

t.test('fixed: a key Redis refuses (wrong type) fails alone; the other keys of its turn are counted', async (t) => {
  const store = await newStore(t, { whenRedisDown: 'open' })
  await store.consume('wrongtype', { max: 5, timeWindow: '10s' })
  const [counter] = (await server.cli('KEYS', '*wrongtype*')).split(/\s+/).filter(Boolean)
  await server.cli('DEL', counter ?? '')
  await server.cli('HSET', counter ?? '', 'not', 'a counter')
  const decisions = await Promise.all([
    store.consume('fine-1', { max: 5, timeWindow: '10s' }),
    store.consume('wrongtype', { max: 5, timeWindow: '10s' }),
    store.consume('fine-2', { max: 5, timeWindow: '10s' })
  ])
  t.match(decisions[0], { source: 'redis', allowed: true, current: 1 }, 'the key before it is counted in Redis')
  t.match(decisions[1], { source: 'open' }, 'the refused key takes the Redis-down mode')
  t.match(decisions[2], { source: 'redis', allowed: true, current: 1 }, 'the key after it too')
  t.match(await store.consume('fine-2', { max: 5, timeWindow: '10s' }), { source: 'redis', current: 2 }, 'and counts on')
})

t.test('fixed: a turn whose one call Redis refuses (no permission on the limiter keys) takes the Redis-down mode for every request of it', async (t) => {
  // An ACL user with no key the limiter may touch: the turn's single multi-key call fails as a whole
  // (NOPERM), unlike a key of the wrong type above, which the script reports key by key.
  const locked = await useRedis(t, { acl: [{ username: 'limiter', password: 'limiter-secret', rules: '~elsewhere:* +@all' }] })
  const store = await openStore(t, { redis: await connectClient(t, locked, { username: 'limiter', password: 'limiter-secret' }), whenRedisDown: 'closed' })
  const decisions = await Promise.all(['ada', 'bob', 'eve'].map((client) => store.consume(client, { max: 5, timeWindow: '10s' })))
  t.same(decisions.map((d) => [d.source, d.allowed]), [['closed', false], ['closed', false], ['closed', false]], 'none of them passes as counted')
  t.equal(store.stats().redisFailures, 3)
  t.equal(await locked.cli('DBSIZE'), '0', 'and nothing was written')
})

t.test('fixed: the window resets after timeWindow, with @fastify/rate-limit TTL semantics', async (t) => {
  const store = await newStore(t)
  const consume = (): ReturnType<RateLimitStore['consume']> => store.consume('reset', { max: 2, timeWindow: 400 })
  const first = await consume()
  t.ok(first.resetMs > 300 && first.resetMs <= 400, `ttl of the first hit is the window (${first.resetMs})`)
  await consume()
  const refused = await consume()
  t.equal(refused.allowed, false)
  t.equal(refused.current, 3, 'the counter keeps counting, as the plugin expects')
  await sleep(refused.retryAfterMs + 20)
  t.match(await consume(), { allowed: true, current: 1 }, 'a fresh window')
})

t.test('sliding (GCRA): exact at the edges on the Redis clock', async (t) => {
  const store = await newStore(t)
  const consume = (): ReturnType<RateLimitStore['consume']> => store.consume('edges', { max: 4, timeWindow: 800, algorithm: 'sliding' })
  for (let i = 0; i < 4; i++) t.equal((await consume()).allowed, true)
  const refused = await consume()
  t.equal(refused.allowed, false)
  t.ok(refused.retryAfterMs > 0 && refused.retryAfterMs <= 200, `retry after at most one interval (${refused.retryAfterMs} ms)`)
  await sleep(refused.retryAfterMs + 2)
  t.equal((await consume()).allowed, true, 'allowed once retryAfter has passed')
  t.equal((await consume()).allowed, false, 'but only one slot came back, not the whole window')

  // No double burst: after a full burst, half a window later only about half the quota is back.
  const t0 = Date.now()
  const burst = async (): Promise<number> => {
    let allowed = 0
    for (let i = 0; i < 20; i++) if ((await store.consume('half', { max: 10, timeWindow: 1000, algorithm: 'sliding' })).allowed) allowed++
    return allowed
  }
  t.equal(await burst(), 10)
  await sleep(500)
  const again = await burst()
  const elapsed = Date.now() - t0
  t.ok(again >= 5 && again <= Math.floor(elapsed / 100) + 1, `${again} allowed ${elapsed} ms after a full burst (one per 100 ms)`)

  // The whole quota is back one window after the last allowed request, not before.
  await sleep(1020)
  t.equal(await burst(), 10, 'whole quota after an idle window')
})

t.test('NOSCRIPT after SCRIPT FLUSH recovers within the same call', async (t) => {
  const store = await newStore(t)
  await store.consume('flush', { max: 10, timeWindow: '10s' })
  await store.consume('flush', { max: 10, timeWindow: '10s', algorithm: 'sliding' })
  t.equal(await server.cli('SCRIPT', 'FLUSH'), 'OK')
  const fixed = await store.consume('flush', { max: 10, timeWindow: '10s' })
  const sliding = await store.consume('flush', { max: 10, timeWindow: '10s', algorithm: 'sliding' })
  t.match(fixed, { source: 'redis', allowed: true, current: 2 }, 'fixed: counted in Redis, the count kept')
  t.match(sliding, { source: 'redis', allowed: true, current: 2 })
  t.equal(store.stats().redisFailures, 0)
  const sha = (lua: string): string => createHash('sha1').update(lua).digest('hex')
  t.match(await server.cli('SCRIPT', 'EXISTS', sha(PLAIN_FIXED_WINDOW_LUA), sha(SLIDING_WINDOW_LUA)), /1\s+1/, 'both scripts cached again')
})

t.test('a ban is stored in Redis: every instance refuses until it ends', async (t) => {
  // The ban outlasts the 200 ms window by far: a loaded machine's event-loop delays must not end it early.
  const ban = { after: 2, duration: 2_000 }
  const [a, b] = [await newStore(t, { ban }), await newStore(t, { ban })]
  const consume = (store: RateLimitStore): ReturnType<RateLimitStore['consume']> => store.consume('banned', { max: 1, timeWindow: 200 })
  t.equal((await consume(a)).allowed, true)
  t.match(await consume(a), { allowed: false, banned: false })
  t.match(await consume(a), { allowed: false, banned: true })
  await sleep(250) // the rate window is over, the ban is not
  const other = await consume(b)
  t.match(other, { allowed: false, banned: true, source: 'redis' }, 'the other instance sees the ban')
  t.ok(other.retryAfterMs > 0 && other.retryAfterMs <= 2_000)
  await sleep(other.retryAfterMs + 20)
  t.match(await consume(b), { allowed: true, banned: false }, 'free again once the ban ends')
  t.equal(a.stats().banned + b.stats().banned, 2, 'bans are counted')
})

t.test('keys honour the client keyPrefix and share one hash tag', async (t) => {
  const store = await openStore(t, { redis: await connectClient(t, server, { keyPrefix: 'app:' }), ban: { after: 1, duration: 1000 } })
  await store.consume('203.0.113.9', { max: 0, timeWindow: 1000, scope: 'GET/prefixed' })
  const keys = (await server.cli('KEYS', 'app:*prefixed*')).split(/\s+/).filter(Boolean).sort()
  t.same(keys, ['app:rl:{GET/prefixed|203.0.113.9}:b', 'app:rl:{GET/prefixed|203.0.113.9}:f'])
})

t.test('fixed, lean path: a counter left without expiry gets the window again instead of limiting for ever', async (t) => {
  const store = await newStore(t)
  await store.consume('persisted', { max: 5, timeWindow: 1000, scope: 'lean' })
  const key = 'rl:{lean|persisted}:f'
  t.equal(await server.cli('PERSIST', key), '1', 'the counter has lost its expiry')
  const decision = await store.consume('persisted', { max: 5, timeWindow: 1000, scope: 'lean' })
  t.match(decision, { allowed: true, current: 2, remaining: 3, resetMs: 1000, source: 'redis' })
  const ttl = Number(await server.cli('PTTL', key))
  t.ok(ttl > 0 && ttl <= 1000, `expires again (PTTL ${ttl})`)
})

t.test('fixed: the lean script and the full one count on the same counter', async (t) => {
  const store = await newStore(t)
  const plain = { max: 3, timeWindow: '10s', scope: 'mixed' }
  await store.consume('203.0.113.7', plain)
  await store.consume('203.0.113.7', plain)
  t.match(await store.consume('203.0.113.7', { ...plain, exponentialBackoff: true }), { allowed: true, current: 3, remaining: 0 }, 'the full script sees the lean counts')
  t.match(await store.consume('203.0.113.7', plain), { allowed: false, current: 4, remaining: 0, banned: false }, 'and the lean one the full one’s')
  const refused = await store.consume('203.0.113.7', plain)
  t.ok(refused.retryAfterMs > 0 && refused.retryAfterMs <= 10_000 && refused.retryAfterMs === refused.resetMs, 'refused: retry when the window ends')
})

t.test('more clients than the counter-key cache holds: each still counts on its own key', async (t) => {
  for (const sync of ['exact', 'batched'] as const) {
    // Batched: more windows tracked than clients, so no lease is given up on the way (a separate bound).
    // A generous budget: a burst of 10,000 first calls must not time out into the fallback limiter.
    const store = await newStore(t, { sync, timeout: 10_000, batched: { maxKeys: 20_000 } })
    const limit = store.limit({ max: 2, timeWindow: '10s', scope: `many-${sync}` })
    const ids = Array.from({ length: 10_050 }, (_, i) => `client-${i}`)
    // Twice each, in two rounds: the second round finds a cache that was cleared once it was full.
    for (const round of [1, 2]) {
      const decisions = []
      for (let from = 0; from < ids.length; from += 1_000) decisions.push(...await Promise.all(ids.slice(from, from + 1_000).map((id) => limit.consume(id))))
      const wrong = decisions.filter((d) => !d.allowed || d.remaining !== 2 - round || d.source !== 'redis')
      t.same(wrong.slice(0, 3), [], `${sync}, round ${round}: every client at its own count`)
    }
    t.equal((await limit.consume('client-7')).allowed, false, `${sync}: the third request of one client is refused`)
    t.equal(Number(await server.cli('GET', `rl:{many-${sync}|client-10049}:f`)) >= 2, true, `${sync}: the key of the last client holds its count`)
  }
})
