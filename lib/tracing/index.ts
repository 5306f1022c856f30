// Tracing, free of Fastify and of OpenTelemetry: the suite's operations on node:diagnostics_channel
// TracingChannels (channels.ts, operations.ts) and the optional OpenTelemetry subscriber (otel.ts).
export {
  CHANNEL_NAMES, cacheChannel, httpCacheChannel, lockChannel, pubsubChannel, rateLimitChannel, sessionChannel,
  type SuiteTraceContext, type TraceAttributes
} from './channels.js'
export {
  beginLockWait, endLockWait, noteCacheOutcome, noteHttpCacheBypass, noteSessionWrite, traceCache, traceDeliver, traceHttpCacheLookup,
  traceHttpCacheStore, traceLoader, traceLock, tracePublish, traceRateLimit, traceSession
} from './operations.js'
export { enableTracing, type Tracing, type TracingOptions } from './otel.js'
