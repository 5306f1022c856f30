// The demo app as server.ts builds it, plus a few routes that exercise Redis in known ways, listening
// on a free loopback port so the load generator drives it over real sockets. Every log line is kept
// for the secret sweep.
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { buildServer, type BuildServerOptions } from '../../server.js'
import type { RedisClient } from '../../plugins/redis.js'

export interface FaultApp {
  app: FastifyInstance
  baseUrl: string
  rawLogs: () => string
  logs: () => Array<Record<string, unknown> & { msg?: string, level: number }>
}

interface Teardown { teardown: (fn: () => unknown) => void }

/** Every log line of every app built in this process: the security sweep reads it at the end. */
export const allLogLines: string[] = []

/**
 * Routes added to the demo app:
 * - GET /cached/:id — cache-only: getOrSet with a trivial loader (Redis errors must become misses);
 * - GET /plain — no Redis at all;
 * - GET /redis/:key — a plain GET on app.redis; a Redis error answers 503 (what a careful app does);
 * - POST /write/:key — SET key value; 200 only once Redis acknowledged it, 503 otherwise.
 */
export interface FaultAppOptions extends Omit<BuildServerOptions, 'env' | 'logStream'> {
  /** More routes, added before listen. */
  routes?: (app: FastifyInstance) => void
}

export async function startFaultApp (t: Teardown, env: Record<string, string>, { routes, ...options }: FaultAppOptions = {}): Promise<FaultApp> {
  const lines: string[] = []
  const logStream = new Writable({
    write (chunk, _encoding, callback) {
      const parts = String(chunk).split('\n').filter((line) => line !== '')
      lines.push(...parts)
      allLogLines.push(...parts)
      callback()
    }
  })
  const app = await buildServer({
    env: { NODE_ENV: 'test', LOG_LEVEL: 'info', RATE_LIMIT_GLOBAL: 'false', RATE_LIMIT_AUTH_MAX: '100000', ...env },
    processEnv: false,
    logStream,
    ...options
  })
  t.teardown(() => app.close())
  app.get<{ Params: { id: string } }>('/cached/:id', async (request) => {
    const id = request.params.id
    return app.cache.getOrSet(`item:${id}`, () => ({ id, loadedAt: Date.now() }), { ttl: '2s' })
  })
  app.get('/plain', async () => ({ ok: true }))
  app.get<{ Params: { key: string } }>('/redis/:key', async (request, reply) => {
    try {
      return { value: await app.redis.get(`fault:${request.params.key}`) }
    } catch {
      return reply.code(503).header('retry-after', '1').send({ error: 'redis unavailable' })
    }
  })
  app.post<{ Params: { key: string }, Body: string }>('/write/:key', async (request, reply) => {
    try {
      await app.redis.set(`fault:${request.params.key}`, String(request.body ?? '1'))
      return { ok: true }
    } catch {
      return reply.code(503).header('retry-after', '1').send({ error: 'redis unavailable' })
    }
  })
  routes?.(app)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  const port = address !== null && typeof address === 'object' ? address.port : 0
  return {
    app,
    baseUrl: `http://127.0.0.1:${port}`,
    rawLogs: () => lines.join('\n'),
    logs: () => lines.map((line) => JSON.parse(line))
  }
}

interface QueueHolder { offlineQueue?: { length: number }, commandQueue?: { length: number } }

/** Commands ioredis holds for this client: not yet sent (offline queue) and sent awaiting a reply. */
export function queuedCommands (client: RedisClient | undefined): { offline: number, inFlight: number } {
  const holder = client as unknown as QueueHolder | undefined
  return { offline: holder?.offlineQueue?.length ?? 0, inFlight: holder?.commandQueue?.length ?? 0 }
}

/** Samples `fn` every `everyMs` until stopped; returns the samples. */
export function sampler<T> (fn: () => T, everyMs: number): { stop: () => T[] } {
  const samples: T[] = [fn()]
  const timer = setInterval(() => samples.push(fn()), everyMs)
  return {
    stop: () => {
      clearInterval(timer)
      samples.push(fn())
      return samples
    }
  }
}

/** The `name=value` pair of a Set-Cookie header, for sending it back. */
export function cookiePair (setCookie: string | string[] | undefined, name = 'sid'): string | undefined {
  const all = Array.isArray(setCookie) ? setCookie : setCookie === undefined ? [] : [setCookie]
  return all.map((c) => c.split(';')[0] ?? '').find((pair) => pair.startsWith(`${name}=`))
}

/** Text a driver or runtime would put in an error: must never reach a client. */
export const DRIVER_TEXT = /ioredis|ECONNREFUSED|ECONNRESET|ETIMEDOUT|Connection is closed|Stream isn't writeable|enableOfflineQueue|Command timed out|MaxRetriesPerRequest|at .*\.(js|ts):\d+/

/** Polls until `predicate` holds; resolves with the ms it took (epoch of success − `since`). */
export async function waitUntil (predicate: () => boolean, timeoutMs: number, what: string, everyMs = 5): Promise<number> {
  const started = Date.now()
  while (!predicate()) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
  return Date.now()
}
