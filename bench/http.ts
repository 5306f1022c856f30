// HTTP contenders: a Fastify app listening on 127.0.0.1 and autocannon against it for a bounded time,
// from a process of its own (bench/load-generator.ts), so the server's process does the server's work
// only. Non-2xx answers and socket errors are counted, never hidden.
import { fork, type ChildProcess } from 'node:child_process'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import type { Contender, Sample } from './harness.js'
import type { LoadJob, LoadReply, LoadResult } from './load-generator.js'

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

let generator: ChildProcess | undefined
let nextJob = 0

/** Runs one autocannon job in the load generator's process (forked on first use, kept for the run). */
function runJob (job: Omit<LoadJob, 'id'>): Promise<LoadResult> {
  generator ??= fork(fileURLToPath(new URL('./load-generator.ts', import.meta.url)), [], { execArgv: ['--import', 'tsx'] })
  const child = generator
  const id = ++nextJob
  return new Promise((resolve, reject) => {
    const onMessage = (message: LoadReply): void => {
      if (message.id !== id) return
      child.off('message', onMessage)
      child.off('exit', onExit)
      if ('error' in message) reject(new Error(`load generator: ${message.error}`))
      else resolve(message.result)
    }
    const onExit = (code: number | null): void => {
      child.off('message', onMessage)
      generator = undefined
      reject(new Error(`load generator exited (code ${String(code)})`))
    }
    child.on('message', onMessage)
    child.once('exit', onExit)
    child.send({ ...job, id } satisfies LoadJob)
  })
}

export async function load (target: HttpTarget, ms: number, connections: number): Promise<Sample & { statuses: Record<string, number> }> {
  const result = await runJob({
    url: target.url,
    connections,
    duration: Math.max(0.2, ms / 1000),
    headers: target.headers ?? {}
  })
  const statuses: Record<string, number> = {
    '2xx': result['2xx'], '3xx': result['3xx'], '4xx': result['4xx'], '5xx': result['5xx']
  }
  const accepted = (target.accept ?? []).some((code) => code >= 400 && code < 500) ? result['4xx'] : 0
  const acceptedServer = (target.accept ?? []).some((code) => code >= 500) ? result['5xx'] : 0
  return {
    // total counts every answered request; durations are seconds.
    rate: result.total / Math.max(0.001, result.duration),
    p99: result.p99,
    errors: result.errors + result.timeouts + result.non2xx - accepted - acceptedServer,
    statuses
  }
}

export function httpContender (name: string, target: HttpTarget, connections: number): Contender {
  return { name, measure: (ms) => load(target, ms, connections) }
}
