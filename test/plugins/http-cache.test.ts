// Route-level HTTP response caching through the suite, against real Redis: hits, misses, ETag/304,
// Vary, no-cache, collapse, invalidation across instances, bypass rules, private entries, Redis down.
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildServer } from '../../server.js'
import { useRedis } from '../helpers/index.js'
import { buildTestApp, timeUntil } from '../helper.js'

type Runs = Record<string, number>

interface Scope { teardown: (fn: () => unknown) => void }

/** The demo app plus test routes that count their handler runs; rate limits off so bursts are not 429s. */
async function cachedApp (t: Scope, env: Record<string, string>, runs: Runs = {}, extra?: (app: FastifyInstance) => void): Promise<FastifyInstance> {
  const app = await buildServer({ env: { NODE_ENV: 'test', LOG_LEVEL: 'silent', RATE_LIMIT_GLOBAL: 'false', ...env }, logger: false })
  const run = (name: string): number => (runs[name] = (runs[name] ?? 0) + 1)
  app.get('/items', {
    schema: { querystring: { type: 'object', properties: { page: { type: 'integer' } } } },
    preValidation: async () => { run('preValidation') },
    config: { cache: { ttl: '1m', tags: ['items'] } }
  }, async (_request, reply) => {
    const n = run('items')
    await sleep(200) // a slow source: collapse has something to collapse
    reply.header('x-source', 'db')
    return { items: [1, 2], run: n }
  })
  app.get('/items/:id', { config: { cache: { ttl: '1m', tags: (request) => ['items', `item:${(request.params as { id: string }).id}`] } } },
    async (request) => ({ id: (request.params as { id: string }).id, run: run(`item:${(request.params as { id: string }).id}`) }))
  app.post('/items', { config: { cache: { invalidates: ['items'] } } }, async (_request, reply) => reply.code(201).send({ ok: true }))
  app.put('/items/:id', { config: { cache: { invalidates: (request) => [`item:${(request.params as { id: string }).id}`] } } },
    async () => ({ ok: true }))
  app.post('/items/fail', { config: { cache: { invalidates: ['items'] } } }, async (_request, reply) => reply.code(409).send({ ok: false }))
  app.get('/greeting', { config: { cache: { ttl: '1m', vary: ['accept-language'] } } },
    async (request) => ({ hello: request.headers['accept-language'] === 'fr' ? 'bonjour' : 'hello', run: run('greeting') }))
  app.get('/me', { config: { cache: { ttl: '1m', private: true } } },
    async (request) => ({ who: request.headers.authorization ?? 'anonymous', run: run('me') }))
  app.get('/cookie', { config: { cache: { ttl: '1m' } } }, async (_request, reply) => {
    run('cookie')
    return reply.header('set-cookie', 'seen=1; Path=/').send({ ok: true })
  })
  app.get('/stream', { config: { cache: { ttl: '1m' } } }, async (_request, reply) => {
    run('stream')
    return reply.type('text/plain').send(Readable.from(['a', 'b']))
  })
  app.get('/binary', { config: { cache: { ttl: '1m' } } }, async (_request, reply) => {
    run('binary')
    return reply.type('application/octet-stream').send(Buffer.from([0, 1, 2, 255]))
  })
  let failing = false
  app.get('/flaky', { config: { cache: { ttl: '300ms', staleIfError: '1m' } } }, async (_request, reply) => {
    const n = run('flaky')
    return failing ? reply.code(503).send({ error: 'down' }) : { run: n }
  })
  app.post('/flaky/fail', async () => { failing = true; return { failing } })
  app.get('/swr', { config: { cache: { ttl: '300ms', staleWhileRevalidate: '1m' } } }, async () => ({ run: run('swr') }))
  app.get('/status/:code', { config: { cache: { ttl: '1m' } } }, async (request, reply) => {
    run('status')
    return reply.code(Number((request.params as { code: string }).code)).send({ ok: false })
  })
  extra?.(app)
  t.teardown(() => app.close())
  await app.ready()
  return app
}

t.test('miss, then hit: served before validation and the handler, with the stored status, headers and body', async (t) => {
  const redis = await useRedis(t)
  const runs: Runs = {}
  const app = await cachedApp(t, { REDIS_URL: redis.url }, runs)

  const miss = await app.inject('/items?page=1')
  t.equal(miss.statusCode, 200)
  t.equal(miss.headers['x-cache'], 'MISS')
  t.equal(miss.headers['cache-control'], 'public, max-age=60, s-maxage=60')
  t.equal(miss.headers['surrogate-key'], 'items')
  t.equal(miss.headers.age, '0')
  t.match(miss.headers.etag, /^"[\w-]{27}"$/)

  const hit = await app.inject('/items?page=1')
  t.equal(hit.headers['x-cache'], 'HIT')
  t.equal(hit.body, miss.body, 'the stored serialised body')
  t.equal(hit.headers.etag, miss.headers.etag, 'ETag computed once, at store time')
  t.equal(hit.headers['content-type'], 'application/json; charset=utf-8')
  t.equal(hit.headers['x-source'], 'db', "the handler's own headers are replayed")
  t.equal(hit.headers['content-length'], String(Buffer.byteLength(miss.body)))
  t.equal(runs.items, 1, 'the handler ran once')
  t.equal(runs.preValidation, 1, 'a hit skips validation and the hooks after it')

  t.match(await redis.cli('--scan', '--pattern', 'cache:e:{}http:*'), /cache:e:{}http:GET http:\/\/localhost(:80)?\/items\?page=1/, 'stored in Redis under the http namespace')
  const other = await cachedApp(t, { REDIS_URL: redis.url })
  const fromRedis = await other.inject('/items?page=1')
  t.equal(fromRedis.headers['x-cache'], 'HIT', 'another instance hits the entry in Redis')
  t.equal(fromRedis.body, miss.body)

  t.equal((await app.inject('/items?page=2')).headers['x-cache'], 'MISS', 'another query is another entry')
  t.match(app.httpCache.stats(), { hits: 1, misses: 2, stores: 2 }, 'counted for metrics')
})

t.test('query parameters in any order share an entry; Vary headers select one', async (t) => {
  const runs: Runs = {}
  const app = await cachedApp(t, {}, runs)
  await app.inject('/items/1?b=2&a=1')
  t.equal((await app.inject('/items/1?a=1&b=2')).headers['x-cache'], 'HIT')

  const en = await app.inject({ url: '/greeting', headers: { 'accept-language': 'en' } })
  const fr = await app.inject({ url: '/greeting', headers: { 'accept-language': 'fr' } })
  t.equal(en.json().hello, 'hello')
  t.equal(fr.json().hello, 'bonjour')
  t.equal(fr.headers['x-cache'], 'MISS', 'another language is another entry')
  t.equal(fr.headers.vary, 'accept-language', 'Vary tells downstream caches')
  const frAgain = await app.inject({ url: '/greeting', headers: { 'accept-language': 'fr' } })
  t.equal(frAgain.headers['x-cache'], 'HIT')
  t.equal(frAgain.json().hello, 'bonjour')
  t.equal((await app.inject('/greeting')).headers['x-cache'], 'MISS', 'no header is its own entry')
  t.equal(runs.greeting, 3)
})

t.test('ETag and If-None-Match: 304 without a body, on hits and on the miss that stores', async (t) => {
  const app = await cachedApp(t, {})
  const first = await app.inject('/items/7')
  const etag = first.headers.etag as string
  const notModified = await app.inject({ url: '/items/7', headers: { 'if-none-match': etag } })
  t.equal(notModified.statusCode, 304)
  t.equal(notModified.body, '')
  t.equal(notModified.headers.etag, etag)
  t.equal(notModified.headers['x-cache'], 'HIT')
  t.equal(notModified.headers['cache-control'], 'public, max-age=60, s-maxage=60')
  t.notOk(notModified.headers['content-length'], 'no Content-Length on a 304')
  t.equal((await app.inject({ url: '/items/7', headers: { 'if-none-match': `"other", W/${etag}` } })).statusCode, 304, 'weak comparison in a list')
  t.equal((await app.inject({ url: '/items/7', headers: { 'if-none-match': '"other"' } })).statusCode, 200)

  const cold = await app.inject({ url: '/items?page=9', headers: { 'if-none-match': '*' } })
  t.equal(cold.statusCode, 304, 'the miss that stores answers a matching If-None-Match too')
  t.equal(cold.headers['x-cache'], 'MISS')
})

t.test('collapse: identical concurrent requests run the handler once, on one instance and across two', async (t) => {
  const redis = await useRedis(t)
  const runs: Runs = {}
  const env = { REDIS_URL: redis.url }
  const a = await cachedApp(t, env, runs)
  const b = await cachedApp(t, env, runs)

  const local = await Promise.all(Array.from({ length: 20 }, () => a.inject('/items?page=1')))
  t.equal(runs.items, 1, '20 concurrent requests, 1 handler run')
  t.ok(local.every((r) => r.statusCode === 200 && r.body === local[0]?.body), 'all get the same 200 body')
  t.same(local.map((r) => r.headers['x-cache']).sort(), [...Array<string>(19).fill('HIT'), 'MISS'])
  t.equal(a.httpCache.stats().collapsed, 19)

  const across = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).inject('/items?page=2')))
  t.equal(runs.items, 2, '10 + 10 concurrent requests on two instances, 1 handler run')
  t.ok(across.every((r) => r.statusCode === 200 && r.body === across[0]?.body))
})

t.test('collapse is bounded: waiters whose leader fails or stalls run their own handler', async (t) => {
  const runs: Runs = {}
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  const app = await cachedApp(t, {}, runs, (app) => {
    app.get('/stall', { config: { cache: { ttl: '1m' } } }, async () => {
      if ((runs.stall = (runs.stall ?? 0) + 1) === 1) await gate
      return { run: runs.stall }
    })
  })
  const responses = await Promise.all(Array.from({ length: 10 }, () => app.inject('/status/500')))
  t.ok(responses.every((r) => r.statusCode === 500), 'an error is never cached...')
  t.ok((runs.status ?? 0) >= 2, '...and waiters run their own handler rather than share it')
  t.equal((await app.inject('/status/500')).headers['x-cache'], 'MISS')

  const started = Date.now()
  const stalled = app.inject('/stall')
  await sleep(50)
  const waiter = await app.inject('/stall')
  const waited = Date.now() - started
  t.equal(waiter.statusCode, 200)
  t.ok(waited >= 4_500 && waited < 8_000, `a waiter gives up after collapseWait (5s) and runs its own handler (${waited} ms)`)
  release()
  t.equal((await stalled).statusCode, 200)
})

t.test('invalidation: a 2xx write drops tagged entries on every instance', async (t) => {
  const redis = await useRedis(t)
  const runs: Runs = {}
  const env = { REDIS_URL: redis.url }
  const a = await cachedApp(t, env, runs)
  const b = await cachedApp(t, env, runs)
  await a.inject('/items/1')
  await a.inject('/items/2')
  t.equal((await b.inject('/items/1')).headers['x-cache'], 'HIT', 'b reads the entry from Redis (and keeps it in memory)')
  t.equal((await b.inject('/items/1')).headers['x-cache'], 'HIT')

  t.equal((await a.inject({ method: 'POST', url: '/items/fail' })).statusCode, 409)
  t.equal((await b.inject('/items/1')).headers['x-cache'], 'HIT', 'a failed write invalidates nothing')

  t.equal((await a.inject({ method: 'PUT', url: '/items/1' })).statusCode, 200)
  await timeUntil(async () => (await b.inject('/items/1')).headers['x-cache'] === 'MISS', 2_000, 'item:1 dropped on b')
  t.equal((await b.inject('/items/2')).headers['x-cache'], 'HIT', 'a tag computed from the request drops only its entry')

  t.equal((await b.inject({ method: 'POST', url: '/items' })).statusCode, 201)
  t.equal((await b.inject('/items/2')).headers['x-cache'], 'MISS', 'the writing instance reads its own write at once')
  await a.inject('/items/1') // a's memory tier held it: gone once the message arrives
  await a.inject({ method: 'POST', url: '/items' })
  await timeUntil(async () => (await a.inject('/items/1')).headers['x-cache'] === 'MISS', 2_000, 'items dropped on a')
  t.ok(b.httpCache.stats().invalidations >= 1)

  await a.httpCache.invalidate(['items'])
  t.equal((await a.inject('/items/1')).headers['x-cache'], 'MISS', 'app.httpCache.invalidate does the same from code')
})

t.test('bypass: Authorization, the session cookie, Set-Cookie, streams and non-2xx are never stored', async (t) => {
  const runs: Runs = {}
  const app = await cachedApp(t, {}, runs)
  for (const headers of [{ authorization: 'Bearer abc' }, { cookie: 'theme=dark; sid=s%3Asomething.sig' }]) {
    const first = await app.inject({ url: '/items/1', headers })
    const second = await app.inject({ url: '/items/1', headers })
    t.equal(first.headers['x-cache'], 'BYPASS', Object.keys(headers).join())
    t.equal(second.headers['x-cache'], 'BYPASS')
    t.notOk(first.headers.etag, 'no cache headers on a bypassed response')
  }
  t.equal(runs['item:1'], 4, 'every authenticated request ran the handler')
  t.equal((await app.inject('/items/1')).headers['x-cache'], 'MISS', 'and none was stored for anonymous users')
  t.equal((await app.inject({ url: '/items/1', headers: { cookie: 'theme=dark' } })).headers['x-cache'], 'BYPASS', 'any other cookie too (unless the route sets ignoreCookies)')

  const cookie = await app.inject('/cookie')
  t.equal(cookie.headers['x-cache'], 'BYPASS')
  t.equal((await app.inject('/cookie')).headers['x-cache'], 'BYPASS')
  t.equal(runs.cookie, 2, 'a response that sets a cookie is not stored')

  const stream = await app.inject('/stream')
  t.equal(stream.body, 'ab')
  t.equal(stream.headers['x-cache'], 'BYPASS')
  await app.inject('/stream')
  t.equal(runs.stream, 2, 'streams are not stored')

  const binary = await app.inject('/binary')
  const binaryHit = await app.inject('/binary')
  t.equal(binaryHit.headers['x-cache'], 'HIT', 'Buffers are')
  t.same([...binaryHit.rawPayload], [0, 1, 2, 255])
  t.equal(binaryHit.headers.etag, binary.headers.etag)

  t.equal((await app.inject('/status/404')).headers['x-cache'], 'MISS')
  t.equal((await app.inject('/status/404')).headers['x-cache'], 'MISS', 'a 404 is not stored')
})

t.test('private: keyed by user, Cache-Control private, never shared', async (t) => {
  const runs: Runs = {}
  const app = await cachedApp(t, {}, runs)
  const ada = { authorization: 'Bearer ada' }
  const bob = { authorization: 'Bearer bob' }
  const first = await app.inject({ url: '/me', headers: ada })
  t.equal(first.headers['x-cache'], 'MISS')
  t.equal(first.headers['cache-control'], 'private, max-age=60', 'private, no s-maxage')
  const again = await app.inject({ url: '/me', headers: ada })
  t.equal(again.headers['x-cache'], 'HIT')
  t.equal(again.json().who, 'Bearer ada')
  const other = await app.inject({ url: '/me', headers: bob })
  t.equal(other.headers['x-cache'], 'MISS', "another user never gets ada's entry")
  t.equal(other.json().who, 'Bearer bob')
  t.equal((await app.inject('/me')).json().who, 'anonymous')
  t.equal(runs.me, 3)
})

t.test('HEAD: answered from the GET entry, and a HEAD miss fills it', async (t) => {
  const runs: Runs = {}
  const app = await cachedApp(t, {}, runs)
  const head = await app.inject({ method: 'HEAD', url: '/items/5' })
  t.equal(head.statusCode, 200)
  t.equal(head.body, '')
  t.equal(head.headers['x-cache'], 'MISS')
  const get = await app.inject('/items/5')
  t.equal(get.headers['x-cache'], 'HIT', 'the HEAD stored the full response')
  t.same(get.json(), { id: '5', run: 1 })
  t.equal(head.headers['content-length'], get.headers['content-length'])
  const headHit = await app.inject({ method: 'HEAD', url: '/items/5' })
  t.equal(headHit.headers['x-cache'], 'HIT')
  t.equal(headHit.body, '')
  t.equal(headHit.headers.etag, get.headers.etag)
  t.equal(runs['item:5'], 1)
})

t.test('stale-while-revalidate serves the old response and refreshes in the background; stale-if-error covers a failing handler', async (t) => {
  const runs: Runs = {}
  const app = await cachedApp(t, {}, runs)
  await app.inject('/swr')
  await sleep(400)
  const stale = await app.inject('/swr')
  t.equal(stale.headers['x-cache'], 'STALE')
  t.equal(stale.json().run, 1)
  t.equal(stale.headers['cache-control'], 'public, max-age=0, s-maxage=0, stale-while-revalidate=60')
  await timeUntil(async () => (await app.inject('/swr')).json().run === 2, 2_000, 'background refresh stored')
  t.equal(runs.swr, 2, 'one background refresh')

  await app.inject('/flaky')
  await sleep(400)
  await app.inject({ method: 'POST', url: '/flaky/fail' })
  const rescued = await app.inject('/flaky')
  t.equal(rescued.statusCode, 200, 'the handler answered 503; the stale response answered instead')
  t.equal(rescued.headers['x-cache'], 'STALE')
  t.equal(rescued.json().run, 1)
  t.equal(runs.flaky, 2)
  const retried = await app.inject('/flaky')
  t.equal(retried.headers['x-cache'], 'STALE')
  t.equal(runs.flaky, 3, 'the next request tries the handler again: the finished refresh released its key')
})

t.test('Redis killed: hits from memory, misses run the handler, writes still 2xx; never an error from the cache', async (t) => {
  const redis = await useRedis(t)
  const runs: Runs = {}
  const app = await cachedApp(t, { REDIS_URL: redis.url, REDIS_WAIT_ON_BOOT: 'true' }, runs)
  await app.inject('/items/1')
  await redis.kill()
  await timeUntil(() => app.redisState.status === 'disconnected', 2_000, 'disconnected')
  const hit = await app.inject('/items/1')
  t.equal(hit.statusCode, 200)
  t.equal(hit.headers['x-cache'], 'HIT', 'the memory tier still serves')
  const miss = await app.inject('/items/2')
  t.equal(miss.statusCode, 200)
  t.equal(miss.headers['x-cache'], 'MISS')
  t.equal((await app.inject('/items/2')).headers['x-cache'], 'HIT', 'stored in memory meanwhile')
  const started = Date.now()
  t.equal((await app.inject({ method: 'POST', url: '/items' })).statusCode, 201, 'an invalidating write still answers 2xx')
  t.ok(Date.now() - started < 1_500, 'without waiting long on Redis')
  t.equal((await app.inject('/items/2')).headers['x-cache'], 'MISS', 'and the local invalidation applied')
  const burst = await Promise.all(Array.from({ length: 10 }, () => app.inject('/items?page=3')))
  t.ok(burst.every((r) => r.statusCode === 200))
  t.equal(runs.items, 1, 'collapse works without Redis (in process)')
})

t.test('mistakes in config.cache fail at registration, with a code', async (t) => {
  const app = await buildServer({ env: { NODE_ENV: 'test' }, logger: false })
  t.teardown(() => app.close())
  t.throws(() => app.post('/x', { config: { cache: { ttl: '1m' } } }, async () => 'x'), { code: 'FRS_HTTP_CACHE_CONFIG_INVALID', message: /POST \/x/ })
  t.throws(() => app.get('/y', { config: { cache: { ttl: 'often' } } }, async () => 'y'), { code: 'FRS_HTTP_CACHE_CONFIG_INVALID' })
  t.throws(() => app.get('/z', { config: { cache: { invalidates: ['a'] } } }, async () => 'z'), { code: 'FRS_HTTP_CACHE_CONFIG_INVALID' })
})

t.test('the demo: a slow source behind a cached route, and a write that invalidates it', async (t) => {
  const { app } = await buildTestApp(t, { RATE_LIMIT_GLOBAL: 'false' })
  let started = Date.now()
  const miss = await app.inject('/demo/products')
  const missMs = Date.now() - started
  started = Date.now()
  const hit = await app.inject('/demo/products')
  const hitMs = Date.now() - started
  t.equal(miss.headers['x-cache'], 'MISS')
  t.equal(hit.headers['x-cache'], 'HIT')
  t.ok(missMs >= 200 && hitMs < missMs, `the miss waits on the source (${missMs} ms), the hit does not (${hitMs} ms)`)
  t.equal((await app.inject({ method: 'POST', url: '/demo/products', payload: { name: 'Lamp' } })).statusCode, 201)
  const after = await app.inject('/demo/products')
  t.equal(after.headers['x-cache'], 'MISS')
  t.match(after.json(), { products: [{ name: 'Kettle' }, { name: 'Teapot' }, { name: 'Lamp' }] })
  t.equal((await app.inject({ url: '/demo/greeting', headers: { 'accept-language': 'fr' } })).json().greeting, 'Bonjour')
})
