// ResponseStore without Fastify: the one-handler-run hand-off over the cache's getOrSet, bounded waits,
// abandoned fills, and invalidations read back at once.
import t from 'tap'
import { Redis } from 'ioredis'
import { createCache } from '../../../lib/cache/index.js'
import { computeEtag, ResponseStore, type Fill, type StoredResponse } from '../../../lib/http-cache/index.js'
import { useRedis } from '../../helpers/index.js'

const entry = (body: string): StoredResponse => ({
  status: 200, headers: { 'content-type': 'text/plain' }, body, encoding: 'utf8', etag: computeEtag(body), storedAt: Date.now()
})

function memoryStore (collapseWaitMs = 2_000): ResponseStore {
  return new ResponseStore({ cache: createCache({}).namespace('http'), collapseWaitMs, fillTimeoutMs: 60_000 })
}

t.test('the first lookup fills; identical lookups wait for it and get its response', async (t) => {
  const store = memoryStore()
  const first = await store.lookup('GET /a', 60_000, ['a'])
  t.equal(first.kind, 'fill')
  const waiting = Promise.all([store.lookup('GET /a', 60_000, ['a']), store.lookup('GET /a', 60_000, ['a'])])
  ;(first as { fill: Fill }).fill.complete(entry('hello'))
  const [one, two] = await waiting
  t.match(one, { kind: 'found', entry: { body: 'hello' }, collapsed: true })
  t.match(two, { kind: 'found', entry: { body: 'hello' } })
  t.match(await store.lookup('GET /a', 60_000, ['a']), { kind: 'found', collapsed: false }, 'later: a plain hit')
  t.equal(store.stats.collapsed, 2)
})

t.test('an abandoned fill releases the waiters to run their own handlers', async (t) => {
  const store = memoryStore()
  const first = await store.lookup('GET /b', 60_000, [])
  const waiter = store.lookup('GET /b', 60_000, [])
  ;(first as { fill: Fill }).fill.abandon()
  t.same(await waiter, { kind: 'miss' })
  const next = await store.lookup('GET /b', 60_000, [])
  t.equal(next.kind, 'fill', 'the next request tries again')
  ;(next as { fill: Fill }).fill.complete(entry('late'))
  ;(next as { fill: Fill }).fill.abandon() // settling twice is harmless
  t.match(await store.lookup('GET /b', 60_000, []), { kind: 'found', entry: { body: 'late' } })
})

t.test('the wait is bounded by collapseWait; a fill that finishes later still stores', async (t) => {
  const store = memoryStore(300)
  const first = await store.lookup('GET /c', 60_000, [])
  const started = Date.now()
  t.same(await store.lookup('GET /c', 60_000, []), { kind: 'miss' })
  const waited = Date.now() - started
  t.ok(waited >= 250 && waited < 1_500, `gave up after ~300 ms (${waited} ms)`)
  ;(first as { fill: Fill }).fill.complete(entry('slow'))
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.match(await store.lookup('GET /c', 60_000, []), { kind: 'found', entry: { body: 'slow' } })
})

t.test('across two instances on one Redis: one fill, the other instance waits for it; invalidation is read back at once', async (t) => {
  const redis = await useRedis(t)
  const clients = [new Redis(redis.url), new Redis(redis.url)]
  t.teardown(() => clients.forEach((c) => c.disconnect()))
  const [a, b] = clients.map((client) => new ResponseStore({
    cache: createCache({ redis: client }).namespace('http'), collapseWaitMs: 2_000, fillTimeoutMs: 60_000
  })) as [ResponseStore, ResponseStore]
  const first = await a.lookup('GET /d', 60_000, ['d'])
  t.equal(first.kind, 'fill')
  const other = b.lookup('GET /d', 60_000, ['d'])
  await new Promise((resolve) => setTimeout(resolve, 100))
  ;(first as { fill: Fill }).fill.complete(entry('shared'))
  t.match(await other, { kind: 'found', entry: { body: 'shared' } }, 'read what the other instance stored')

  await a.invalidate(['d'])
  t.same(await a.lookup('GET /d', 60_000, ['d']).then((l) => l.kind), 'fill', 'the invalidating instance misses at once')
})
