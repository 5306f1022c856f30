// The HTTP cache's security rules (issue 14, items 1–6), each against a real redis-server through
// real HTTP (app.inject): no response crosses identities, the key holds everything that selects a
// response, clients cannot force origin work on shared entries, and what one route may write is capped.
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { FastifyRequest } from 'fastify'
import { build, count, type Runs } from './http-cache-app.js'
import { useRedis } from '../helpers/index.js'

/**
 * The HTTP cache's stored entries in Redis whose URL matches the glob. Entries only: a miss's
 * stampede lock (`cache:lock:…`) may still be in Redis for a moment after its response was sent.
 */
async function keysIn (redis: { cli: (...args: string[]) => Promise<string> }, pattern: string): Promise<string[]> {
  return (await redis.cli('--scan', '--pattern', `cache:e:*${pattern}`)).split('\n').filter((k) => k !== '').sort()
}

t.test('1. a private route never stores or serves without an identity', async (t) => {
  const redis = await useRedis(t)
  const runs: Runs = {}
  const { app } = await build(t, { REDIS_URL: redis.url }, (app) => {
    // The app authenticates its own way (an API key), which the suite does not know about.
    app.get('/account', { config: { cache: { ttl: '1m', private: true } } },
      async (request) => ({ owner: request.headers['x-api-key'] ?? 'nobody', run: count(runs, 'account') }))
  })
  const alice = await app.inject({ url: '/account', headers: { 'x-api-key': 'alice' } })
  t.equal(alice.headers['x-cache'], 'BYPASS', 'no identity the cache knows: bypass')
  t.equal(alice.json().owner, 'alice')
  const bob = await app.inject({ url: '/account', headers: { 'x-api-key': 'bob' } })
  t.equal(bob.headers['x-cache'], 'BYPASS')
  t.equal(bob.json().owner, 'bob', "bob never receives alice's private response")
  t.equal(runs.account, 2)
  t.equal(await redis.cli('--scan', '--pattern', '*account*'), '', 'nothing stored')

  const ada = { authorization: 'Bearer ada' }
  t.equal((await app.inject({ url: '/account', headers: ada })).headers['x-cache'], 'MISS', 'an identity (Authorization) still caches')
  t.equal((await app.inject({ url: '/account', headers: ada })).headers['x-cache'], 'HIT')
})

t.test('1. userKey returning undefined keeps meaning bypass; a userKey identity caches per user', async (t) => {
  const redis = await useRedis(t)
  const runs: Runs = {}
  const { app } = await build(t, { REDIS_URL: redis.url }, (app) => {
    app.get('/account', { config: { cache: { ttl: '1m', private: true } } },
      async (request) => ({ owner: request.headers['x-api-key'] ?? 'nobody', run: count(runs, 'account') }))
  }, { userKey: (request: FastifyRequest) => request.headers['x-api-key'] as string | undefined })
  t.equal((await app.inject('/account')).headers['x-cache'], 'BYPASS')
  t.equal((await app.inject({ url: '/account', headers: { 'x-api-key': 'alice' } })).headers['x-cache'], 'MISS')
  const bob = await app.inject({ url: '/account', headers: { 'x-api-key': 'bob' } })
  t.equal(bob.headers['x-cache'], 'MISS')
  t.equal(bob.json().owner, 'bob')
  t.equal((await app.inject({ url: '/account', headers: { 'x-api-key': 'alice' } })).json().owner, 'alice')
  const keys = await keysIn(redis, '*account*')
  t.equal(keys.length, 2, 'one entry per user in Redis, none for the anonymous request')
  t.ok(keys.every((k) => / user=[\w-]{27}$/.test(k)), `each keyed by a hashed identity, never the raw one: ${keys.join(' | ')}`)
  t.notMatch(keys.join(' '), /alice|bob/)
})

t.test('2. any Cookie bypasses a public route unless the route names the cookies it ignores', async (t) => {
  const redis = await useRedis(t)
  const runs: Runs = {}
  const { app } = await build(t, { REDIS_URL: redis.url }, (app) => {
    const handler = (name: string) => async (request: FastifyRequest) => ({ cookie: request.headers.cookie ?? '', run: count(runs, name) })
    app.get('/feed', { config: { cache: { ttl: '1m' } } }, handler('feed'))
    app.get('/any', { config: { cache: { ttl: '1m', ignoreCookies: true } } }, handler('any'))
    app.get('/theme', { config: { cache: { ttl: '1m', ignoreCookies: ['theme', '_ga'] } } }, handler('theme'))
  })
  const alice = { cookie: 'token=alice' }
  t.equal((await app.inject({ url: '/feed', headers: alice })).headers['x-cache'], 'BYPASS')
  t.equal((await app.inject({ url: '/feed', headers: alice })).headers['x-cache'], 'BYPASS')
  const anonymous = await app.inject('/feed')
  t.equal(anonymous.headers['x-cache'], 'MISS', "the response computed for alice's cookie was not stored")
  t.equal(anonymous.json().cookie, '')
  t.equal(runs.feed, 3)

  await app.inject({ url: '/any', headers: alice })
  t.equal((await app.inject('/any')).headers['x-cache'], 'HIT', 'ignoreCookies: true caches whatever the cookies')

  t.equal((await app.inject({ url: '/theme', headers: { cookie: 'theme=dark; _ga=1' } })).headers['x-cache'], 'MISS', 'only ignored cookies: cached')
  t.equal((await app.inject('/theme')).headers['x-cache'], 'HIT')
  t.equal((await app.inject({ url: '/theme', headers: { cookie: 'theme=dark; token=alice' } })).headers['x-cache'], 'BYPASS',
    'a cookie the route did not list bypasses')
})

t.test('3. the key holds the authority and the scheme, as Fastify resolves them behind trusted proxies', async (t) => {
  const redis = await useRedis(t)
  const runs: Runs = {}
  const { app } = await build(t, { REDIS_URL: redis.url, TRUST_PROXY: '127.0.0.1' }, (app) => {
    app.get('/links', { config: { cache: { ttl: '1m' } } },
      async (request) => ({ self: `${request.protocol}://${request.host}/links`, run: count(runs, 'links') }))
  })
  const poisoned = await app.inject({ url: '/links', headers: { host: 'evil.example' } })
  t.equal(poisoned.json().self, 'http://evil.example/links')
  const real = await app.inject({ url: '/links', headers: { host: 'app.example' } })
  t.equal(real.headers['x-cache'], 'MISS', 'another Host is another entry')
  t.equal(real.json().self, 'http://app.example/links')
  t.equal((await app.inject({ url: '/links', headers: { host: 'APP.example' } })).headers['x-cache'], 'HIT', 'host names compare case-insensitively')

  const viaProxy = await app.inject({ url: '/links', headers: { host: 'internal:3000', 'x-forwarded-host': 'app.example', 'x-forwarded-proto': 'https' } })
  t.equal(viaProxy.headers['x-cache'], 'MISS', 'https is another entry')
  t.equal(viaProxy.json().self, 'https://app.example/links')
  const again = await app.inject({ url: '/links', headers: { host: 'other:3000', 'x-forwarded-host': 'app.example', 'x-forwarded-proto': 'https' } })
  t.equal(again.headers['x-cache'], 'HIT', 'the forwarded authority of a trusted proxy is the key')
  t.equal(runs.links, 3)
  t.match(await redis.cli('--scan', '--pattern', '*links*'), /GET https:\/\/app\.example\/links/, 'visible in the Redis key')
})

t.test('3. an untrusted client cannot choose the authority with X-Forwarded-Host', async (t) => {
  const redis = await useRedis(t)
  const runs: Runs = {}
  const { app } = await build(t, { REDIS_URL: redis.url }, (app) => {
    app.get('/links', { config: { cache: { ttl: '1m' } } }, async (request) => ({ self: request.host, run: count(runs, 'links') }))
  })
  await app.inject({ url: '/links', headers: { host: 'app.example', 'x-forwarded-host': 'evil.example' } })
  const hit = await app.inject({ url: '/links', headers: { host: 'app.example' } })
  t.equal(hit.headers['x-cache'], 'HIT', 'without trustProxy the Host header is the authority')
  t.equal(hit.json().self, 'app.example')
  const keys = await keysIn(redis, '*links*')
  t.equal(keys.length, 1)
  t.match(keys[0], /GET http:\/\/app\.example\/links$/, 'keyed by the Host header, not the forwarded one')
})

t.test('4. client no-cache, max-age=0 and Pragma never run the handler on a shared entry by default', async (t) => {
  const redis = await useRedis(t)
  const runs: Runs = {}
  let release!: () => void
  let gate = Promise.resolve()
  const { app } = await build(t, { REDIS_URL: redis.url }, (app) => {
    app.get('/hot', { config: { cache: { ttl: '1m' } } }, async () => ({ run: count(runs, 'hot') }))
    app.get('/fresh', { config: { cache: { ttl: '1m', clientRevalidation: true } } }, async () => {
      const n = count(runs, 'fresh')
      await gate
      return { run: n }
    })
  })
  await app.inject('/hot')
  for (const headers of [{ 'cache-control': 'no-cache' }, { 'cache-control': 'max-age=0' }, { pragma: 'no-cache' }]) {
    const answered = await app.inject({ url: '/hot', headers })
    t.equal(answered.headers['x-cache'], 'HIT', JSON.stringify(headers))
    t.equal(answered.json().run, 1)
  }
  const burst = await Promise.all(Array.from({ length: 10 }, () => app.inject({ url: '/hot', headers: { 'cache-control': 'no-cache' } })))
  t.ok(burst.every((r) => r.headers['x-cache'] === 'HIT'), 'a burst of no-cache is all hits')
  t.equal(runs.hot, 1, 'the handler ran once in all')

  t.equal((await app.inject('/fresh')).json().run, 1)
  gate = new Promise((resolve) => { release = resolve })
  const revalidations = Array.from({ length: 10 }, () => app.inject({ url: '/fresh', headers: { 'cache-control': 'no-cache' } }))
  await sleep(100)
  release()
  const answers = await Promise.all(revalidations)
  t.equal(runs.fresh, 2, 'clientRevalidation: ten concurrent no-cache requests run the handler once (collapsed)')
  t.ok(answers.every((r) => r.json().run === 2), 'and all get the revalidated response')
  t.equal((await app.inject('/fresh')).json().run, 2, 'which replaced the entry')
})

t.test('5. repeated query parameters keep their order; names are sorted', async (t) => {
  const redis = await useRedis(t)
  const runs: Runs = {}
  const { app } = await build(t, { REDIS_URL: redis.url }, (app) => {
    app.get('/search', { config: { cache: { ttl: '1m' } } }, async (request) => ({ q: (request.query as { q: unknown }).q, run: count(runs, 'search') }))
  })
  const ab = await app.inject('/search?q=a&q=b')
  const ba = await app.inject('/search?q=b&q=a')
  t.same(ab.json().q, ['a', 'b'])
  t.equal(ba.headers['x-cache'], 'MISS', 'another order of values is another response')
  t.same(ba.json().q, ['b', 'a'])
  t.equal((await app.inject('/search?z=1&q=b&q=a')).headers['x-cache'], 'MISS')
  t.equal((await app.inject('/search?q=b&z=1&q=a')).headers['x-cache'], 'HIT', 'other names may move')
  const keys = (await keysIn(redis, '*search*')).map((k) => k.slice(k.indexOf('/search')))
  t.same(keys, ['/search?q=a&q=b', '/search?q=b&q=a', '/search?q=b&q=a&z=1'], 'three entries in Redis, values in request order')
  t.equal(runs.search, 3)
})

t.test('6. query names the parameters that select the response; the rest are not in the key', async (t) => {
  const redis = await useRedis(t)
  const runs: Runs = {}
  const { app } = await build(t, { REDIS_URL: redis.url }, (app) => {
    app.get('/list', { config: { cache: { ttl: '1m', query: ['page', 'sort'] } } },
      async (request) => ({ page: (request.query as { page?: string }).page, run: count(runs, 'list') }))
  })
  await app.inject('/list?page=2&utm_source=a')
  t.equal((await app.inject('/list?page=2&utm_source=b&fbclid=x')).headers['x-cache'], 'HIT', 'unlisted parameters ignored')
  t.equal((await app.inject('/list?sort=name&page=2')).headers['x-cache'], 'MISS', 'listed ones select')
  t.equal((await app.inject('/list?page=3')).json().page, '3')
  t.equal(runs.list, 3)
  const keys = (await keysIn(redis, '*list*')).map((k) => k.slice(k.indexOf('/list')))
  t.same(keys, ['/list?page=2', '/list?page=2&sort=name', '/list?page=3'], 'only listed parameters reach the Redis keys')
})

t.test('6. a route writes at most maxEntries entries (and maxBytes); past it responses are served, not stored', async (t) => {
  const redis = await useRedis(t)
  const runs: Runs = {}
  const { app, logs } = await build(t, { REDIS_URL: redis.url }, (app) => {
    app.get('/crawl', { config: { cache: { ttl: '1m', maxEntries: 3 } } }, async (request) => ({ q: request.query, run: count(runs, 'crawl') }))
    app.get('/big', { config: { cache: { ttl: '1m', maxBytes: 2_600 } } }, async (request) => ({ q: request.query, pad: 'x'.repeat(900) }))
  })
  for (let i = 0; i < 10; i++) await app.inject(`/crawl?r=${i}`)
  t.equal(app.httpCache.stats().capped, 7, 'seven writes refused')
  const keys = await keysIn(redis, '*crawl*')
  t.equal(keys.length, 3, 'three entries in Redis')
  t.equal((await app.inject('/crawl?r=1')).headers['x-cache'], 'HIT', 'stored ones still hit')
  t.equal((await app.inject('/crawl?r=9')).headers['x-cache'], 'MISS', 'refused ones run the handler')
  t.equal(logs().filter((l) => /maxEntries/.test(l.msg ?? '')).length, 1, 'one warning when the route reaches its cap')

  for (let i = 0; i < 5; i++) await app.inject(`/big?r=${i}`)
  t.equal((await keysIn(redis, '*big*')).length, 2, 'two entries of ~950-byte bodies (and their headers) fit in 2600 bytes')
})

t.test('6. a warning at start when the HTTP cache shares a noeviction Redis with an uncapped route', async (t) => {
  const redis = await useRedis(t)
  t.equal(await redis.cli('config', 'get', 'maxmemory-policy'), 'maxmemory-policy\nnoeviction')
  const uncapped = await build(t, { REDIS_URL: redis.url }, (app) => {
    app.get('/open', { config: { cache: { ttl: '1m', maxEntries: false, maxBytes: false } } }, async () => ({ ok: true }))
  })
  const warned = uncapped.logs().filter((l) => /noeviction/.test(l.msg ?? '') && /GET \/open/.test(l.msg ?? ''))
  t.equal(warned.length, 1, 'warned once, naming the route')

  const capped = await build(t, { REDIS_URL: redis.url }, (app) => {
    app.get('/open', { config: { cache: { ttl: '1m' } } }, async () => ({ ok: true }))
  })
  t.equal(capped.logs().filter((l) => /http cache/i.test(l.msg ?? '') && /noeviction/.test(l.msg ?? '')).length, 0, 'the default cap: no warning')

  const lru = await useRedis(t)
  await lru.cli('config', 'set', 'maxmemory-policy', 'allkeys-lru')
  const separate = await build(t, { REDIS_URL: redis.url, REDIS_CACHE_URL: lru.url }, (app) => {
    app.get('/open', { config: { cache: { ttl: '1m', maxEntries: false, maxBytes: false } } }, async () => ({ ok: true }))
  })
  t.equal(separate.logs().filter((l) => /http cache/i.test(l.msg ?? '') && /noeviction/.test(l.msg ?? '')).length, 0,
    'a separate cache instance: no warning')
})
