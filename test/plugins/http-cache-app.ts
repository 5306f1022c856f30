// The app the HTTP cache's security tests build: the demo server with the global rate limit off,
// test routes added, and its log lines kept for assertions.
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { buildServer } from '../../server.js'

export type Runs = Record<string, number>
interface Scope { teardown: (fn: () => unknown) => void }
export interface Built { app: FastifyInstance, logs: () => Array<{ msg?: string, level: number }> }

export async function build (t: Scope, env: Record<string, string>, routes: (app: FastifyInstance) => void,
  pluginOptions?: Record<string, unknown>): Promise<Built> {
  const lines: string[] = []
  const logStream = new Writable({
    write (chunk, _encoding, callback) { lines.push(...String(chunk).split('\n').filter((l) => l !== '')); callback() }
  })
  const app = await buildServer({
    env: { NODE_ENV: 'test', LOG_LEVEL: 'info', RATE_LIMIT_GLOBAL: 'false', ...env },
    logStream,
    ...(pluginOptions === undefined ? {} : { httpCache: pluginOptions })
  } as Parameters<typeof buildServer>[0])
  routes(app)
  t.teardown(() => app.close())
  await app.ready()
  return { app, logs: () => lines.map((l) => JSON.parse(l) as { msg?: string, level: number }) }
}

/** Counts a handler run under `name`; returns the new count. */
export const count = (runs: Runs, name: string): number => (runs[name] = (runs[name] ?? 0) + 1)
