// HTTP contenders: a Fastify app listening on 127.0.0.1 and autocannon (in-process) against it for a
// bounded time. Non-2xx answers and socket errors are counted, never hidden.
import type { AddressInfo } from 'node:net'
import autocannon from 'autocannon'
import type { FastifyInstance } from 'fastify'
import type { Contender, Sample } from './harness.js'

export async function listen (app: FastifyInstance): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address() as AddressInfo
  return `http://127.0.0.1:${address.port}`
}

export interface HttpTarget {
  url: string
  headers?: Record<string, string>
  /** Status codes that count as success besides 2xx (e.g. 429 for a limited route, 503 for health while down). */
  accept?: readonly number[]
}

export async function load (target: HttpTarget, ms: number, connections: number): Promise<Sample & { statuses: Record<string, number> }> {
  const result = await autocannon({
    url: target.url,
    connections,
    duration: Math.max(0.2, ms / 1000),
    headers: target.headers ?? {},
    timeout: 5
  })
  const statuses: Record<string, number> = {
    '2xx': result['2xx'], '3xx': result['3xx'], '4xx': result['4xx'], '5xx': result['5xx']
  }
  const accepted = (target.accept ?? []).some((code) => code >= 400 && code < 500) ? result['4xx'] : 0
  const acceptedServer = (target.accept ?? []).some((code) => code >= 500) ? result['5xx'] : 0
  return {
    // requests.total includes every answered request; durations are seconds.
    rate: result.requests.total / Math.max(0.001, result.duration),
    p99: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx - accepted - acceptedServer,
    statuses
  }
}

export function httpContender (name: string, target: HttpTarget, connections: number): Contender {
  return { name, measure: (ms) => load(target, ms, connections) }
}
