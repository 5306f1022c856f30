// One helper per traced operation. Each is called only when its channel has subscribers (the call
// site checks `channel.start.hasSubscribers` first), so the contexts and closures here cost nothing otherwise.
import {
  begin, cacheChannel, currentOperation, end, httpCacheChannel, lockChannel, pubsubChannel, rateLimitChannel,
  sessionChannel, traced, type SuiteTraceContext
} from './channels.js'
import { traceparentOf, withTraceparent } from './propagation.js'

// ---- cache ----------------------------------------------------------------------------------------

export type CacheOperation = 'get' | 'getOrSet' | 'getOrSetMany' | 'set' | 'delete' | 'invalidateTags'

const NAMESPACE = 'frs.cache.namespace'
const RESULT = 'frs.cache.result'
const TIER = 'frs.cache.tier'

/** A cache operation of one namespace; `key` is an identifier (exported only when the app opts in). */
export function traceCache<T> (operation: CacheOperation, namespace: string, key: string | undefined, count: number | undefined,
  fn: () => Promise<T>): Promise<T> {
  const context: SuiteTraceContext = { name: `cache.${operation}`, attributes: { [NAMESPACE]: namespace } }
  if (key !== undefined) context.identifiers = { 'frs.cache.key': key }
  if (count !== undefined) context.attributes['frs.cache.key_count'] = count
  return traced(cacheChannel, context, fn)
}

/**
 * A hit, miss or stale answer the cache counted (lib/cache/stats.ts): noted on the single-key
 * operation it belongs to. The last hit or stale answer names the tier; a miss only fills an empty result.
 */
export function noteCacheOutcome (type: 'hit' | 'miss' | 'stale', tier: string): void {
  const operation = currentOperation()
  if (operation === undefined) return
  const attributes = operation.attributes
  if (attributes[NAMESPACE] === undefined || attributes['frs.cache.key_count'] !== undefined || operation.name === 'cache.loader') return
  if (type === 'miss') {
    attributes[RESULT] ??= 'miss'
  } else {
    attributes[RESULT] = type
    attributes[TIER] = tier
  }
}

/** The loader, as a child span of the operation that runs it (which the loader then answered, unless stale was served). */
export function traceLoader<T> (namespace: string, fn: () => T | Promise<T>): Promise<T> {
  const parent = currentOperation()
  if (parent !== undefined && parent.attributes[NAMESPACE] !== undefined && parent.attributes[RESULT] !== 'stale') {
    parent.attributes[RESULT] = 'miss'
    parent.attributes[TIER] = 'loader'
  }
  return traced(cacheChannel, { name: 'cache.loader', attributes: { [NAMESPACE]: namespace } }, fn)
}

/** Another instance holds the load lock of this key: the wait for its value (or for the lock) as a span. */
export function beginLockWait (namespace: string): SuiteTraceContext {
  return begin(cacheChannel, { name: 'cache.lock_wait', attributes: { [NAMESPACE]: namespace } })
}

/** `outcome`: 'written' (the holder's value arrived), 'acquired' (the lock came free), 'taken' (gave up waiting: the loader runs anyway). */
export function endLockWait (context: SuiteTraceContext | undefined, outcome: string): void {
  if (context === undefined) return
  // The value another instance loaded came from Redis: the read it belongs to was answered there.
  const read = currentOperation()
  if (outcome === 'written' && read !== undefined && read.attributes[NAMESPACE] !== undefined && read.name !== 'cache.loader') read.attributes[TIER] = 'redis'
  end(cacheChannel, context, { 'frs.cache.lock_wait.outcome': outcome })
}

// ---- HTTP cache -----------------------------------------------------------------------------------

interface HeaderReader { getHeader: (name: string) => unknown }

const HTTP_RESULT = 'frs.http_cache.result'
const BYPASS_REASON = 'frs.http_cache.bypass_reason'

/** The lookup before the handler: HIT or STALE when it answered, else MISS, or BYPASS and why. */
export function traceHttpCacheLookup (method: string, reply: HeaderReader, lookup: () => boolean | Promise<boolean>): Promise<boolean> {
  const context: SuiteTraceContext = { name: 'http_cache.lookup', attributes: {} }
  return traced(httpCacheChannel, context, async () => {
    const answered = await lookup()
    const verdict = reply.getHeader('x-cache')
    const attributes = context.attributes
    if (answered) {
      attributes[HTTP_RESULT] = typeof verdict === 'string' ? verdict : 'HIT'
    } else if (verdict === 'BYPASS') {
      attributes[HTTP_RESULT] = 'BYPASS'
    } else if (method !== 'GET' && method !== 'HEAD') {
      attributes[HTTP_RESULT] = 'BYPASS'
      attributes[BYPASS_REASON] = 'method'
    } else {
      attributes[HTTP_RESULT] = 'MISS'
    }
    return answered
  })
}

/** The store after the handler ran: MISS (stored), BYPASS and why not, or STALE (stale-if-error). */
export function traceHttpCacheStore<T> (reply: HeaderReader, store: () => Promise<T>): Promise<T> {
  const context: SuiteTraceContext = { name: 'http_cache.store', attributes: {} }
  return traced(httpCacheChannel, context, async () => {
    const sent = await store()
    const verdict = reply.getHeader('x-cache')
    if (typeof verdict === 'string') context.attributes[HTTP_RESULT] = verdict
    return sent
  })
}

// Why a response was not stored, in a few words that stay few (the reasons' texts carry sizes and names).
const STORE_REASONS: ReadonlyArray<readonly [RegExp, string]> = [
  [/^status/, 'status'], [/cookie/, 'set_cookie'], [/^streamed/, 'streamed_body'], [/Cache-Control/, 'cache_control'],
  [/^response varies/, 'vary'], [/^encoded/, 'encoding'], [/exceeds/, 'too_large'], [/cannot be sent/, 'unsendable'],
  [/HEAD/, 'head_handler']
]

/** Why the HTTP cache stays out: a word (`credentials`, `no_identity`...) or a not-storable reason's text. */
export function noteHttpCacheBypass (reason: string): void {
  const operation = currentOperation()
  if (operation === undefined || !operation.name.startsWith('http_cache.')) return
  operation.attributes[BYPASS_REASON] = /^[a-z_]+$/.test(reason)
    ? reason
    : STORE_REASONS.find(([pattern]) => pattern.test(reason))?.[1] ?? 'other'
}

// ---- sessions -------------------------------------------------------------------------------------

export type SessionOperation = 'load' | 'save' | 'refresh' | 'destroy'

/** A session store call; a load says whether a session was found. Never the session id. */
export function traceSession<T> (operation: SessionOperation, fn: () => Promise<T>): Promise<T> {
  const context: SuiteTraceContext = { name: `session.${operation}`, attributes: {} }
  if (operation !== 'load') return traced(sessionChannel, context, fn)
  return traced(sessionChannel, context, async () => {
    const loaded = await fn()
    context.attributes['frs.session.found'] = loaded !== undefined && loaded !== null
    return loaded
  })
}

/** What a save wrote: a new session (`create`), changed fields (`update`), or only its expiry (`refresh`, when due). */
export function noteSessionWrite (write: 'create' | 'update' | 'refresh'): void {
  const operation = currentOperation()
  if (operation?.name === 'session.save') operation.attributes['frs.session.write'] = write
}

// ---- rate limits ----------------------------------------------------------------------------------

interface Decision { allowed: boolean, banned: boolean, source: string }

const BACKENDS: Record<string, string> = {
  redis: 'redis', memory: 'memory', fallback: 'memory_fallback', open: 'fail_open', closed: 'fail_closed'
}

/** A rate-limit decision: the policy, allowed or refused, and which backend decided. `key` is an identifier. */
export function traceRateLimit<D extends Decision> (policy: string, batched: boolean, key: string,
  decide: () => D | Promise<D>): Promise<D> {
  const context: SuiteTraceContext = {
    name: 'rate_limit.decision', attributes: { 'frs.rate_limit.policy': policy }, identifiers: { 'frs.rate_limit.key': key }
  }
  return traced(rateLimitChannel, context, async () => {
    const decision = await decide()
    const attributes = context.attributes
    attributes['frs.rate_limit.result'] = decision.allowed ? 'allowed' : 'refused'
    attributes['frs.rate_limit.backend'] = decision.source === 'redis' && batched ? 'redis_batched_lease' : BACKENDS[decision.source] ?? decision.source
    if (decision.banned) attributes['frs.rate_limit.banned'] = true
    return decision
  })
}

// ---- locks ----------------------------------------------------------------------------------------

/** app.locks: an acquisition (acquired or busy after its waits) or a release. `name` is an identifier. */
export function traceLock<T> (operation: 'acquire' | 'release', name: string, fn: () => Promise<T>): Promise<T> {
  const context: SuiteTraceContext = { name: `lock.${operation}`, attributes: {}, identifiers: { 'frs.lock.name': name } }
  return traced(lockChannel, context, async () => {
    const result = await fn()
    context.attributes[operation === 'acquire' ? 'frs.lock.acquired' : 'frs.lock.released'] =
      operation === 'acquire' ? result !== undefined : result === true
    return result
  })
}

// ---- pub/sub --------------------------------------------------------------------------------------

const MESSAGING = { 'messaging.system': 'redis' } as const

/** A publish: a producer span whose context the message carries (propagation.ts). `channel` is an identifier. */
export function tracePublish (channel: string, payload: string, publish: (payload: string) => Promise<number>): Promise<number> {
  const context: SuiteTraceContext = {
    name: 'pubsub.publish',
    kind: 'producer',
    attributes: { ...MESSAGING, 'messaging.operation.type': 'send', 'messaging.operation.name': 'publish' },
    identifiers: { 'messaging.destination.name': channel },
    carrier: {}
  }
  // The subscriber filled the carrier on start, before this runs.
  return traced(pubsubChannel, context, async () => {
    const receivers = await publish(withTraceparent(payload, context.carrier?.traceparent))
    context.attributes['frs.pubsub.receivers'] = receivers
    return receivers
  })
}

/** One handler's delivery: a consumer span in a trace of its own, linked to the publisher's span. */
export function traceDeliver<T> (channel: string, payload: string, handle: () => T | Promise<T>): Promise<T> {
  return traced(pubsubChannel, {
    name: 'pubsub.deliver',
    kind: 'consumer',
    root: true,
    attributes: { ...MESSAGING, 'messaging.operation.type': 'process', 'messaging.operation.name': 'deliver' },
    identifiers: { 'messaging.destination.name': channel },
    linkedTraceparent: traceparentOf(payload)
  }, handle)
}
