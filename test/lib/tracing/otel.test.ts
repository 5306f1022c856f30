// enableTracing() with the real OpenTelemetry SDK (in-memory exporter, AsyncLocalStorage context
// manager) on the demo app against a real Redis: the span trees of a cache miss, a hit from each tier,
// an HTTP cache hit, a session read, a refused rate-limit decision and a pub/sub round trip between two
// instances; and no key, id or address on any span unless the app opts in.
import t from 'tap'
import { context, trace, type Attributes } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base'
import { enableTracing } from '../../../index.js'
import { cacheChannel } from '../../../lib/tracing/index.js'
import { traceparentOf, withTraceparent } from '../../../lib/tracing/propagation.js'
import { useRedis, waitFor } from '../../helpers/index.js'
import { build } from '../../plugins/http-cache-app.js'

const exporter = new InMemorySpanExporter()
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }))
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
const tracer = trace.getTracer('test')

/** The spans under `root` (a span or a trace's roots), one line each, children indented. */
function tree (spans: readonly ReadableSpan[], root?: ReadableSpan): string {
  const byParent = new Map<string | undefined, ReadableSpan[]>()
  const ids = new Set(spans.map((s) => s.spanContext().spanId))
  for (const span of spans) {
    const parent = span.parentSpanContext?.spanId
    const key = parent !== undefined && ids.has(parent) ? parent : undefined
    byParent.set(key, [...(byParent.get(key) ?? []), span])
  }
  const lines: string[] = []
  const walk = (span: ReadableSpan, depth: number): void => {
    lines.push(`${'  '.repeat(depth)}${span.name}${describe(span.attributes)}`)
    const children = (byParent.get(span.spanContext().spanId) ?? []).sort((a, b) => hr(a.startTime) - hr(b.startTime))
    for (const child of children) walk(child, depth + 1)
  }
  for (const top of root === undefined ? byParent.get(undefined) ?? [] : [root]) walk(top, 0)
  return lines.join('\n')
}
const hr = ([s, ns]: [number, number]): number => s * 1e9 + ns
const SHOWN = /^(frs\.|db\.operation\.name$|messaging\.operation\.name$)/
function describe (attributes: Attributes): string {
  const shown = Object.entries(attributes).filter(([name]) => SHOWN.test(name)).sort(([x], [y]) => x < y ? -1 : 1).map(([name, value]) => `${name.replace(/^frs\./, '')}=${String(value)}`)
  return shown.length === 0 ? '' : ` [${shown.join(' ')}]`
}

/** Runs `fn` under a span standing for the request (@fastify/otel's, in an app); returns that span's tree. */
async function underSpan (name: string, fn: () => Promise<unknown>): Promise<string> {
  exporter.reset()
  await tracer.startActiveSpan(name, async (span) => {
    try { await fn() } finally { span.end() }
  })
  const spans = exporter.getFinishedSpans()
  return tree(spans, spans.find((s) => s.name === name))
}

t.test('trace context in a message is JSON whitespace: any reader parses the message as before', async (t) => {
  const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
  const carried = withTraceparent('{"text":"hi"}', traceparent)
  t.equal(traceparentOf(carried), traceparent)
  t.same(JSON.parse(carried), { text: 'hi' })
  t.equal(withTraceparent('{}', undefined), '{}')
  t.equal(traceparentOf('  {"a":1}'), undefined, 'whitespace that is not ours carries nothing')
})

t.test('spans of the suite, children of the request, with Redis commands under them', async (t) => {
  t.notOk(cacheChannel.hasSubscribers, 'nobody listens before enableTracing()')
  const tracing = enableTracing()
  t.teardown(() => tracing.disable())
  t.ok(cacheChannel.hasSubscribers)

  const redis = await useRedis(t)
  const env = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'app:' }
  const { app: a } = await build(t, env, (app) => {
    app.get('/cached', { config: { cache: { ttl: '1m' } } }, async () => ({ ok: true }))
    app.get('/limited', { config: { rateLimit: { max: 1, timeWindow: '1 minute' } } }, async () => ({ ok: true }))
    app.get('/me', { config: { session: true } }, async (request) => ({ user: request.session.get('userId') ?? null }))
  })
  const { app: b } = await build(t, env, () => {})
  const all: ReadableSpan[] = []
  const keep = (): void => { all.push(...exporter.getFinishedSpans()) }

  t.test('a cache miss: lookups, the lock, the loader and the write in one tree', async (t) => {
    const text = await underSpan('request', () => a.cache.getOrSet('user:1', async () => {
      await a.redis.ping() // the loader's own Redis work nests under it
      return { id: 1, name: 'Ada' }
    }))
    keep()
    t.comment(`\n${text}`)
    t.match(text, /^request\n {2}cache\.getOrSet \[cache\.namespace=default cache\.result=miss cache\.tier=loader\]\n/)
    t.match(text, / {4}(GET|EVALSHA) \[db\.operation\.name=\w+\]\n/, 'the Redis lookup under getOrSet')
    t.match(text, / {4}SET \[db\.operation\.name=SET\]\n {4}cache\.loader \[cache\.namespace=default\]\n {6}PING /, 'the lock (SET NX), then the loader and its own command')
    t.match(text, /cache\.loader[^]* {4}(SET|EVALSHA|MULTI|PIPELINE) /, 'the write after the loader')
  })

  t.test('a hit from each tier', async (t) => {
    const memory = await underSpan('request', () => a.cache.getOrSet('user:1', async () => t.fail('no load')))
    t.equal(memory, 'request\n  cache.getOrSet [cache.namespace=default cache.result=hit cache.tier=memory]', 'memory: no command at all')
    keep()
    const remote = await underSpan('request', () => b.cache.get('user:1'))
    t.match(remote, /^request\n {2}cache\.get \[cache\.namespace=default cache\.result=hit cache\.tier=redis\]\n {4}\w+ \[db\.operation\.name=\w+\]/, 'redis: another instance reads it with one command')
    keep()
    const api = a.cache.namespace('api')
    const miss = await underSpan('request', () => api.get('nothing'))
    t.match(miss, /cache\.get \[cache\.namespace=api cache\.result=miss\]/, 'a namespace, a miss')
    keep()
    const writes = await underSpan('request', async () => {
      await a.cache.set('user:2', { id: 2 }, { tags: ['users'] })
      await a.cache.invalidateTags(['users'])
      await a.cache.delete('user:2')
    })
    t.match(writes, /cache\.set \[cache\.namespace=default\][^]*cache\.invalidateTags \[cache\.key_count=1 cache\.namespace=default\][^]*cache\.delete \[cache\.namespace=default\]/)
    keep()
  })

  t.test('another instance loading the key: the wait for its value', async (t) => {
    let release!: () => void
    let started!: () => void
    const loading = new Promise<void>((resolve) => { started = resolve })
    const first = a.cache.getOrSet('slow', async () => {
      started()
      await new Promise<void>((resolve) => { release = resolve })
      return 'value'
    })
    await loading // a holds the load lock now
    const text = await underSpan('request', async () => {
      const second = b.cache.getOrSet('slow', async () => t.fail('b waits for a\'s value, never loads'))
      // b's SET NX came back: the lock is a's (a sends nothing until its loader returns).
      await waitFor(() => exporter.getFinishedSpans().some((s) => s.name === 'SET'), { timeoutMs: 2_000, what: 'b found the lock taken' })
      release()
      t.equal(await second, 'value')
    })
    await first
    keep()
    t.comment(`\n${text}`)
    t.match(text, /^request\n {2}cache\.getOrSet \[cache\.namespace=default cache\.result=miss cache\.tier=redis\]\n[^]* {4}cache\.lock_wait \[cache\.lock_wait\.outcome=written cache\.namespace=default\]/,
      'a miss answered from Redis once the holder wrote it; the wait as a span')
  })

  t.test('app.locks', async (t) => {
    const text = await underSpan('request', () => a.locks.withLock('nightly-job', async () => 'done'))
    keep()
    t.match(text, /^request\n {2}lock\.acquire \[lock\.acquired=true\]\n {4}\w+ [^]*\n {2}lock\.release \[lock\.released=true\]\n {4}\w+ /)
  })

  t.test('an HTTP cache hit', async (t) => {
    await a.inject('/cached')
    exporter.reset()
    const hit = await a.inject('/cached')
    t.equal(hit.headers['x-cache'], 'HIT')
    const spans = exporter.getFinishedSpans()
    keep()
    t.equal(tree(spans), 'http_cache.lookup [http_cache.result=HIT]', 'answered from memory: one span, no command')
    exporter.reset()
    await a.inject({ url: '/cached', headers: { authorization: 'Bearer x' } })
    t.equal(tree(exporter.getFinishedSpans()), 'http_cache.lookup [http_cache.bypass_reason=credentials http_cache.result=BYPASS]')
    keep()
  })

  t.test('a session read', async (t) => {
    exporter.reset()
    const login = await a.inject({ method: 'POST', url: '/demo/login', payload: { userId: 'ada' } })
    const cookie = String(login.headers['set-cookie']).split(';')[0] ?? ''
    const signIn = tree(exporter.getFinishedSpans())
    keep()
    t.comment(`sign-in:\n${signIn}`)
    t.match(signIn, /^session\.save \[session\.write=create\]\n {2}\w+ /m, 'the sign-in stores a new session')
    exporter.reset()
    const me = await a.inject({ url: '/me', headers: { cookie } })
    t.same(me.json(), { user: 'ada' })
    const text = tree(exporter.getFinishedSpans())
    keep()
    t.comment(`\n${text}`)
    t.match(text, /^session\.load \[session\.found=true\]\n {2}\w+ \[db\.operation\.name=\w+\]/m, 'the load and its Redis command')
    t.notMatch(text, /session\.save/, 'an unchanged session is not saved')
  })

  t.test('a refused rate-limit decision', async (t) => {
    await a.inject('/limited')
    exporter.reset()
    const refused = await a.inject('/limited')
    t.equal(refused.statusCode, 429)
    const text = tree(exporter.getFinishedSpans())
    keep()
    t.match(text, /^rate_limit\.decision \[rate_limit\.backend=redis rate_limit\.policy=route rate_limit\.result=refused\]\n {2}\w+ \[db\.operation\.name=EVALSHA\]/)
  })

  t.test('a pub/sub round trip across two instances: the delivery links to the publisher', async (t) => {
    const received: unknown[] = []
    let inHandler: string | undefined
    await b.pubsub.subscribe('chat', async (message) => {
      inHandler = trace.getActiveSpan()?.spanContext().spanId
      received.push(message)
    })
    exporter.reset()
    await tracer.startActiveSpan('request', async (span) => {
      await a.pubsub.publish('chat', { text: 'hi' })
      span.end()
    })
    await waitFor(() => received.length === 1 && exporter.getFinishedSpans().some((s) => s.name === 'pubsub.deliver'), { timeoutMs: 2_000, what: 'delivery' })
    t.same(received, [{ text: 'hi' }], 'the handler gets the message as published')
    const spans = exporter.getFinishedSpans()
    keep()
    const publish = spans.find((s) => s.name === 'pubsub.publish')
    const deliver = spans.find((s) => s.name === 'pubsub.deliver')
    t.ok(publish !== undefined && deliver !== undefined)
    if (publish === undefined || deliver === undefined) return
    t.equal(publish.parentSpanContext?.spanId, spans.find((s) => s.name === 'request')?.spanContext().spanId, 'publish: a child of the request')
    t.equal(deliver.parentSpanContext, undefined, 'deliver: a trace of its own')
    t.same(deliver.links.map((l) => [l.context.traceId, l.context.spanId]), [[publish.spanContext().traceId, publish.spanContext().spanId]],
      'linked to the publisher\'s span')
    t.equal(inHandler, deliver.spanContext().spanId, 'the handler runs with the delivery span active')
    t.match(deliver.attributes, { 'messaging.system': 'redis', 'messaging.operation.type': 'process' })
  })

  t.test('spans of a request\'s hooks are children of the span active around it (where @fastify/otel\'s request span is)', async (t) => {
    const login = await a.inject({ method: 'POST', url: '/demo/login', payload: { userId: 'ada' } })
    const cookie = String(login.headers['set-cookie']).split(';')[0] ?? ''
    const text = await underSpan('request', async () => {
      await a.inject({ url: '/me', headers: { cookie } })
      await a.inject('/cached')
      await a.inject('/limited')
    })
    keep()
    t.comment(`\n${text}`)
    t.match(text, /^request\n {2}session\.load \[session\.found=true\]\n {4}HGETALL /, 'the session load, its command under it')
    t.match(text, /\n {2}http_cache\.lookup \[http_cache\.result=HIT\]/, 'the HTTP cache lookup')
    t.match(text, /\n {2}rate_limit\.decision \[rate_limit\.backend=redis rate_limit\.policy=route rate_limit\.result=refused\]\n {4}EVALSHA /, 'the rate-limit decision')
  })

  t.test('no span carries a key, an id or an address by default', async (t) => {
    t.ok(all.length > 20, `${all.length} spans looked at`)
    const leaks = all.flatMap((span) => Object.entries(span.attributes).flatMap(([name, value]) => {
      const text = String(value)
      if (name === 'server.address' || name === 'server.port') return [] // Redis's own address: the semantic convention's
      return /user:|chat|ada|nightly|slow|127\.0\.0\.1|::1|sess|^[A-Za-z0-9_-]{20,}/.test(text) || /key|name$|query|id$/.test(name.replace(/operation\.name$|^db\.system\.name$|^.*_count$/, ''))
        ? [`${span.name}: ${name}=${text}`]
        : []
    }))
    t.same(leaks, [])
  })

  t.test('identifiers when the app opts in', async (t) => {
    tracing.disable()
    const withIds = enableTracing({ identifiers: true })
    t.teardown(() => withIds.disable())
    // A key b has never read, so b asks Redis. (b may hold user:1 in memory by now: whether its
    // earlier read filled the tier depends on when a's invalidation message reached it.)
    await a.cache.set('user:3', { id: 3 })
    const text = await underSpan('request', async () => { await b.cache.get('user:3') })
    const spans = exporter.getFinishedSpans()
    const get = spans.find((s) => s.name === 'cache.get')
    t.match(get?.attributes, { 'frs.cache.key': 'user:3', 'frs.cache.tier': 'redis' })
    t.match(text, /cache\.get/)
    // The command under cache.get: a background command (the health PING) may finish in the same window.
    const command = spans.find((s) => s.parentSpanContext?.spanId === get?.spanContext().spanId && s.attributes['db.query.text'] !== undefined)
    t.match(command?.attributes['db.query.text'], /user:3/)
  })
})

t.test('disabled: nobody listens, ioredis included', async (t) => {
  t.notOk(cacheChannel.hasSubscribers)
  const { tracingChannel } = await import('node:diagnostics_channel')
  t.notOk(tracingChannel('ioredis:command').hasSubscribers)
})
