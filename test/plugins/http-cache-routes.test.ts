// Third security review, item 6 and what it asked to look into: the key holds the matched route
// (routes at one URL that differ by a constraint), a HEAD handler of its own never fills GET's
// entry, a host-constrained route behind a trusted proxy keeps its own entries, and the
// stale-while-revalidate refresh does not spend the client's rate-limit quota.
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { build, count, type Runs } from './http-cache-app.js'
import { useRedis, waitFor } from '../helpers/index.js'

t.test('6. routes that differ only by a version constraint keep their own entries', async (t) => {
  const redis = await useRedis(t)
  const { app } = await build(t, { REDIS_URL: redis.url }, (app) => {
    app.get('/api', { config: { cache: { ttl: '1m' } } }, async () => ({ version: 1 }))
    app.get('/api', { constraints: { version: '2.0.0' }, config: { cache: { ttl: '1m' } } }, async () => ({ version: 2 }))
  })
  const v2 = { 'accept-version': '2.0.0' }
  t.equal((await app.inject({ url: '/api', headers: v2 })).json().version, 2)
  t.equal((await app.inject({ url: '/api', headers: v2 })).headers['x-cache'], 'HIT')
  const plain = await app.inject('/api')
  t.equal(plain.json().version, 1, 'an unversioned request never gets the versioned entry')
  t.equal(plain.headers['x-cache'], 'MISS')
  t.equal((await app.inject('/api')).json().version, 1)
  t.equal((await app.inject({ url: '/api', headers: v2 })).json().version, 2, 'nor the reverse')
})

t.test('6. behind a trusted proxy, a host-constrained route keeps its entries though the key uses X-Forwarded-Host', async (t) => {
  const redis = await useRedis(t)
  const { app } = await build(t, { REDIS_URL: redis.url, TRUST_PROXY: '127.0.0.1' }, (app) => {
    app.get('/site', { constraints: { host: 'a.example' }, config: { cache: { ttl: '1m' } } }, async () => ({ site: 'a' }))
    app.get('/site', { constraints: { host: 'b.example' }, config: { cache: { ttl: '1m' } } }, async () => ({ site: 'b' }))
  })
  // Routed on Host (a.example), keyed on the forwarded authority (b.example).
  t.equal((await app.inject({ url: '/site', headers: { host: 'a.example', 'x-forwarded-host': 'b.example' } })).json().site, 'a')
  const b = await app.inject({ url: '/site', headers: { host: 'b.example', 'x-forwarded-host': 'b.example' } })
  t.equal(b.json().site, 'b', "b.example's route answers, not a's stored response")
  t.equal(b.headers['x-cache'], 'MISS')
})

t.test('a HEAD handler of its own never fills the GET entry; the automatic HEAD route does', async (t) => {
  const redis = await useRedis(t)
  const runs: Runs = {}
  const { app } = await build(t, { REDIS_URL: redis.url }, (app) => {
    app.get('/file', { exposeHeadRoute: false, config: { cache: { ttl: '1m' } } }, async () => ({ bytes: 'content', run: count(runs, 'file') }))
    app.head('/file', { config: { cache: { ttl: '1m' } } }, async (_request, reply) => { count(runs, 'head'); return reply.header('content-length', '64').send('') })
    app.get('/auto', { config: { cache: { ttl: '1m' } } }, async () => ({ bytes: 'auto', run: count(runs, 'auto') }))
  })
  t.equal((await app.inject({ method: 'HEAD', url: '/file' })).statusCode, 200)
  const get = await app.inject('/file')
  t.equal(get.json().bytes, 'content', 'GET gets its own body, not the HEAD handler\'s empty one')
  t.equal(get.headers['x-cache'], 'MISS')
  t.equal((await app.inject({ method: 'HEAD', url: '/file' })).headers['x-cache'], 'HIT', 'HEAD reads the GET entry')

  t.equal((await app.inject({ method: 'HEAD', url: '/auto' })).headers['x-cache'], 'MISS')
  const auto = await app.inject('/auto')
  t.equal(auto.headers['x-cache'], 'HIT', 'the automatic HEAD route ran the GET handler and filled the entry')
  t.equal(auto.json().bytes, 'auto')
})

for (const hook of ['onRequest', 'preHandler'] as const) {
  t.test(`the stale-while-revalidate refresh does not count against the client's rate limit (limit in ${hook})`, async (t) => {
    const redis = await useRedis(t)
    const runs: Runs = {}
    const { app } = await build(t, { REDIS_URL: redis.url }, (app) => {
      app.get('/feed', { config: { cache: { ttl: '200ms', staleWhileRevalidate: '1m' }, rateLimit: { max: 10, timeWindow: '1m', hook } } },
        async () => ({ run: count(runs, 'feed') }))
    })
    const remaining = (response: { headers: Record<string, unknown> }): number => Number(/r=(\d+)/.exec(String(response.headers.ratelimit))?.[1])
    // In onRequest every request counts; in preHandler a public hit is answered before the limit runs.
    const counted = hook === 'onRequest'
    t.equal(remaining(await app.inject('/feed')), 9)
    await sleep(300)
    const stale = await app.inject('/feed')
    t.equal(stale.headers['x-cache'], 'STALE')
    if (counted) t.equal(remaining(stale), 8)
    await waitFor(() => runs.feed === 2, { what: 'the background refresh' })
    await sleep(50)
    const next = await app.inject('/feed')
    t.equal(next.headers['x-cache'], 'HIT', 'refreshed')
    if (counted) t.equal(remaining(next), 7, 'three requests counted, the refresh not')
    const miss = await app.inject('/feed?page=2')
    t.equal(remaining(miss), counted ? 6 : 8, 'the refresh never counted against the client')
  })
}
