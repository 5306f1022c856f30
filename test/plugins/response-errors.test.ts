// Third security review, items 1 and 7: text from a request never reaches a response header
// unencoded, and a response that fails to send is a 500 for that request, never an unhandled
// rejection (which ends the process) and never a stored entry. Each case runs in three apps: the
// demo server (metrics on), the suite with METRICS_ENABLED=false, and the HTTP cache registered alone.
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { build, count, type Runs } from './http-cache-app.js'
import { useRedis, waitFor } from '../helpers/index.js'
import { cachePlugin, configPlugin, httpCachePlugin, redisPlugin } from '../../index.js'

declare module 'fastify' {
  interface Session { visits?: number }
}

type Routes = (app: FastifyInstance) => void

/** The HTTP cache with only what it depends on: no metrics, sessions or rate limits. */
async function alone (t: Test, env: Record<string, string>, routes: Routes): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(configPlugin, { env: { NODE_ENV: 'test', ...env }, processEnv: false })
  await app.register(redisPlugin)
  await app.register(cachePlugin)
  await app.register(httpCachePlugin)
  routes(app)
  t.teardown(() => app.close())
  await app.ready()
  return app
}

const apps: Record<string, (t: Test, env: Record<string, string>, routes: Routes) => Promise<FastifyInstance>> = {
  'the suite': async (t, env, routes) => (await build(t, env, routes)).app,
  'the suite with METRICS_ENABLED=false': async (t, env, routes) => (await build(t, { ...env, METRICS_ENABLED: 'false' }, routes)).app,
  'the HTTP cache alone': alone
}

/** Collects unhandled rejections while a test runs: each one would have ended a production process. */
function watchUnhandled (t: Test): unknown[] {
  const seen: unknown[] = []
  const listener = (reason: unknown): void => { seen.push(reason) }
  process.on('unhandledRejection', listener)
  t.teardown(() => { process.off('unhandledRejection', listener) })
  return seen
}

const settle = async (): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, 50)) }

for (const [name, make] of Object.entries(apps)) {
  t.test(`1. request-derived tags in any script are sent encoded in Surrogate-Key (${name})`, async (t) => {
    const unhandled = watchUnhandled(t)
    const redis = await useRedis(t)
    const runs: Runs = {}
    const app = await make(t, { REDIS_URL: redis.url }, (app) => {
      app.get('/search', { config: { cache: { ttl: '1m', tags: (r) => ['search', 'q:' + (r.query as { q: string }).q] } } },
        async (request) => ({ q: (request.query as { q: string }).q, run: count(runs, 'search') }))
    })
    for (const q of ['Москва', '東京', '😀', 'a b%c']) {
      const url = `/search?q=${encodeURIComponent(q)}`
      const miss = await app.inject(url)
      t.equal(miss.statusCode, 200, `${q}: answered`)
      t.equal(miss.json().q, q)
      t.equal(miss.headers['x-cache'], 'MISS')
      t.equal(miss.headers['surrogate-key'], `search q:${encodeURIComponent(q).replace(/%3A/g, ':')}`, `${q}: percent-encoded UTF-8, one key per tag`)
      const hit = await app.inject(url)
      t.equal(hit.statusCode, 200, `${q}: the hit answers too`)
      t.equal(hit.headers['x-cache'], 'HIT')
      t.equal(hit.headers['surrogate-key'], miss.headers['surrogate-key'])
    }
    t.equal(runs.search, 4, 'one handler run per query')
    // Invalidation takes the tag as the app wrote it, not its header form.
    await app.cache.namespace('http').invalidateTags(['q:Москва'])
    t.equal((await app.inject(`/search?q=${encodeURIComponent('Москва')}`)).headers['x-cache'], 'MISS')
    await settle()
    t.same(unhandled, [], 'no unhandled rejection')
  })

  t.test(`1. a response whose headers cannot be sent is a 500 and is not stored (${name})`, async (t) => {
    const unhandled = watchUnhandled(t)
    const redis = await useRedis(t)
    const runs: Runs = {}
    const app = await make(t, { REDIS_URL: redis.url }, (app) => {
      // An app that echoes request text into a header of its own.
      app.get('/echo', { config: { cache: { ttl: '1m' } } }, async (request, reply) => {
        reply.header('x-echo', (request.query as { q: string }).q)
        return { run: count(runs, 'echo') }
      })
      app.get('/plain', async () => ({ ok: true }))
    })
    const url = `/echo?q=${encodeURIComponent('Москва')}`
    const first = await app.inject(url)
    t.equal(first.statusCode, 500, 'the header error is this request\'s 500')
    const second = await app.inject(url)
    t.equal(second.statusCode, 500, 'the handler ran again: nothing was stored')
    t.equal(runs.echo, 2)
    t.equal(await redis.cli('--scan', '--pattern', '*echo*'), '', 'nothing in Redis')
    t.equal((await app.inject('/echo?q=plain')).statusCode, 200, 'the route still serves sendable answers')
    t.equal((await app.inject('/echo?q=plain')).headers['x-cache'], 'HIT')
    t.equal((await app.inject('/plain')).statusCode, 200, 'the process is alive and serving')
    await settle()
    t.same(unhandled, [], 'no unhandled rejection')
  })
  t.test(`3. a malformed invalidation message leaves the process serving (${name})`, async (t) => {
    const uncaught: unknown[] = []
    const onUncaught = (err: unknown): void => { uncaught.push(err) }
    process.on('uncaughtException', onUncaught)
    t.teardown(() => { process.off('uncaughtException', onUncaught) })
    const redis = await useRedis(t)
    const runs: Runs = {}
    const app = await make(t, { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'app:' }, (app) => {
      app.get('/list', { config: { cache: { ttl: '1m', tags: ['list'] } } }, async () => ({ run: count(runs, 'list') }))
    })
    await app.inject('/list')
    t.equal((await app.inject('/list')).headers['x-cache'], 'HIT')
    const subscribers = await redis.cli('PUBLISH', 'app:cache:invalidate', '{"from":"x","invalidation":{"kind":"keys","keys":5}}')
    t.equal(subscribers, '1', 'the instance listens on that channel')
    await redis.cli('PUBLISH', 'app:cache:invalidate', 'not json')
    await waitFor(() => app.cache.stats().invalidationsDropped === 2, { what: 'two drops counted' })
    t.same(uncaught, [], 'nothing thrown')
    t.equal((await app.inject('/list')).headers['x-cache'], 'HIT', 'still serving from the cache')
    await app.cache.invalidateTags(['list'])
    t.equal((await app.inject('/list')).headers['x-cache'], 'MISS', 'invalidation still works')
  })
}

t.test('7. a session route whose response cannot be sent is a 500 for that request, and the process serves on', async (t) => {
  for (const metrics of ['true', 'false']) {
    const unhandled = watchUnhandled(t)
    const redis = await useRedis(t)
    const { app } = await build(t, { REDIS_URL: redis.url, METRICS_ENABLED: metrics }, (app) => {
      app.get('/visit', { config: { session: true } }, async (request, reply) => {
        request.session.set('visits', 1)
        reply.header('x-echo', (request.query as { q: string }).q)
        return { ok: true }
      })
      app.get('/plain', async () => ({ ok: true }))
    })
    const failed = await app.inject(`/visit?q=${encodeURIComponent('東京')}`)
    t.equal(failed.statusCode, 500, `metrics ${metrics}: a 500 for this request`)
    t.equal((await app.inject('/visit?q=ok')).statusCode, 200, `metrics ${metrics}: the session route serves on`)
    t.equal((await app.inject('/plain')).statusCode, 200)
    await settle()
    t.same(unhandled, [], `metrics ${metrics}: no unhandled rejection`)
  }
})
