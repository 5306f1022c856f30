// HTTP contenders: a Fastify app listening on 127.0.0.1 and autocannon against it for a bounded time,
// from a process of its own (bench/load-generator.ts), so the server's process does the server's work
// only. Non-2xx answers and socket errors are counted, never hidden.
import { fork, type ChildProcess } from 'node:child_process'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import type { Contender, Sample } from './harness.js'
import type { LoadJob, LoadReply, LoadResult, Vary } from './load-generator.js'

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
  /** Requests that differ: see LoadJob.vary. */
  vary?: Vary
}

let generator: ChildProcess | undefined
let nextJob = 0
let pending = 0

/**
 * The load generator's process, forked on first use and kept for the run. Its IPC channel is
 * unref'd while no job runs, so a process that used it (a tap file running cases) still ends on its
 * own; the child ends when the channel closes.
 */
function loadGenerator (): ChildProcess {
  if (generator !== undefined) return generator
  const child = fork(fileURLToPath(new URL('./load-generator.ts', import.meta.url)), [], { execArgv: ['--import', 'tsx'] })
  child.on('exit', () => { if (generator === child) generator = undefined })
  child.on('error', () => { if (generator === child) generator = undefined }) // a job's own listeners report it
  child.unref()
  child.channel?.unref()
  generator = child
  return child
}

/** Runs one autocannon job in the load generator's process. */
function runJob (job: Omit<LoadJob, 'id'>): Promise<LoadResult> {
  const child = loadGenerator()
  const id = ++nextJob
  if (pending++ === 0) child.channel?.ref()
  return new Promise<LoadResult>((resolve, reject) => {
    let settled = false
    /** True the first time: a failed send may be reported by its callback and by an 'error' event. */
    const settle = (): boolean => {
      if (settled) return false
      settled = true
      child.off('message', onMessage)
      child.off('exit', onExit)
      child.off('error', onError)
      if (--pending === 0) child.channel?.unref()
      return true
    }
    const onMessage = (message: LoadReply): void => {
      if (message.id !== id || !settle()) return
      if ('error' in message) reject(new Error(`load generator: ${message.error}`))
      else resolve(message.result)
    }
    const onExit = (code: number | null): void => {
      if (settle()) reject(new Error(`load generator exited (code ${String(code)})`))
    }
    const onError = (err: Error): void => {
      if (settle()) reject(new Error(`load generator: ${err.message}`))
    }
    child.on('message', onMessage)
    child.once('exit', onExit)
    child.once('error', onError)
    child.send({ ...job, id } satisfies LoadJob, (err) => { if (err !== null) onError(err) })
  })
}

export async function load (target: HttpTarget, ms: number, connections: number): Promise<Sample & { requests: number, statuses: Record<string, number> }> {
  const result = await runJob({
    url: target.url,
    connections,
    duration: Math.max(0.2, ms / 1000),
    headers: target.headers ?? {},
    ...(target.vary === undefined ? {} : { vary: target.vary })
  })
  const statuses: Record<string, number> = {
    '2xx': result['2xx'], '3xx': result['3xx'], '4xx': result['4xx'], '5xx': result['5xx']
  }
  const accepted = (target.accept ?? []).some((code) => code >= 400 && code < 500) ? result['4xx'] : 0
  const acceptedServer = (target.accept ?? []).some((code) => code >= 500) ? result['5xx'] : 0
  return {
    // total counts every answered request; durations are seconds.
    rate: result.total / Math.max(0.001, result.duration),
    requests: result.total,
    p99: result.p99,
    errors: result.errors + result.timeouts + result.non2xx - accepted - acceptedServer,
    statuses
  }
}

export function httpContender (name: string, target: HttpTarget, connections: number): Contender {
  return { name, measure: (ms) => load(target, ms, connections) }
}
