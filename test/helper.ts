// Builds the app the way server.ts does, captures every log line, and closes it in teardown.
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { buildServer } from '../server.js'

export interface TestApp {
  app: FastifyInstance
  /** Every log line written so far, parsed. */
  logs: () => Array<Record<string, unknown> & { msg?: string, level: number }>
  /** The raw text of every log line. */
  rawLogs: () => string
}

interface Teardown { teardown: (fn: () => unknown) => void }

export async function buildTestApp (t: Teardown, env: Record<string, string>, level = 'info'): Promise<TestApp> {
  const lines: string[] = []
  const logStream = new Writable({
    write (chunk, _encoding, callback) {
      lines.push(...String(chunk).split('\n').filter((line) => line !== ''))
      callback()
    }
  })
  // Tests sign in far more than 5 times a minute from 127.0.0.1; the auth limit has its own test.
  const app = await buildServer({ env: { NODE_ENV: 'test', LOG_LEVEL: level, RATE_LIMIT_AUTH_MAX: '100000', ...env }, processEnv: false, logStream })
  t.teardown(() => app.close())
  await app.ready()
  return {
    app,
    logs: () => lines.map((line) => JSON.parse(line)),
    rawLogs: () => lines.join('\n')
  }
}

/** Milliseconds until `predicate` holds, polling every 20 ms; rejects after `timeoutMs`. */
export async function timeUntil (predicate: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<number> {
  const started = Date.now()
  while (Date.now() - started < timeoutMs) {
    if (await predicate()) return Date.now() - started
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error(`${what}: not within ${timeoutMs}ms`)
}
