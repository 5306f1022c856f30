// Prometheus metrics for every layer (issue 8): a per-app registry, HTTP timings by route pattern,
// Redis state and command timings, and the features' own counters read at scrape time. Registered
// last in the suite, so every feature that is present can be found, and none depends on it.
//
// Lifecycle (metricsPlugin; nothing at all with METRICS_ENABLED=false):
//   decorates  app.metrics; request slot kStartedAt (0)
//   onRequest  startClock (global); onSend timeUnmatched (global, 404s only)
//   onRoute    appends the route's own onSend that records its timing by route pattern (timeRequests)
//   routes     GET <path> on the app, or (METRICS_PORT) a server of its own started at onReady
//   onClose    stops the Redis command tracing, closes that server, clears the registry
import fp from 'fastify-plugin'
import type { Server } from 'node:http'
import type { FastifyInstance, FastifyRequest, onSendHookHandler } from 'fastify'
import { SuiteMetrics, type MetricSources, traceRedisCommands } from '../lib/metrics/index.js'
import type { CacheStats } from '../lib/cache/index.js'
import type { RateLimitStats } from '../lib/rate-limit/index.js'
import type { RedisClient } from './redis.js'
import { closeMetricsServer, listenMetricsServer, metricsRoute } from '../routes/metrics.js'
import { suiteLogOptions } from '../lib/config/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The app's metrics: add your own series to `app.metrics.registry`. Absent when METRICS_ENABLED=false. */
    metrics?: SuiteMetrics
  }
}

export interface MetricsPluginOptions {
  /**
   * Time every Redis command (redis_client_command_*). Default true. It subscribes to ioredis'
   * diagnostics channel, which costs some microseconds per command: turn it off on Redis-bound hot paths.
   */
  redisCommands?: boolean
  /** Process CPU, memory, event loop and GC series. Default true. */
  processMetrics?: boolean
  /** Path of the Prometheus text (on the app, or on METRICS_PORT's server). Default '/metrics'. */
  path?: string
}

async function metricsPlugin (app: FastifyInstance, options: MetricsPluginOptions = {}): Promise<void> {
  const config = app.config
  const log = app.log.child({ plugin: 'metrics' }, suiteLogOptions(app.config))
  if (!config.METRICS_ENABLED) {
    log.info('metrics: off (METRICS_ENABLED=false), /metrics is not served')
    return
  }
  const metrics = new SuiteMetrics({
    processMetrics: options.processMetrics,
    sources: metricSources(app),
    onSourceError: (source, err) => log.warn({ source, err: { message: (err as Error)?.message } }, `metrics: reading ${source} stats failed; the scrape went on without them`)
  })
  app.decorate('metrics', metrics)
  timeRequests(app, metrics)
  const untrace = options.redisCommands === false ? undefined : traceSuiteRedis(app, metrics)

  const token = config.METRICS_TOKEN
  const port = config.METRICS_PORT
  const path = options.path ?? '/metrics'
  let server: Server | undefined
  if (port === undefined) {
    metricsRoute(app, { metrics, token, path })
  } else {
    app.addHook('onReady', async () => {
      server = await listenMetricsServer({ metrics, token, path, host: config.HOST, port })
    })
  }
  log.info({ metrics: { path, port: port ?? 'app', bearerToken: token !== undefined } },
    `metrics: Prometheus text at ${path} on ${port === undefined ? 'the app port' : `${config.HOST}:${port}`}${token === undefined ? '' : ', bearer token required'}`)

  app.addHook('onClose', async () => {
    untrace?.()
    if (server !== undefined) await closeMetricsServer(server)
    metrics.registry.clear()
  })
}

/** Each feature's counters, read at scrape time from the features registered before this plugin. */
function metricSources (app: FastifyInstance): MetricSources {
  return {
    redisState: () => app.redisState,
    cacheStats: statsOf<CacheStats>(app, 'cache'),
    rateLimitStats: statsOf<Partial<RateLimitStats>>(app, 'rateLimits') ?? statsOf<Partial<RateLimitStats>>(app, 'rateLimit'),
    sessionStats: statsOf<Record<string, unknown>>(app, 'sessions'),
    httpCacheStats: statsOf<Record<string, unknown>>(app, 'httpCache'),
    pubsubStats: statsOf<Record<string, unknown>>(app, 'pubsub'),
    presenceStats: statsOf<Record<string, unknown>>(app, 'presence'),
    lockStats: statsOf<Record<string, unknown>>(app, 'locks')
  }
}

/** Times the suite's Redis connections' commands (main, and the cache's when separate); returns the stop. */
function traceSuiteRedis (app: FastifyInstance, metrics: SuiteMetrics): (() => void) | undefined {
  const { main, cache } = app.redisConnections
  const traced: Array<{ name: string, client: RedisClient }> = []
  if (main !== undefined) traced.push({ name: 'main', client: main })
  if (cache !== undefined && cache !== main) traced.push({ name: 'cache', client: cache })
  return traced.length === 0 ? undefined : traceRedisCommands(traced, (...args) => metrics.observeRedisCommand(...args))
}

/**
 * Request timing without an onResponse hook: any onResponse hook makes Fastify attach 'finish' and
 * 'error' listeners to every response and run a hook chain after it, which cost a plain route
 * ~3 µs of CPU (~12 %; node with @fastify/cookie, autocannon -c 20, /proc CPU time per request),
 * while an onRequest and an onSend hook appended to the chains @fastify/cookie already has cost
 * ~0.8 µs. So the clock starts at onRequest and stops when the response is handed over (onSend):
 * the socket write itself, and a streamed body after its start, are not in the figure.
 * The route's own onSend (its pattern bound at registration: request.routeOptions builds a fresh
 * object per read) records matched requests; a 404 (Fastify gives the not-found handler the
 * instance's global hooks and nothing else) is recorded when its response is written ('finish'),
 * so no global onSend runs on every request for the few that match nothing. Routes registered before this
 * plugin are not timed (the suite registers metrics before its own routes). A hijacked reply (SSE)
 * never reaches onSend and is not timed.
 */
function timeRequests (app: FastifyInstance, metrics: SuiteMetrics): void {
  app.decorateRequest(kStartedAt, 0)
  const recordUnmatched = (method: string, statusCode: number, seconds: number): void => { metrics.observeRequest(method, undefined, statusCode, seconds) }
  app.addHook('onRequest', function startClock (request, reply, done) {
    (request as TimedRequest)[kStartedAt] = performance.now()
    // A 404 (rare) stops its clock when the response is written: a global onSend for it would run on every request.
    if (request.is404) reply.raw.once('finish', () => { stopClock(request as TimedRequest, reply.statusCode, recordUnmatched) })
    done()
  })
  app.addHook('onRoute', (route) => {
    const record = metrics.requestRecorder(route.url)
    const timing: onSendHookHandler = (request, reply, _payload, done) => {
      stopClock(request as TimedRequest, reply.statusCode, record)
      done()
    }
    route.onSend = route.onSend === undefined ? [timing] : [...(Array.isArray(route.onSend) ? route.onSend : [route.onSend]), timing]
  })
}

const kStartedAt = Symbol('fastify-redis-suite.requestStartedAt')
type TimedRequest = FastifyRequest & { [kStartedAt]: number }

/** Records once: an error in a later onSend sends again through the hooks, and is not a second request. */
function stopClock (request: TimedRequest, statusCode: number, record: (method: string, statusCode: number, seconds: number) => void): void {
  const started = request[kStartedAt]
  if (started === 0) return
  request[kStartedAt] = 0
  record(request.method, statusCode, (performance.now() - started) / 1000)
}

/** A reader of `app[name].stats()` when that feature is registered; read at each scrape. */
function statsOf<T> (app: FastifyInstance, name: string): (() => T | undefined) | undefined {
  if (!app.hasDecorator(name)) return undefined
  const feature = (): { stats?: unknown } | undefined => (app as unknown as Record<string, { stats?: unknown } | undefined>)[name]
  const initial = feature()
  if ((typeof initial !== 'object' && typeof initial !== 'function') || initial === null || typeof initial.stats !== 'function') return undefined
  return () => {
    const current = feature()
    return typeof current?.stats === 'function' ? (current.stats as () => T)() : undefined
  }
}

export default fp(metricsPlugin, { name: 'redis-suite-metrics', fastify: '5.x', dependencies: ['redis-suite-config', 'redis-suite-redis'] })
