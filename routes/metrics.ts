// GET /metrics: Prometheus text from the app's registry, optionally behind a bearer token, either on
// the app's own port or on a small separate server (METRICS_PORT) that only serves this.
import http from 'node:http'
import type { FastifyInstance } from 'fastify'
import { bearerTokenMatches, type SuiteMetrics } from '../lib/metrics/index.js'

export interface MetricsEndpointOptions {
  metrics: SuiteMetrics
  /** When set, requests must send `Authorization: Bearer <token>`. */
  token?: string | undefined
  /** The route's path. Default '/metrics'. */
  path?: string | undefined
}

interface Answer { status: number, headers: Record<string, string>, body: string }

const UNAUTHORIZED = JSON.stringify({ statusCode: 401, error: 'Unauthorized', message: 'Send Authorization: Bearer <METRICS_TOKEN> to read /metrics' })

async function answer ({ metrics, token }: MetricsEndpointOptions, authorization: string | undefined): Promise<Answer> {
  if (token !== undefined && !bearerTokenMatches(authorization, token)) {
    return { status: 401, headers: { 'content-type': 'application/json; charset=utf-8', 'www-authenticate': 'Bearer realm="metrics"' }, body: UNAUTHORIZED }
  }
  return { status: 200, headers: { 'content-type': metrics.contentType, 'cache-control': 'no-store' }, body: await metrics.metrics() }
}

/** The route on the app itself. Scrapes log at warn only, so a 15 s scrape does not flood the logs. */
export function metricsRoute (app: FastifyInstance, options: MetricsEndpointOptions): void {
  app.get(options.path ?? '/metrics', { logLevel: 'warn' }, async (request, reply) => {
    const { status, headers, body } = await answer(options, request.headers.authorization)
    return reply.code(status).headers(headers).send(body)
  })
}

/** A separate listener that serves only GET/HEAD /metrics; resolves once it listens. */
export async function listenMetricsServer (options: MetricsEndpointOptions & { host: string, port: number }): Promise<http.Server> {
  const server = http.createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0]
    const served = options.path ?? '/metrics'
    if (path !== served) return end(response, { status: 404, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: `Not found: metrics are served at ${served}\n` }, request.method)
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return end(response, { status: 405, headers: { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }, body: 'Method not allowed\n' }, request.method)
    }
    answer(options, request.headers.authorization).then(
      (result) => end(response, result, request.method),
      () => end(response, { status: 500, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'metrics could not be collected\n' }, request.method)
    )
  })
  // Bounded like the app: a stuck scraper must not hold a socket.
  server.requestTimeout = 10_000
  server.headersTimeout = 10_000
  server.keepAliveTimeout = 5_000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, options.host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  return server
}

export function closeMetricsServer (server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  })
}

function end (response: http.ServerResponse, { status, headers, body }: Answer, method: string | undefined): void {
  response.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(body) })
  response.end(method === 'HEAD' ? undefined : body)
}
