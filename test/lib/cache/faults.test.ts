// Redis SIGKILLed or SIGSTOPped during reads: every call settles within the command timeout plus a
// margin, serves memory values or misses, and never throws a Redis error. No timing assertions: the
// elapsed times are reported, and a hang would show up as a test timeout.
import t from 'tap'
import { sleep, waitFor } from '../../helpers/index.js'
import { COMMAND_TIMEOUT_MS, redisWithInstance } from './fixtures.js'

async function timed<T> (work: () => Promise<T>): Promise<{ value: T, ms: number }> {
  const started = Date.now()
  const value = await work()
  return { value, ms: Date.now() - started }
}

t.test('SIGKILL during reads: misses and memory values, no errors, one warning', async (t) => {
  const { server, cache, warnings } = await redisWithInstance(t)
  await cache.set('in-memory', 'kept')
  await cache.namespace('cold', { memory: false }).set('k', 'only in redis')
  const reads = Array.from({ length: 20 }, (_, i) => cache.get(i % 2 === 0 ? 'in-memory' : `missing:${i}`))
  const killing = server.kill()
  const settled = await Promise.allSettled(reads)
  await killing
  t.ok(settled.every((r) => r.status === 'fulfilled'), 'no read rejected')

  const after = await timed(() => Promise.all([
    cache.get('in-memory'),
    cache.namespace('cold', { memory: false }).get('k'),
    cache.getOrSet('loaded', () => 'from loader'),
    cache.set('x', 1).then(() => 'set ok'),
    cache.delete('x').then(() => 'delete ok'),
    cache.invalidateTags(['t']).then(() => 'invalidate ok'),
    cache.namespace('other').clear().then(() => 'clear ok'),
    cache.getMany(['in-memory', 'nope']),
    cache.getOrSetMany(['m1'], (keys) => keys)
  ]))
  t.same(after.value, ['kept', undefined, 'from loader', 'set ok', 'delete ok', 'invalidate ok', 'clear ok', ['kept', undefined], ['m1']])
  t.comment(`with Redis dead, a batch of 9 calls settled in ${after.ms} ms (command timeout ${COMMAND_TIMEOUT_MS} ms)`)
  t.equal(warnings.filter((w) => w.includes('Redis operation failed')).length, 1, 'logged once per outage')
  t.ok(cache.stats().redisFailures >= 1)

  await server.restart()
  await waitFor(async () => {
    await cache.set('back', 'yes')
    return (await server.cli('EXISTS', 'cache:e:{}default:back')) === '1'
  }, { what: 'writes to reach Redis again' })
  t.ok(warnings.some((w) => w.includes('answers again')), 'recovery is logged')
})

t.test('SIGSTOP during reads: calls settle within the command timeout and never throw', async (t) => {
  const { server, cache, warnings } = await redisWithInstance(t, { retryAfter: '2s' })
  t.teardown(() => server.thaw())
  await cache.set('in-memory', 'kept')
  const cold = cache.namespace('cold', { memory: false })
  await cold.set('k', 'only in redis')
  server.freeze()

  const first = await timed(() => Promise.all([cold.get('k'), cache.get('in-memory'), cold.getOrSet('loaded', () => 'from loader')]))
  t.same(first.value, [undefined, 'kept', 'from loader'])
  t.comment(`first calls against a frozen Redis settled in ${first.ms} ms (command timeout ${COMMAND_TIMEOUT_MS} ms)`)
  const next = await timed(() => Promise.all([cold.get('k'), cold.set('y', 1), cache.invalidateTags(['t'])]))
  t.same(next.value, [undefined, undefined, undefined])
  t.comment(`later calls skip the frozen server for retryAfter: ${next.ms} ms`)
  t.equal(warnings.filter((w) => w.includes('Redis operation failed')).length, 1)

  server.thaw()
  await sleep(100)
  await waitFor(async () => (await cold.get('k')) === 'only in redis', { what: 'reads from Redis after thaw', timeoutMs: 15_000 })
  t.pass('back to normal after thaw')
})

t.test('isRedisReady() false: Redis is not called at all', async (t) => {
  let ready = true
  const { server, cache } = await redisWithInstance(t, { isRedisReady: () => ready })
  await cache.set('k', 1)
  ready = false
  const cold = cache.namespace('cold', { memory: false })
  const before = await server.cli('INFO', 'commandstats')
  t.equal(await cold.get('k'), undefined)
  await cold.set('k', 2)
  t.equal(await cache.get('k'), 1, 'memory still serves')
  const stats = await server.cli('INFO', 'commandstats')
  const calls = (cmd: string, text: string): string | undefined => new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(text)?.[1]
  t.equal(calls('get', stats), calls('get', before))
  t.equal(calls('set', stats), calls('set', before))
})
