// enableTracing(): the suite's channels (channels.ts) and ioredis 6's own TracingChannels
// (`ioredis:command`, `ioredis:batch`, `ioredis:connect`) as OpenTelemetry spans.
//
// @opentelemetry/api is an optional peer dependency: loaded here, when the app turns tracing on, and
// nowhere else. Spans go to whatever tracer provider the app registered (the OpenTelemetry SDK);
// without one they are the API's no-ops. A suite span's parent is the active context (the request's
// span under @fastify/otel), and while the operation runs its span is the active context, so the
// Redis commands it sends and the loader it calls are its children: one tree per request.
import { tracingChannel, type TracingChannelSubscribers } from 'node:diagnostics_channel'
import { createRequire } from 'node:module'
import type * as Api from '@opentelemetry/api'
import {
  cacheChannel, httpCacheChannel, lockChannel, pubsubChannel, rateLimitChannel, sessionChannel, setContextBinder,
  type SuiteChannel, type SuiteTraceContext
} from './channels.js'
import { TracingSetupError } from '../errors/index.js'

export interface TracingOptions {
  /**
   * Turn ioredis commands into spans (`GET`, `SET`, `EVALSHA`...; MULTI and pipelines as one span)
   * when they run under a span: a request's, or one of the suite's. Commands outside any span (the
   * health PING, background sweeps) make none. Default: true. Leave it on unless another
   * instrumentation already traces ioredis.
   */
  redisCommands?: boolean
  /**
   * Export the high-cardinality identifiers as attributes: cache keys (`frs.cache.key`, as the app
   * wrote them, without prefix or namespace), lock names, pub/sub channels, rate-limit keys (a client
   * address or a user id) and Redis command arguments (`db.query.text`, values redacted by ioredis).
   * Default: false. Session ids are never exported.
   */
  identifiers?: boolean
  /** Carry the trace context in pub/sub messages, so a subscriber's span links to the publisher's. Default: true. */
  propagate?: boolean
  /** The tracer's name. Default: 'fastify-redis-suite'. */
  tracerName?: string
}

export interface Tracing {
  /** Unsubscribes: the suite and ioredis go back to no tracing cost at all. */
  disable: () => void
}

interface Loaded { api: typeof Api }

const SPAN = Symbol('fastify-redis-suite.span')
const ACTIVE = Symbol('fastify-redis-suite.context')
type WithSpan = object & { [SPAN]?: Api.Span, [ACTIVE]?: Api.Context }

let enabled: { tracing: Tracing, users: number } | undefined

/**
 * Turns the suite's operations (and ioredis commands) into OpenTelemetry spans. Call once at start-up,
 * after the OpenTelemetry SDK is set up. A second call while enabled shares the first one's settings.
 */
export function enableTracing (options: TracingOptions = {}): Tracing {
  if (enabled !== undefined) {
    enabled.users++
    return sharedHandle()
  }
  const { api } = loadApi()
  const tracing = subscribeAll(api, options)
  enabled = { tracing, users: 1 }
  return sharedHandle()
}

function sharedHandle (): Tracing {
  let disabled = false
  return {
    disable () {
      if (disabled || enabled === undefined) return
      disabled = true
      if (--enabled.users > 0) return
      enabled.tracing.disable()
      enabled = undefined
    }
  }
}

function loadApi (): Loaded {
  try {
    const api = createRequire(import.meta.url)('@opentelemetry/api') as typeof Api
    return { api }
  } catch {
    throw new TracingSetupError('enableTracing() needs @opentelemetry/api: npm install @opentelemetry/api (and set up the OpenTelemetry SDK before the app starts)')
  }
}

const SUITE_CHANNELS: readonly SuiteChannel[] = [cacheChannel, httpCacheChannel, sessionChannel, rateLimitChannel, lockChannel, pubsubChannel]

function subscribeAll (api: typeof Api, options: TracingOptions): Tracing {
  const tracer = api.trace.getTracer(options.tracerName ?? 'fastify-redis-suite')
  const identifiers = options.identifiers === true
  const propagate = options.propagate !== false
  const KIND = { internal: api.SpanKind.INTERNAL, producer: api.SpanKind.PRODUCER, consumer: api.SpanKind.CONSUMER }

  const finish = (context: WithSpan & { error?: unknown }, attributes?: Api.Attributes): void => {
    const span = context[SPAN]
    if (span === undefined) return
    context[SPAN] = undefined
    if (attributes !== undefined) span.setAttributes(attributes)
    if (context.error !== undefined) {
      const error = context.error
      span.recordException(error instanceof Error ? error : String(error))
      span.setAttribute('error.type', error instanceof Error ? (error as { code?: string }).code ?? error.name : typeof error)
      span.setStatus({ code: api.SpanStatusCode.ERROR, message: error instanceof Error ? error.message : undefined })
    }
    span.end()
  }

  const suite: TracingChannelSubscribers<SuiteTraceContext & WithSpan> = {
    start (context) {
      const parent = context.root === true ? api.ROOT_CONTEXT : api.context.active()
      const links = linksOf(api, context.linkedTraceparent)
      const attributes: Api.Attributes = { ...context.attributes }
      if (identifiers && context.identifiers !== undefined) Object.assign(attributes, context.identifiers)
      const span = tracer.startSpan(context.name, { kind: KIND[context.kind ?? 'internal'], attributes, links }, parent)
      context[SPAN] = span
      const active = api.trace.setSpan(parent, span)
      context[ACTIVE] = active
      if (propagate && context.carrier !== undefined) context.carrier.traceparent = traceparentFor(span.spanContext())
    },
    end () {},
    asyncStart () {},
    asyncEnd (context) { finish(context, context.attributes) },
    error () {}
  }
  for (const channel of SUITE_CHANNELS) channel.subscribe(suite as TracingChannelSubscribers<SuiteTraceContext>)
  // While an operation runs, its span is the active context: its commands and loader nest under it.
  setContextBinder((context, fn) => {
    const active = (context as WithSpan)[ACTIVE]
    return active === undefined ? fn() : api.context.with(active, fn)
  })

  const redisChannels: Array<[ReturnType<typeof tracingChannel>, TracingChannelSubscribers<object>]> = []
  if (options.redisCommands !== false) {
    const client = (context: RedisContext, name: string, attributes: Api.Attributes): void => {
      // A command outside any span (a health PING, a background sweep) would be a trace of its own: none.
      const parent = api.context.active()
      if (api.trace.getSpan(parent) === undefined) return
      attributes['db.system.name'] = 'redis'
      if (context.database !== undefined) attributes['db.namespace'] = String(context.database)
      if (context.serverAddress !== undefined) attributes['server.address'] = context.serverAddress
      if (context.serverPort !== undefined) attributes['server.port'] = context.serverPort
      context[SPAN] = tracer.startSpan(name, { kind: api.SpanKind.CLIENT, attributes }, parent)
    }
    const redisEnd = { end () {}, asyncStart () {}, asyncEnd (context: RedisContext) { finish(context) }, error () {} }
    redisChannels.push(
      [tracingChannel('ioredis:command'), {
        start (context: RedisContext) {
          const operation = (context.command ?? 'command').toUpperCase()
          const attributes: Api.Attributes = { 'db.operation.name': operation }
          if (identifiers && context.args !== undefined) attributes['db.query.text'] = [operation, ...context.args].join(' ')
          client(context, operation, attributes)
        },
        ...redisEnd
      } as TracingChannelSubscribers<object>],
      [tracingChannel('ioredis:batch'), {
        start (context: RedisContext) {
          const batch = context.batchMode ?? 'PIPELINE'
          client(context, batch, { 'db.operation.name': batch, 'db.operation.batch.size': context.batchSize ?? 0 })
        },
        ...redisEnd
      } as TracingChannelSubscribers<object>],
      [tracingChannel('ioredis:connect'), {
        start (context: RedisContext) { client(context, 'redis.connect', {}) },
        ...redisEnd
      } as TracingChannelSubscribers<object>]
    )
    for (const [channel, subscribers] of redisChannels) channel.subscribe(subscribers)
  }

  return {
    disable () {
      for (const channel of SUITE_CHANNELS) channel.unsubscribe(suite as TracingChannelSubscribers<SuiteTraceContext>)
      for (const [channel, subscribers] of redisChannels) channel.unsubscribe(subscribers)
      setContextBinder(undefined)
    }
  }
}

/** What ioredis 6 publishes (node_modules/ioredis/built/tracing.js). */
interface RedisContext extends WithSpan {
  command?: string
  args?: string[]
  batchMode?: string
  batchSize?: number
  database?: number
  serverAddress?: string
  serverPort?: number
  error?: unknown
}

function traceparentFor (span: Api.SpanContext): string {
  return `00-${span.traceId}-${span.spanId}-${(span.traceFlags & 0xff).toString(16).padStart(2, '0')}`
}

function linksOf (api: typeof Api, traceparent: string | undefined): Api.Link[] | undefined {
  if (traceparent === undefined) return undefined
  const [, traceId = '', spanId = '', flags = '00'] = traceparent.split('-')
  const context: Api.SpanContext = { traceId, spanId, traceFlags: parseInt(flags, 16), isRemote: true }
  return api.trace.isSpanContextValid(context) ? [{ context }] : undefined
}
