// What the suite does inside a request, published on node:diagnostics_channel TracingChannels.
//
// Nothing here depends on OpenTelemetry: otel.ts (enableTracing) is one subscriber, and any APM can
// subscribe to the same channels. Every call site checks `channel.start.hasSubscribers` before it
// builds a context or a closure, so with nobody listening an operation costs that one check: a
// getter that returns false, cheaper than TracingChannel's own `hasSubscribers` (five of them).
// A subscriber therefore subscribes to `start`, as every tracer does.
//
// The context each operation publishes is a plain object: a span name, low-cardinality attributes
// (named after the OpenTelemetry semantic conventions where one exists, `frs.*` otherwise), and apart
// from them the identifiers (cache key, lock name, channel, rate-limit key) that a subscriber exports
// only when the app opts in. Outcomes known only inside an operation (which cache tier answered, why
// the HTTP cache bypassed) are noted on the operation's context through an AsyncLocalStorage that is
// entered only while an operation is traced.
import { AsyncLocalStorage } from 'node:async_hooks'
import { tracingChannel, type TracingChannel } from 'node:diagnostics_channel'

export type TraceAttributes = Record<string, string | number | boolean>

export interface SuiteTraceContext {
  /** The span name: `cache.getOrSet`, `session.load`, `rate_limit.decision`... */
  name: string
  /** Low cardinality only; final once the operation settled (asyncEnd). */
  attributes: TraceAttributes
  /** High-cardinality values (keys, names, channels): exported only when the app opts in. */
  identifiers?: Record<string, string> | undefined
  /** Producer and consumer spans of pub/sub; internal otherwise. */
  kind?: 'internal' | 'producer' | 'consumer'
  /** pubsub.publish: a subscriber writes here, on start, the W3C `traceparent` to carry in the message. */
  carrier?: { traceparent?: string }
  /** pubsub.deliver: the `traceparent` the message came with, to link the delivery to the publisher's span. */
  linkedTraceparent?: string | undefined
  /** A delivery runs in no request: the subscriber starts a new trace (linked to the publisher's). */
  root?: boolean
  /** Set by TracingChannel: the operation's error, or its value. */
  error?: unknown
  result?: unknown
}

export const CHANNEL_NAMES = Object.freeze({
  cache: 'fastify-redis-suite:cache',
  httpCache: 'fastify-redis-suite:http-cache',
  session: 'fastify-redis-suite:session',
  rateLimit: 'fastify-redis-suite:rate-limit',
  lock: 'fastify-redis-suite:lock',
  pubsub: 'fastify-redis-suite:pubsub'
})

export type SuiteChannel = TracingChannel<unknown, SuiteTraceContext>

export const cacheChannel: SuiteChannel = tracingChannel(CHANNEL_NAMES.cache)
export const httpCacheChannel: SuiteChannel = tracingChannel(CHANNEL_NAMES.httpCache)
export const sessionChannel: SuiteChannel = tracingChannel(CHANNEL_NAMES.session)
export const rateLimitChannel: SuiteChannel = tracingChannel(CHANNEL_NAMES.rateLimit)
export const lockChannel: SuiteChannel = tracingChannel(CHANNEL_NAMES.lock)
export const pubsubChannel: SuiteChannel = tracingChannel(CHANNEL_NAMES.pubsub)

/** The traced operation the current code runs in (only while one is traced). */
const operations = new AsyncLocalStorage<SuiteTraceContext>()

/**
 * How a subscriber makes its own context (an OpenTelemetry span) current while the operation runs,
 * so that what the operation calls (ioredis commands, the loader) becomes its children.
 */
export type ContextBinder = <R>(context: SuiteTraceContext, fn: () => R) => R
let binder: ContextBinder | undefined

export function setContextBinder (next: ContextBinder | undefined): void {
  binder = next
}

/** Runs `fn` as a traced operation: start, end, then asyncStart/asyncEnd (or error) when it settles. */
export function traced<T> (channel: SuiteChannel, context: SuiteTraceContext, fn: () => T | Promise<T>): Promise<T> {
  return channel.tracePromise(enter, context, undefined, context, fn) as Promise<T>
}

async function enter<T> (context: SuiteTraceContext, fn: () => T | Promise<T>): Promise<T> {
  const bind = binder
  return await operations.run(context, bind === undefined ? fn : () => bind(context, fn))
}

/** A span without a function to run (a wait inside an operation): started now, ended by end(). */
export function begin (channel: SuiteChannel, context: SuiteTraceContext): SuiteTraceContext {
  channel.start.publish(context)
  channel.end.publish(context)
  return context
}

export function end (channel: SuiteChannel, context: SuiteTraceContext | undefined, attributes?: TraceAttributes): void {
  if (context === undefined) return
  if (attributes !== undefined) Object.assign(context.attributes, attributes)
  channel.asyncStart.publish(context)
  channel.asyncEnd.publish(context)
}

/** The operation being traced here, if any. */
export function currentOperation (): SuiteTraceContext | undefined {
  return operations.getStore()
}
