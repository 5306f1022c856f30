// A flight can outlive its answer: with grace it answers with the stale value at once while its
// loader keeps running. A caller arriving after an invalidation must not join that flight, whose
// loader began before the invalidation, and read a pre-invalidation value as fresh.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { redisWithInstance } from './fixtures.js'

t.test('after an invalidation, getOrSet starts a new load instead of joining one that began before it', async (t) => {
  const { cache } = await redisWithInstance(t)
  await cache.set('k', 'v1', { ttl: 50, grace: '10s', tags: ['t'] })
  await sleep(100) // v1 is now stale, within grace

  const beforeInvalidation = cache.getOrSet('k', async () => { await sleep(300); return 'loaded-before' }, { ttl: 50, grace: '10s', tags: ['t'] })
  t.equal(await beforeInvalidation, 'v1', 'the stale value is served at once while a refresh runs')

  await cache.invalidateTags(['t'])
  const after = await cache.getOrSet('k', async () => 'loaded-after', { ttl: '1m', tags: ['t'] })
  t.equal(after, 'loaded-after', 'the read after the invalidation runs its own loader')
})
