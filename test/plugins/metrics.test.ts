import t from 'tap'
import { useRedis, getFreePort, waitFor } from '../helpers/index.js'
import { buildTestApp, timeUntil } from '../helper.js'
import { promtool, sample } from '../monitoring/prom.js'

t.test('after traffic, /metrics passes promtool and every layer moved', async (t) => {
  const redis = await useRedis(t)
  // A generous Redis budget: on a loaded CI machine the 250 ms default can send decisions to the fallback.
  const { app } = await buildTestApp(t, { REDIS_URL: redis.url, RATE_LIMIT_MAX: '3', RATE_LIMIT_TIMEOUT: '3s', REDIS_COMMAND_TIMEOUT: '3s' })
  await timeUntil(() => app.redisState.latencyMs !== null, 5_000, 'first PING')
  // The first PING can go out before the metrics plugin (registered last) subscribes to command
  // timing; two ping intervals (500 ms each) guarantee one that is timed.
  await new Promise((resolve) => setTimeout(resolve, 1_100))

  for (let i = 0; i < 4; i++) await app.inject('/')
  await app.inject('/health/ready')
  await app.inject('/no/such/page-8151')
  await app.cache.set('user:1', { id: 1 }, { ttl: '1m' })
  await app.cache.get('user:1')
  await app.cache.get('user:2')
  await app.cache.namespace('api').getOrSet('list', async () => [1, 2], { ttl: '1m' })
  await app.redis.set('plain', 'x')
  await t.rejects(app.redis.hgetall('plain'), /WRONGTYPE/)

  const res = await app.inject('/metrics')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  const text = res.body

  const check = promtool(['check', 'metrics'], text)
  t.equal(check.status, 0, `promtool check metrics: ${check.output}`)

  const http = (labels: Record<string, string>) => sample(text, 'http_request_duration_seconds_count', labels)
  t.equal(http({ method: 'GET', route: '/', status_code: '200' }), 3, 'requests by route pattern, method and status')
  t.equal(http({ method: 'GET', route: '/', status_code: '429' }), 1, 'the refused one as 429')
  t.equal(http({ method: 'GET', route: '/health/ready', status_code: '200' }), 1)
  t.equal(http({ method: 'GET', route: 'unmatched', status_code: '404' }), 1, '404s share one route label')
  t.notOk(text.includes('page-8151'), 'never the raw URL')

  t.equal(sample(text, 'redis_client_state', { state: 'connected' }), 1)
  t.equal(sample(text, 'redis_client_state', { state: 'disconnected' }), 0)
  t.equal(sample(text, 'redis_client_state', { state: 'degraded' }), 0)
  t.equal(sample(text, 'redis_client_mode', { mode: 'standalone' }), 1)
  t.ok((sample(text, 'redis_client_ping_latency_seconds') ?? -1) >= 0, 'ping latency')
  t.equal(sample(text, 'redis_client_reconnects_total'), 0)
  t.ok((sample(text, 'redis_client_command_duration_seconds_count', { connection: 'main', command: 'get' }) ?? 0) >= 1, 'GET timed')
  t.ok((sample(text, 'redis_client_command_duration_seconds_count', { connection: 'main', command: 'ping' }) ?? 0) >= 1, 'background PING timed')
  t.equal(sample(text, 'redis_client_command_errors_total', { connection: 'main', command: 'hgetall', error: 'reply' }), 1, 'the WRONGTYPE reply counted')
  t.equal(sample(text, 'redis_client_command_errors_total', { command: 'client' }), undefined, 'CLIENT SETINFO at connect is not the app\'s error')

  t.equal(sample(text, 'cache_hits_total', { namespace: 'default', tier: 'memory' }), 1)
  t.equal(sample(text, 'cache_misses_total', { namespace: 'default', tier: 'redis' }), 1, 'user:2 missed in Redis')
  t.equal(sample(text, 'cache_loads_total', { namespace: 'api' }), 1, 'namespaced loader run')
  t.ok((sample(text, 'cache_memory_entries') ?? 0) >= 2)
  t.ok((sample(text, 'cache_memory_bytes') ?? 0) > 0)
  t.equal(sample(text, 'cache_invalidations_received_total'), 0)

  t.equal(sample(text, 'rate_limit_decisions_total', { outcome: 'allowed' }), 3)
  t.equal(sample(text, 'rate_limit_decisions_total', { outcome: 'limited' }), 1)
  t.equal(sample(text, 'rate_limit_decisions_total', { outcome: 'fallback' }), 0)

  t.ok((sample(text, 'process_cpu_user_seconds_total') ?? 0) > 0, 'process metrics')
  t.ok(sample(text, 'nodejs_eventloop_lag_seconds') !== undefined)

  // Counters derived from cumulative stats add only the growth: a second scrape does not double them.
  await app.inject('/')
  const again = (await app.inject('/metrics')).body
  t.equal(sample(again, 'rate_limit_decisions_total', { outcome: 'limited' }), 2)
  t.equal(sample(again, 'rate_limit_decisions_total', { outcome: 'allowed' }), 3)
  t.equal(sample(again, 'cache_hits_total', { namespace: 'default', tier: 'memory' }), 1)
  t.equal(sample(again, 'http_request_duration_seconds_count', { route: '/metrics', status_code: '200' }), 1, 'scrapes are requests too')
})

t.test('Redis restart: the state gauge follows and the reconnect is counted', async (t) => {
  const redis = await useRedis(t)
  const { app } = await buildTestApp(t, { REDIS_URL: redis.url })
  const scrape = async () => (await app.inject('/metrics')).body
  await redis.kill()
  await timeUntil(() => app.redisState.status === 'disconnected', 3_000, 'disconnected')
  let text = await scrape()
  t.equal(sample(text, 'redis_client_state', { state: 'disconnected' }), 1)
  t.equal(sample(text, 'redis_client_state', { state: 'connected' }), 0)
  await redis.restart()
  await timeUntil(() => app.redisState.status === 'connected', 5_000, 'reconnected')
  text = await scrape()
  t.equal(sample(text, 'redis_client_state', { state: 'connected' }), 1)
  t.equal(sample(text, 'redis_client_reconnects_total'), 1)
})

t.test('METRICS_TOKEN: 401 without the bearer token, constant answer for a wrong one', async (t) => {
  const token = 'scrape-token-0123456789'
  const { app } = await buildTestApp(t, { METRICS_TOKEN: token })
  const none = await app.inject('/metrics')
  t.equal(none.statusCode, 401)
  t.equal(none.headers['www-authenticate'], 'Bearer realm="metrics"')
  t.notOk(none.body.includes('nodejs_'), 'no metrics leak')
  t.equal((await app.inject({ url: '/metrics', headers: { authorization: `Bearer ${token}x` } })).statusCode, 401)
  t.equal((await app.inject({ url: '/metrics', headers: { authorization: token } })).statusCode, 401, 'the scheme is required')
  const ok = await app.inject({ url: '/metrics', headers: { authorization: `Bearer ${token}` } })
  t.equal(ok.statusCode, 200)
  t.ok(ok.body.includes('redis_client_state'))
  t.notOk(ok.body.includes(token), 'the token never appears in the output')
  t.equal(sample(ok.body, 'redis_client_mode', { mode: 'memory' }), 1, 'memory mode without Redis')
})

t.test('METRICS_PORT: a separate listener, closed with the app', async (t) => {
  const port = await getFreePort()
  const token = 'separate-port-token-42'
  const { app } = await buildTestApp(t, { METRICS_PORT: String(port), METRICS_TOKEN: token })
  t.equal((await app.inject('/metrics')).statusCode, 404, 'not on the app port')
  const url = `http://127.0.0.1:${port}/metrics`
  t.equal((await fetch(url)).status, 401)
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } })
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)
  t.ok((await res.text()).includes('http_request_duration_seconds'))
  t.equal((await fetch(`http://127.0.0.1:${port}/other`)).status, 404)
  t.equal((await fetch(url, { method: 'POST' })).status, 405)
  const head = await fetch(url, { method: 'HEAD', headers: { authorization: `Bearer ${token}` } })
  t.equal(head.status, 200)
  await app.close()
  await t.rejects(fetch(url), 'the listener is closed with the app')
})

t.test('METRICS_PORT already taken: start-up fails clearly', async (t) => {
  const port = await getFreePort()
  const { default: net } = await import('node:net')
  const blocker = net.createServer()
  await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve))
  t.teardown(() => { blocker.close() })
  await t.rejects(buildTestApp(t, { METRICS_PORT: String(port) }), /EADDRINUSE/)
})

t.test('METRICS_ENABLED=false: no route, no decorator', async (t) => {
  const { app } = await buildTestApp(t, { METRICS_ENABLED: 'false' })
  t.equal((await app.inject('/metrics')).statusCode, 404)
  t.equal(app.metrics, undefined)
})

t.test('two apps in one process: each has its own registry and its own Redis series', async (t) => {
  const [redisA, redisB] = await Promise.all([useRedis(t), useRedis(t)])
  const a = (await buildTestApp(t, { REDIS_URL: redisA.url })).app
  const b = (await buildTestApp(t, { REDIS_URL: redisB.url })).app
  t.not(a.metrics?.registry, b.metrics?.registry)
  for (let i = 0; i < 3; i++) await a.inject('/')
  await a.redis.strlen('only-a')
  await a.redis.strlen('only-a')
  const textA = (await a.inject('/metrics')).body
  const textB = (await b.inject('/metrics')).body
  t.equal(sample(textA, 'http_request_duration_seconds_count', { route: '/' }), 3)
  t.equal(sample(textB, 'http_request_duration_seconds_count', { route: '/' }), undefined, 'b saw none of a\'s requests')
  t.equal(sample(textA, 'redis_client_command_duration_seconds_count', { command: 'strlen' }), 2)
  t.equal(sample(textB, 'redis_client_command_duration_seconds_count', { command: 'strlen' }), undefined, 'b saw none of a\'s commands')
  t.ok(sample(textA, 'process_resident_memory_bytes') !== undefined && sample(textB, 'process_resident_memory_bytes') !== undefined, 'both show the process')
  await a.close()
  t.equal((await b.inject('/metrics')).statusCode, 200, 'closing one leaves the other serving')
  t.ok((await b.inject('/metrics')).body.includes('process_cpu_seconds_total'), 'process metrics survive the other app closing')
})

t.test('labels carry no secrets: passwords, tokens and session cookies stay out', async (t) => {
  const redis = await useRedis(t, { password: 'redis-pass-never-shown' })
  const token = 'metrics-token-never-shown'
  const url = `redis://:redis-pass-never-shown@127.0.0.1:${redis.port}`
  const { app, rawLogs } = await buildTestApp(t, { REDIS_URL: url, METRICS_TOKEN: token })
  await app.inject({ url: '/', headers: { cookie: 'sid=session-id-never-shown.sig' } })
  await app.inject({ url: '/users/secret-path-value', headers: { cookie: 'sid=session-id-never-shown.sig' } })
  const text = (await app.inject({ url: '/metrics', headers: { authorization: `Bearer ${token}` } })).body
  for (const secret of ['redis-pass-never-shown', token, 'session-id-never-shown']) {
    t.notOk(text.includes(secret), `${secret} not in /metrics`)
    t.notOk(rawLogs().includes(secret), `${secret} not in the logs`)
  }
  t.notOk(text.includes('secret-path-value'), 'raw paths never become labels')
  t.match(rawLogs(), /metrics: Prometheus text at \/metrics on the app port, bearer token required/)
})

t.test('sessions and the HTTP response cache: their series move; no session id or user id in /metrics', async (t) => {
  const redis = await useRedis(t)
  const { app } = await buildTestApp(t, { REDIS_URL: redis.url, SESSION_SECRET: 's'.repeat(32) })
  const userId = 'user-zq81'
  const login = await app.inject({ method: 'POST', url: '/demo/login', payload: { userId } })
  t.equal(login.statusCode, 200)
  const sid = login.cookies.find((cookie) => cookie.name === 'sid')?.value ?? ''
  t.ok(sid.length > 10)
  t.equal((await app.inject({ url: '/demo/me', cookies: { sid } })).statusCode, 200)
  await app.inject('/demo/products')
  await app.inject('/demo/products')

  // session_active comes from a background count that a scrape starts.
  const text = await waitFor(async () => {
    const body = (await app.inject('/metrics')).body
    return sample(body, 'session_active') === 1 ? body : undefined
  }, { what: 'session_active to count the one session', timeoutMs: 3_000 })
  t.equal(promtool(['check', 'metrics'], text).status, 0, 'promtool check metrics')
  t.ok((sample(text, 'session_loads_total') ?? 0) >= 1, 'loads')
  t.ok((sample(text, 'session_saves_total') ?? 0) >= 1, 'saves')
  t.equal(sample(text, 'session_errors_total'), 0)
  t.ok((sample(text, 'http_cache_events_total', { event: 'misses' }) ?? 0) >= 1, 'response cache miss')
  t.ok((sample(text, 'http_cache_events_total', { event: 'hits' }) ?? 0) >= 1, 'response cache hit')
  for (const secret of [sid, sid.split('.')[0] ?? sid, userId]) t.notOk(text.includes(secret), 'no session id or user id in /metrics')

  await app.inject({ method: 'POST', url: '/demo/logout', cookies: { sid } })
  await redis.kill()
  await timeUntil(() => app.redisState.status === 'disconnected', 3_000, 'disconnected')
  const again = await app.inject({ method: 'POST', url: '/demo/login', payload: { userId } })
  t.equal(again.statusCode, 503, 'sessions answer 503 while Redis is down')
  const down = (await app.inject('/metrics')).body
  t.ok((sample(down, 'session_destroys_total') ?? 0) >= 1, 'logout counted')
  t.ok((sample(down, 'session_errors_total') ?? 0) >= 1, 'the failure counted')
  t.equal(sample(down, 'redis_client_state', { state: 'disconnected' }), 1)
})

t.test('metrics options: Redis command timing and process series can be turned off', async (t) => {
  const redis = await useRedis(t)
  const { buildServer } = await import('../../server.js')
  const app = await buildServer({ env: { NODE_ENV: 'test', REDIS_URL: redis.url }, metrics: { redisCommands: false, processMetrics: false } })
  t.teardown(() => app.close())
  await app.ready()
  await app.redis.get('k')
  const text = (await app.inject('/metrics')).body
  t.equal(sample(text, 'redis_client_command_duration_seconds_count'), undefined, 'no command timings')
  t.equal(sample(text, 'process_cpu_seconds_total'), undefined, 'no process series')
  t.equal(sample(text, 'redis_client_state', { state: 'connected' }), 1, 'the rest is there')
})

t.test('request timing on a plain route: pattern bound at registration, no request.routeOptions per request', async (t) => {
  const { buildServer } = await import('../../server.js')
  // Every feature registered; the global rate limit off, so the route uses none of them.
  const app = await buildServer({ env: { NODE_ENV: 'test', LOG_LEVEL: 'silent', RATE_LIMIT_GLOBAL: 'false' }, logger: false })
  t.teardown(() => app.close())
  let prototype: object | undefined
  app.get('/plain/:id', { onRequest: async (request) => { prototype ??= Object.getPrototypeOf(request) as object } }, async () => ({ ok: true }))
  await app.ready()
  await app.inject('/plain/1')
  // request.routeOptions builds a fresh object on every read: shadow the getter on this context's
  // Request prototype and count the reads during one more request.
  let base: object | null = prototype!
  let descriptor: PropertyDescriptor | undefined
  while (base !== null && (descriptor = Object.getOwnPropertyDescriptor(base, 'routeOptions')) === undefined) base = Object.getPrototypeOf(base) as object | null
  let reads = 0
  Object.defineProperty(prototype!, 'routeOptions', { configurable: true, get () { reads++; return descriptor!.get!.call(this) } })
  t.teardown(() => { delete (prototype as Record<string, unknown>)['routeOptions'] })
  t.equal((await app.inject('/plain/2')).statusCode, 200)
  t.equal(reads, 0, 'nothing in the suite read request.routeOptions')
  const text = await app.metrics!.metrics()
  t.equal(sample(text, 'http_request_duration_seconds_count', { method: 'GET', route: '/plain/:id', status_code: '200' }), 2, 'still timed, by pattern')
  // Any onResponse hook makes Fastify attach 'finish'/'error' listeners to every response (bench case 10).
  t.notMatch(app.printRoutes({ includeHooks: true, commonPrefix: false }), /onResponse/, 'no route of the suite has an onResponse hook')
})
