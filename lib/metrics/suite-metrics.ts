// The suite's Prometheus series in one per-app registry (never prom-client's global one, so many apps
// can live in one process). HTTP and Redis command timings are observed as they happen; connection
// state and the features' cumulative stats are read once per scrape.
import { Counter, Gauge, Registry } from 'prom-client'
import { CommandHistogram, RequestHistogram } from './request-histogram.js'
import type { CacheStats } from '../cache/index.js'
import type { RateLimitStats } from '../rate-limit/index.js'
import type { RedisState, RedisStatus } from '../redis/index.js'
import { BoundedLabel, CumulativeCounter } from './cumulative.js'
import { addProcessMetrics } from './process-metrics.js'
import type { CommandErrorKind } from './redis-commands.js'

/** Readers of the features' running totals; each is optional and read at scrape time. */
export interface MetricSources {
  redisState: () => RedisState
  cacheStats?: (() => CacheStats | undefined) | undefined
  rateLimitStats?: (() => Partial<RateLimitStats> | undefined) | undefined
  /** `{ loads, saves, touches, destroys, invalid, errors, active }`; other numeric fields become session_events_total. */
  sessionStats?: (() => Record<string, unknown> | Promise<Record<string, unknown>> | undefined) | undefined
  /** The HTTP response cache's counters (`{ hits, staleHits, misses, bypasses, … }`), one series per field. */
  httpCacheStats?: (() => Record<string, unknown> | undefined) | undefined
  /** app.pubsub, app.presence and app.locks stats(): numeric fields become `<name>_events_total{event}`. */
  pubsubStats?: (() => Record<string, unknown> | undefined) | undefined
  presenceStats?: (() => Record<string, unknown> | undefined) | undefined
  lockStats?: (() => Record<string, unknown> | undefined) | undefined
}

/** Fields of the realtime features that are current values (gauges), not running totals. */
const REALTIME_GAUGES: Record<string, { name: string, help: string, read: (stats: Record<string, unknown>) => number | undefined }> = {
  pubsub: { name: 'pubsub_subscriptions', help: 'Channel and pattern subscriptions open in this app.', read: (s) => num(s.subscriptions) },
  presence: {
    name: 'presence_members',
    help: 'Members present, summed over the rooms this app last counted (room names are never labels).',
    read: (s) => typeof s.sizes === 'object' && s.sizes !== null ? Object.values(s.sizes).reduce((sum: number, n) => sum + (num(n) ?? 0), 0) : undefined
  },
  lock: { name: 'locks_held', help: 'Locks this app holds now.', read: (s) => num(s.held) }
}

export interface SuiteMetricsOptions {
  sources: MetricSources
  /** Process CPU, memory, event loop and GC series. Default true. */
  processMetrics?: boolean
  /** Called when a source starts throwing at scrape time (once until it works again); the scrape goes on without it. */
  onSourceError?: (source: string, err: unknown) => void
}

const STATES: readonly RedisStatus[] = ['connected', 'degraded', 'disconnected']
const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
const REDIS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]
const RATE_LIMIT_OUTCOMES = ['allowed', 'limited', 'fallback', 'open', 'closed'] as const
type Sync<T> = (stats: T | undefined | void) => void

/** Route label of requests no route matched (404s): never the raw URL, which is unbounded. */
export const UNMATCHED_ROUTE = 'unmatched'

export class SuiteMetrics {
  readonly registry = new Registry()
  readonly #sources: MetricSources
  readonly #onSourceError: (source: string, err: unknown) => void
  readonly #http: RequestHistogram
  readonly #commandDuration: CommandHistogram
  readonly #commandErrors: Counter<'connection' | 'command' | 'error'>
  readonly #state: Gauge<'state'>
  readonly #mode: Gauge<'mode'>
  readonly #reconnects: CumulativeCounter<string>
  readonly #refusals: CumulativeCounter<'kind'>
  readonly #pingLatency: Gauge
  readonly #cache: Sync<CacheStats> | undefined
  readonly #rateLimit: Sync<Partial<RateLimitStats>> | undefined
  readonly #session: Sync<Record<string, unknown>> | undefined
  readonly #httpCache: Sync<Record<string, unknown>> | undefined
  readonly #commands = new BoundedLabel(100)
  readonly #namespaces = new BoundedLabel(200)
  readonly #sessionEvents = new BoundedLabel(20)
  readonly #httpCacheEvents = new BoundedLabel(20)
  readonly #realtime: Array<{ name: string, source: () => Record<string, unknown> | undefined, sync: Sync<Record<string, unknown>> }> = []
  #scrape: Promise<void> | undefined
  readonly #failing = new Set<string>()

  constructor (options: SuiteMetricsOptions) {
    this.#sources = options.sources
    this.#onSourceError = options.onSourceError ?? (() => {})
    const registers = [this.registry]
    if (options.processMetrics !== false) addProcessMetrics(this.registry)

    this.#http = new RequestHistogram({
      name: 'http_request_duration_seconds',
      help: 'Time from request received (onRequest) to response handed to the socket (onSend), by route pattern (unmatched for 404s), method and status code.',
      buckets: HTTP_BUCKETS,
      registers
    })

    // Redis connection: read from the monitor's cached state at scrape time.
    const collect = (): Promise<void> => this.#collectOnce()
    this.#state = new Gauge({ name: 'redis_client_state', help: 'Redis connection state: 1 for the current state, 0 for the others.', labelNames: ['state'], registers, collect })
    this.#mode = new Gauge({ name: 'redis_client_mode', help: 'Redis topology in use (1 for the current mode): standalone, sentinel, cluster or memory (no Redis).', labelNames: ['mode'], registers, collect })
    this.#reconnects = new CumulativeCounter(new Counter({ name: 'redis_client_reconnects_total', help: 'Times the main Redis connection came back after a loss.', registers, collect }))
    this.#refusals = new CumulativeCounter(new Counter({ name: 'redis_client_refusals_total', help: 'Commands Redis refused on the main connection, by kind: oom (maxmemory with noeviction), misconf (failed snapshot), readonly (a replica), noperm (ACL).', labelNames: ['kind'], registers, collect }))
    this.#pingLatency = new Gauge({ name: 'redis_client_ping_latency_seconds', help: 'Round trip of the last background PING (absent before the first).', registers, collect })
    this.#pingLatency.remove() // a gauge without labels starts at 0; no PING yet is no sample, not zero
    this.#commandDuration = new CommandHistogram({
      name: 'redis_client_command_duration_seconds',
      help: 'Redis command round trip (failed commands included), by connection (main, cache) and command.',
      buckets: REDIS_BUCKETS,
      registers
    })
    this.#commandErrors = new Counter({
      name: 'redis_client_command_errors_total',
      help: 'Redis commands that failed, by connection, command and error kind (reply, timeout, connection, other).',
      labelNames: ['connection', 'command', 'error'],
      registers
    })

    const { cacheStats, httpCacheStats, rateLimitStats, sessionStats } = this.#sources
    if (cacheStats !== undefined) this.#cache = this.#cacheSeries(registers, collect)
    if (httpCacheStats !== undefined) this.#httpCache = this.#httpCacheSeries(registers, collect)
    if (rateLimitStats !== undefined) this.#rateLimit = this.#rateLimitSeries(registers, collect)
    if (sessionStats !== undefined) this.#session = this.#sessionSeries(registers, collect)
    for (const [name, source] of [['pubsub', this.#sources.pubsubStats], ['presence', this.#sources.presenceStats], ['lock', this.#sources.lockStats]] as const) {
      if (source !== undefined) this.#realtime.push({ name, source, sync: this.#realtimeSeries(name, registers, collect) })
    }
  }

  observeRequest (method: string, route: string | undefined, statusCode: number, seconds: number): void {
    const label = route ?? UNMATCHED_ROUTE
    this.#http.observe(this.#http.route(label), label, method, statusCode, seconds)
  }

  /**
   * A recorder for one route pattern, resolved once (at route registration): per request it only
   * finds the method and status series and increments, with no label object or hashed key.
   */
  requestRecorder (route: string): (method: string, statusCode: number, seconds: number) => void {
    const series = this.#http.route(route)
    return (method, statusCode, seconds) => { this.#http.observe(series, route, method, statusCode, seconds) }
  }

  observeRedisCommand (connection: string, command: string, seconds: number, error: CommandErrorKind | undefined): void {
    const name = this.#commands.value(command.toLowerCase())
    this.#commandDuration.observe(connection, name, seconds)
    if (error !== undefined) this.#commandErrors.inc({ connection, command: name, error })
  }

  /** Prometheus text exposition of this app's registry. */
  metrics (): Promise<string> {
    return this.registry.metrics()
  }

  get contentType (): string {
    return this.registry.contentType
  }

  // prom-client calls every metric's collect() in one synchronous pass: the first call reads the
  // sources and updates every series, the others share its promise.
  #collectOnce (): Promise<void> {
    if (this.#scrape === undefined) {
      this.#scrape = this.#collect()
      queueMicrotask(() => { this.#scrape = undefined })
    }
    return this.#scrape
  }

  async #collect (): Promise<void> {
    const state = this.#read('redis', this.#sources.redisState)
    if (state !== undefined) {
      for (const status of STATES) this.#state.set({ state: status }, state.status === status ? 1 : 0)
      this.#mode.reset()
      this.#mode.set({ mode: state.mode }, 1)
      this.#reconnects.sync({}, state.reconnects)
      for (const [kind, count] of Object.entries(state.refusals ?? {})) this.#refusals.sync({ kind }, count)
      if (state.latencyMs === null) this.#pingLatency.remove()
      else this.#pingLatency.set(state.latencyMs / 1000)
    }
    if (this.#cache !== undefined) this.#cache(this.#read('cache', this.#sources.cacheStats))
    if (this.#httpCache !== undefined) this.#httpCache(this.#read('httpCache', this.#sources.httpCacheStats))
    if (this.#rateLimit !== undefined) this.#rateLimit(this.#read('rateLimit', this.#sources.rateLimitStats))
    for (const { name, source, sync } of this.#realtime) sync(this.#read(name, source))
    if (this.#session !== undefined) {
      const read = this.#read('sessions', this.#sources.sessionStats)
      this.#session(await Promise.resolve(read).catch((err: unknown) => { this.#failed('sessions', err) }))
    }
  }

  #read<T> (name: string, source: (() => T) | undefined): T | undefined {
    try {
      const value = source?.()
      this.#failing.delete(name)
      return value
    } catch (err) {
      this.#failed(name, err)
      return undefined
    }
  }

  /** Reported once per run of failures, not once per scrape. */
  #failed (name: string, err: unknown): void {
    if (this.#failing.has(name)) return
    this.#failing.add(name)
    this.#onSourceError(name, err)
  }

  #cacheSeries (registers: Registry[], collect: () => Promise<void>): Sync<CacheStats> {
    const perTier = (name: string, help: string) => new CumulativeCounter(new Counter({ name, help, labelNames: ['namespace', 'tier'], registers, collect }))
    const perNamespace = (name: string, help: string) => new CumulativeCounter(new Counter({ name, help, labelNames: ['namespace'], registers, collect }))
    const hits = perTier('cache_hits_total', 'Cache lookups answered fresh by a tier (memory, redis); a memory miss then a Redis hit counts once in each tier.')
    const misses = perTier('cache_misses_total', 'Cache lookups a tier could not answer fresh (absent, expired or invalidated).')
    const stale = perTier('cache_stale_hits_total', 'Stale values served within their grace (refresh running, loader failed or Redis down).')
    const loads = perNamespace('cache_loads_total', 'Loader runs that produced a value.')
    const loadErrors = perNamespace('cache_load_errors_total', 'Loader runs that threw.')
    const loadTimeouts = perNamespace('cache_load_timeouts_total', 'Loader runs given up on after their hard timeout.')
    const redisFailures = new CumulativeCounter(new Counter({ name: 'cache_redis_failures_total', help: 'Cache operations on Redis that failed and were answered without it.', registers, collect }))
    const invalidations = new CumulativeCounter(new Counter({ name: 'cache_invalidations_received_total', help: 'Invalidation messages received from instances (keys, tags, namespaces).', registers, collect }))
    const dropped = new CumulativeCounter(new Counter({ name: 'cache_invalidations_dropped_total', help: 'Messages on the invalidation channel that were not valid invalidations: dropped. Something other than the suite publishes there.', registers, collect }))
    const decompression = new CumulativeCounter(new Counter({ name: 'cache_decompression_failures_total', help: 'Compressed cache entries read from Redis that did not decompress (corrupt, or zstd on a Node without it): served as misses.', registers, collect }))
    const entries = new Gauge({ name: 'cache_memory_entries', help: 'Entries held by the in-process tier.', registers, collect })
    const bytes = new Gauge({ name: 'cache_memory_bytes', help: 'Bytes (JSON length) held by the in-process tier.', registers, collect })
    return (stats) => {
      if (stats === undefined) return
      for (const [raw, ns] of Object.entries(stats.namespaces ?? {})) {
        const namespace = this.#namespaces.value(raw === '' ? 'default' : raw)
        for (const tier of ['memory', 'redis'] as const) {
          hits.sync({ namespace, tier }, ns[tier]?.hits)
          misses.sync({ namespace, tier }, ns[tier]?.misses)
          stale.sync({ namespace, tier }, ns[tier]?.stale)
        }
        loads.sync({ namespace }, ns.loads)
        loadErrors.sync({ namespace }, ns.loadErrors)
        loadTimeouts.sync({ namespace }, ns.loadTimeouts)
      }
      redisFailures.sync({}, stats.redisFailures)
      invalidations.sync({}, stats.invalidationsReceived)
      dropped.sync({}, stats.invalidationsDropped)
      decompression.sync({}, stats.decompressionFailures)
      if (stats.memory === undefined) {
        entries.remove()
        bytes.remove()
      } else {
        entries.set(stats.memory.entries)
        bytes.set(stats.memory.bytes)
      }
    }
  }

  #rateLimitSeries (registers: Registry[], collect: () => Promise<void>): Sync<Partial<RateLimitStats>> {
    const decisions = new CumulativeCounter(new Counter({
      name: 'rate_limit_decisions_total',
      help: 'Rate-limit decisions by outcome: allowed and limited (by the Redis or in-process limiter), fallback (in-process while Redis is down), open (allowed unchecked while Redis is down), closed (refused with 503 while Redis is down).',
      labelNames: ['outcome'],
      registers,
      collect
    }))
    const bans = new CumulativeCounter(new Counter({ name: 'rate_limit_bans_total', help: 'Refusals of a banned client.', registers, collect }))
    const redisFailures = new CumulativeCounter(new Counter({ name: 'rate_limit_redis_failures_total', help: 'Rate-limit decisions where Redis failed or timed out and the Redis-down mode applied.', registers, collect }))
    const dryRun = new CumulativeCounter(new Counter({ name: 'rate_limit_dry_run_refusals_total', help: 'Requests a dry-run rate-limit policy would have refused (let through).', registers, collect }))
    return (stats) => {
      if (stats === undefined) return
      for (const outcome of RATE_LIMIT_OUTCOMES) decisions.sync({ outcome }, stats[outcome] ?? 0)
      dryRun.sync({}, stats.dryRunRefused ?? 0)
      bans.sync({}, stats.banned ?? 0)
      redisFailures.sync({}, stats.redisFailures ?? 0)
    }
  }

  #httpCacheSeries (registers: Registry[], collect: () => Promise<void>): Sync<Record<string, unknown>> {
    const events = new CumulativeCounter(new Counter({
      name: 'http_cache_events_total',
      help: 'HTTP response cache, by event: hits, stale_hits, misses, bypasses, stores, not_modified (304), collapsed (answered by another request\'s handler run), revalidations, invalidations.',
      labelNames: ['event'],
      registers,
      collect
    }))
    return (stats) => {
      if (stats === undefined || stats === null || typeof stats !== 'object') return
      for (const [field, value] of Object.entries(stats)) {
        if (typeof value === 'number') events.sync({ event: this.#httpCacheEvents.value(snakeCase(field)) }, value)
      }
    }
  }

  // Messages published/received/dropped, presence joins/leaves, lock acquisitions/contention: one
  // counter per feature by event, plus the feature's current-value gauge.
  #realtimeSeries (name: 'pubsub' | 'presence' | 'lock', registers: Registry[], collect: () => Promise<void>): Sync<Record<string, unknown>> {
    const labels = new BoundedLabel(20)
    const events = new CumulativeCounter(new Counter({ name: `${name}_events_total`, help: `${name} counters from stats(), by event.`, labelNames: ['event'], registers, collect }))
    const spec = REALTIME_GAUGES[name]
    const gauge = spec === undefined ? undefined : new Gauge({ name: spec.name, help: spec.help, registers, collect })
    const deadLetters = name === 'pubsub' ? this.#deadLetterSeries(registers, collect) : undefined
    return (stats) => {
      if (stats === undefined || stats === null || typeof stats !== 'object') return
      for (const [field, value] of Object.entries(stats)) {
        if (typeof value === 'number' && field !== 'subscriptions' && field !== 'held') events.sync({ event: labels.value(snakeCase(field)) }, value)
      }
      const current = spec?.read(stats)
      if (current !== undefined) gauge?.set(current)
      deadLetters?.(stats.streamDeadLetters)
    }
  }

  /** Stream entries given up on: the series to alert on (any increase means messages were not processed). */
  #deadLetterSeries (registers: Registry[], collect: () => Promise<void>): (counts: unknown) => void {
    const counter = new CumulativeCounter(new Counter({
      name: 'pubsub_stream_dead_letters_total',
      help: 'Stream entries moved to their dead-letter stream (<name>:dead) after maxDeliveries, by stream and consumer group.',
      labelNames: ['stream', 'group'],
      registers,
      collect
    }))
    // Stream and group names come from the app's code, but bound them anyway.
    const streams = new BoundedLabel(50)
    const groups = new BoundedLabel(50)
    return (counts) => {
      if (!Array.isArray(counts)) return
      // Sum first: pairs past the label bound share `other`, whose total is theirs together.
      const totals = new Map<string, { stream: string, group: string, count: number }>()
      for (const entry of counts as Array<{ stream?: unknown, group?: unknown, count?: unknown }>) {
        if (typeof entry.stream !== 'string' || typeof entry.group !== 'string' || typeof entry.count !== 'number') continue
        const stream = streams.value(entry.stream)
        const group = groups.value(entry.group)
        const key = `${stream}\u0000${group}`
        const total = totals.get(key)
        if (total === undefined) totals.set(key, { stream, group, count: entry.count })
        else total.count += entry.count
      }
      for (const { stream, group, count } of totals.values()) counter.sync({ stream, group }, count)
    }
  }

  #sessionSeries (registers: Registry[], collect: () => Promise<void>): Sync<Record<string, unknown>> {
    const counter = (name: string, help: string) => new CumulativeCounter(new Counter({ name, help, registers, collect }))
    const named: Record<string, CumulativeCounter<string>> = {
      loads: counter('session_loads_total', 'Sessions read from the store (found or not).'),
      saves: counter('session_saves_total', 'Session writes of changed data, new sessions included.'),
      touches: counter('session_touches_total', 'Expiry refreshes of unchanged sessions (sliding expiry).'),
      destroys: counter('session_destroys_total', 'Sessions destroyed (logout, revocation).'),
      invalid: counter('session_invalid_total', 'Stored sessions discarded because they failed the schema or could not be parsed.'),
      decryptionFailures: counter('session_decryption_failures_total', 'Stored sessions whose encrypted payload did not decrypt (altered, or sealed with a key no longer in SESSION_ENCRYPTION_KEYS): read as no session.'),
      decompressionFailures: counter('session_decompression_failures_total', 'Stored sessions with a compressed field that did not decompress: read as no session.'),
      errors: counter('session_errors_total', 'Session store failures (each answered 503 where a request was waiting).'),
      eventsDropped: counter('session_lifecycle_events_dropped_total', 'Session lifecycle events (app.sessions.on) not delivered: handlers slower than events arrive.'),
      eventHandlerErrors: counter('session_lifecycle_handler_errors_total', 'Session lifecycle event handler calls that threw or rejected.')
    }
    const others = new CumulativeCounter(new Counter({ name: 'session_events_total', help: 'Other session store counters, by event.', labelNames: ['event'], registers, collect }))
    const active = new Gauge({ name: 'session_active', help: 'Sessions alive in the store at the last count (absent while unknown).', registers, collect })
    active.remove() // a gauge without labels starts at 0; unknown is no sample, not zero
    return (stats) => {
      if (stats === undefined || stats === null || typeof stats !== 'object') return
      for (const [field, value] of Object.entries(stats)) {
        if (field === 'active') {
          if (typeof value === 'number') active.set(value)
          else active.remove()
        } else if (typeof value !== 'number') {
          continue
        } else if (named[field] !== undefined) {
          named[field].sync({}, value)
        } else {
          others.sync({ event: this.#sessionEvents.value(snakeCase(field)) }, value)
        }
      }
    }
  }
}

function num (value: unknown): number | undefined {
  return typeof value === 'number' ? value : undefined
}

function snakeCase (name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/[^A-Za-z0-9_]/g, '_').toLowerCase()
}
