// Health routes for load balancers and Kubernetes (DESIGN §2). Every answer comes from cached state:
// nothing here awaits Redis or reconnects. HEAD is served by Fastify for each GET route.
// Details (Redis version, memory, errors with internal addresses) are internal (DESIGN §3): with
// METRICS_TOKEN set they need `Authorization: Bearer <METRICS_TOKEN>`, and in staging and production
// they are never public; status stays public for load balancers.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import fp from 'fastify-plugin'
import Type, { type Static } from 'typebox'
import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { bearerTokenMatches } from '../lib/metrics/index.js'
import { HealthRegistry, type CheckStatus } from '../lib/health/index.js'
import type { RedisState } from '../lib/redis/index.js'
import { HealthPrefixError } from '../lib/errors/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Add checks (a job queue, a database) to /health and /health/ready; see HealthCheckOptions. */
    health: HealthRegistry
    /**
     * The graceful shutdown, for `closeWithGrace(…, () => app.closeGracefully())`: /health/ready answers
     * 503 at once, requests are still served for SHUTDOWN_DRAIN_DELAY (each response closes its
     * keep-alive connection after it is sent), then app.close(). Calling it again returns the same promise.
     */
    closeGracefully: () => Promise<void>
  }
}

const RedisStatusSchema = Type.Union([Type.Literal('connected'), Type.Literal('degraded'), Type.Literal('disconnected')])
const ModeSchema = Type.Union([Type.Literal('standalone'), Type.Literal('sentinel'), Type.Literal('cluster'), Type.Literal('memory')])
const LatencySchema = Type.Union([Type.Number(), Type.Null()])

export const LiveSchema = Type.Object({ status: Type.Literal('ok') })

/** When `lastError` happened (ISO 8601): an error shown beside `connected` is history, not news. */
const LastErrorAtSchema = Type.Optional(Type.String({ format: 'date-time' }))

export const CheckSchema = Type.Object({
  status: Type.String(),
  /** null while the dependency is down: no round trip was measured. */
  latencyMs: LatencySchema,
  mode: Type.Optional(Type.String()),
  lastError: Type.Optional(Type.String()),
  lastErrorAt: LastErrorAtSchema
}, { additionalProperties: true })

export const HealthSchema = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('degraded'), Type.Literal('down')]),
  uptimeS: Type.Number(),
  checks: Type.Record(Type.String(), CheckSchema)
})

export const RedisHealthSchema = Type.Object({
  status: RedisStatusSchema,
  mode: ModeSchema,
  latencyMs: LatencySchema,
  version: Type.String(),
  uptimeS: Type.Number(),
  memoryUsedBytes: Type.Number(),
  memoryUsed: Type.String(),
  connectedClients: Type.Number(),
  role: Type.String(),
  reconnects: Type.Number(),
  lastError: Type.Optional(Type.String()),
  lastErrorAt: LastErrorAtSchema
})

/** /health/redis for a caller without the token where details are not public. */
export const RedisStatusOnlySchema = Type.Object({ status: RedisStatusSchema })

const RedisHealthResponse = Type.Union([RedisHealthSchema, RedisStatusOnlySchema])

export type HealthBody = Static<typeof HealthSchema>
export type RedisHealthBody = Static<typeof RedisHealthSchema>
export type RedisStatusOnlyBody = Static<typeof RedisStatusOnlySchema>

const REDIS_CHECK_STATUS: Record<RedisState['status'], CheckStatus> = { connected: 'ok', degraded: 'degraded', disconnected: 'down' }

export interface HealthRoutesOptions {
  /**
   * Where the routes live: `<prefix>`, `<prefix>/live`, `<prefix>/ready`, `<prefix>/redis`. Default
   * '/health'; another one (e.g. '/_suite/health') for an app that already serves /health.
   */
  prefix?: string
}

/** '/health' unless given; one leading slash, no trailing one (so `${prefix}/live` is a clean path). */
export function healthPrefix (options: HealthRoutesOptions = {}): string {
  const prefix = options.prefix ?? '/health'
  if (!/^\/[^?#]*[^/?#]$/.test(prefix)) throw new HealthPrefixError(`fastify-redis-suite: health prefix must start with "/" and not end with one, got ${JSON.stringify(prefix)}`)
  return prefix
}

async function healthRoutes (fastify: FastifyInstance, options: HealthRoutesOptions = {}): Promise<void> {
  const prefix = healthPrefix(options)
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const registry = new HealthRegistry()
  app.decorate('health', registry)
  const token = app.config.METRICS_TOKEN
  const detailsPublic = token === undefined && app.config.NODE_ENV !== 'staging' && app.config.NODE_ENV !== 'production'
  const mayReadDetails = (authorization: string | undefined): boolean =>
    token === undefined ? detailsPublic : bearerTokenMatches(authorization, token)

  registry.addReadOnlyCheck({
    name: 'redis',
    required: app.config.HEALTH_READY_REQUIRES_REDIS,
    read: () => {
      const { status, mode, latencyMs, lastError, lastErrorAt } = app.redisState
      // Shown in Redis' own words (connected/degraded/disconnected), as DESIGN §2 has it.
      return { status: REDIS_CHECK_STATUS[status], shown: { status, mode, latencyMs, ...errorFields(lastError, lastErrorAt) } }
    }
  })

  const noStore = { 'cache-control': 'no-store' }

  app.get(`${prefix}/live`, { schema: { response: { 200: LiveSchema } } }, async (_request, reply) => {
    reply.headers(noStore)
    return { status: 'ok' as const }
  })

  const summary = (): HealthBody & { ready: boolean } => ({ ...registry.snapshot(), uptimeS: Math.round(process.uptime()) })

  /** Errors name internal addresses: only for callers who may read details. */
  const visible = (body: HealthBody, authorization: string | undefined): HealthBody =>
    mayReadDetails(authorization) ? body : { ...body, checks: withoutErrors(body.checks) }

  app.get(prefix, { schema: { response: { 200: HealthSchema, 503: HealthSchema } } }, async (request, reply) => {
    const { ready, ...body } = summary()
    return reply.headers(noStore).code(body.status === 'down' ? 503 : 200).send(visible(body, request.headers.authorization))
  })

  app.get(`${prefix}/ready`, { schema: { response: { 200: HealthSchema, 503: HealthSchema } } }, async (request, reply) => {
    const { ready, ...body } = summary()
    return reply.headers(noStore).code(ready ? 200 : 503).send(visible(body, request.headers.authorization))
  })

  app.get(`${prefix}/redis`, { schema: { response: { 200: RedisHealthResponse, 503: RedisHealthResponse } } }, async (request, reply) => {
    const state = app.redisState
    const code = state.status === 'disconnected' ? 503 : 200
    if (!mayReadDetails(request.headers.authorization)) {
      return reply.headers(noStore).code(code).send({ status: state.status } satisfies RedisStatusOnlyBody)
    }
    const info = app.redisMonitor.serverInfo
    const body: RedisHealthBody = {
      status: state.status,
      mode: state.mode,
      latencyMs: state.latencyMs,
      version: info?.version ?? (state.mode === 'memory' ? 'in-process' : 'unknown'),
      uptimeS: info?.uptimeS ?? 0,
      memoryUsedBytes: info?.memoryUsedBytes ?? 0,
      memoryUsed: info?.memoryUsed ?? '0B',
      connectedClients: info?.connectedClients ?? 0,
      role: info?.role ?? (state.mode === 'memory' ? 'memory' : 'unknown'),
      reconnects: state.reconnects,
      ...errorFields(state.lastError, state.lastErrorAt)
    }
    return reply.headers(noStore).code(code).send(body)
  })

  app.addHook('onReady', async () => { await registry.start() })
  // The drain: readiness fails first while requests are still served, so load balancers move traffic
  // away; every response from then on carries `Connection: close`, so keep-alive connections end
  // between requests (never under one) and none is left for close() to cut while a client writes to it.
  let drained: Promise<void> | undefined
  const closeAfterResponse = (request: IncomingMessage, response: ServerResponse): void => {
    if (request.httpVersionMajor < 2 && !response.headersSent) response.setHeader('connection', 'close')
  }
  const drain = (): Promise<void> => {
    drained ??= (async () => {
      registry.shuttingDown = true
      app.log.info({ drainMs: app.config.SHUTDOWN_DRAIN_DELAY }, 'shutting down: /health/ready answers 503 from now on; requests are served until the drain ends')
      // Before Fastify's own listener, so the header is there whatever the route answers.
      app.server.prependListener('request', closeAfterResponse)
      if (app.config.SHUTDOWN_DRAIN_DELAY > 0) await sleep(app.config.SHUTDOWN_DRAIN_DELAY)
    })()
    return drained
  }
  let closing: Promise<void> | undefined
  app.decorate('closeGracefully', () => {
    closing ??= drain().then(() => app.close())
    return closing
  })
  // app.close() called directly drains too. Fastify answers 503 to every request once close() has
  // begun unless the app was created with `return503OnClosing: false`: closeGracefully() serves
  // normally through the drain either way (README, Shutdown).
  app.addHook('preClose', drain)
  app.addHook('onClose', async () => { registry.stop() })
}

/** lastError only together with the time it happened. */
function errorFields (lastError: string | undefined, lastErrorAt: number | undefined): { lastError?: string, lastErrorAt?: string } {
  if (lastError === undefined || lastErrorAt === undefined) return {}
  return { lastError, lastErrorAt: new Date(lastErrorAt).toISOString() }
}

function withoutErrors (checks: HealthBody['checks']): HealthBody['checks'] {
  const stripped: HealthBody['checks'] = {}
  for (const [name, { lastError, lastErrorAt, ...rest }] of Object.entries(checks)) stripped[name] = rest
  return stripped
}

export default fp(healthRoutes, { name: 'redis-suite-health', dependencies: ['redis-suite-config', 'redis-suite-redis'] })
