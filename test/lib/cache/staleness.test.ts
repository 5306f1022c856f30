// Grace, stale-if-error and loader timeouts. Memory-only caches suffice for the flight logic; the
// Redis-down variant uses a real server that is killed.
import t from 'tap'
import { createCache } from '../../../lib/cache/index.js'
import { CacheTimeoutError } from '../../../lib/errors/index.js'
import { sleep, waitFor } from '../../helpers/index.js'
import { deferred, redisWithInstance } from './fixtures.js'

t.test('grace: a stale value is served at once while one caller refreshes in the background', async (t) => {
  const cache = createCache({ ttl: '1m', grace: '1m' })
  t.teardown(() => cache.close())
  await cache.set('k', 'old', { ttl: '50ms' })
  await sleep(80)
  const gate = deferred()
  let loads = 0
  const loader = async (): Promise<string> => { loads++; await gate.promise; return 'new' }
  const answers = await Promise.all([cache.getOrSet('k', loader), cache.getOrSet('k', loader), cache.getOrSet('k', loader)])
  t.same(answers, ['old', 'old', 'old'], 'no caller waited on the loader')
  t.equal(loads, 1, 'one background refresh')
  gate.resolve()
  await waitFor(async () => (await cache.get('k')) === 'new', { what: 'the refreshed value' })
  t.equal(await cache.getOrSet('k', loader), 'new')
  t.equal(loads, 1)
  t.equal(cache.stats().namespaces['default']?.memory.stale, 3)
})

t.test('stale-if-error: a throwing loader serves the last good value within grace', async (t) => {
  const cache = createCache({ ttl: '30ms', grace: '200ms', timeout: { soft: '1s' } })
  t.teardown(() => cache.close())
  t.equal(await cache.getOrSet('k', () => 'good'), 'good')
  await sleep(50)
  t.equal(await cache.getOrSet('k', () => { throw new Error('db down') }), 'good', 'stale within grace')
  await sleep(250)
  await t.rejects(cache.getOrSet('k', () => { throw new Error('db down') }), /db down/, 'past grace the loader error surfaces')
  const stats = cache.stats().namespaces['default']
  t.equal(stats?.loadErrors, 2)
})

t.test('soft timeout: a slow loader yields the stale value, then finishes in the background', async (t) => {
  const cache = createCache({ ttl: '1m', grace: '1m' })
  t.teardown(() => cache.close())
  await cache.set('slow', 'old', { ttl: '30ms' })
  await cache.set('fast', 'old', { ttl: '30ms' })
  await sleep(50)
  const gate = deferred()
  const answer = await cache.getOrSet('slow', async () => { await gate.promise; return 'new' }, { timeout: { soft: '50ms' } })
  t.equal(answer, 'old')
  gate.resolve()
  await waitFor(async () => (await cache.get('slow')) === 'new', { what: 'the background load to land' })
  t.pass('the slow loader still filled the cache')

  const fast = await cache.getOrSet('fast', async () => 'fresh', { timeout: { soft: '2s' } })
  t.equal(fast, 'fresh', 'a loader within the soft timeout wins over stale')
})

t.test('hard timeout: without a stale value the caller gets CacheTimeoutError; the value still lands', async (t) => {
  const cache = createCache()
  t.teardown(() => cache.close())
  const gate = deferred()
  let aborted = false
  const loader = async ({ signal }: { signal: AbortSignal }): Promise<string> => {
    signal.addEventListener('abort', () => { aborted = true })
    await gate.promise
    return 'late'
  }
  const err = await cache.getOrSet('k', loader, { timeout: { hard: '60ms' } }).catch((e: unknown) => e)
  t.type(err, CacheTimeoutError)
  t.match(err, { code: 'FRS_CACHE_LOADER_TIMEOUT', key: 'k', timeoutMs: 60 })
  t.ok(aborted, 'the loader was told through its signal')
  gate.resolve()
  await waitFor(async () => (await cache.get('k')) === 'late', { what: 'the late value' })
  t.equal(cache.stats().namespaces['default']?.loadTimeouts, 1)

  await t.rejects(cache.getOrSetMany(['a', 'b'], () => sleep(200).then(() => [1, 2]), { timeout: { hard: '30ms' } }), CacheTimeoutError)
})

t.test('Redis down: the memory tier\'s stale value is served within grace when the loader fails', async (t) => {
  const { server, cache } = await redisWithInstance(t, { ttl: '50ms', grace: '1m' })
  t.equal(await cache.getOrSet('k', () => 'good'), 'good')
  await server.kill()
  await sleep(80)
  const started = Date.now()
  t.equal(await cache.getOrSet('k', () => { throw new Error('db down too') }, { timeout: { soft: '1s' } }), 'good')
  t.comment(`answered in ${Date.now() - started} ms with Redis dead`)
  t.equal(await cache.getOrSet('other', () => 'loaded'), 'loaded', 'a miss runs the loader without Redis')
})
