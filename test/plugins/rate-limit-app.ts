// Builds the demo app (as server.ts does, so TRUST_PROXY reaches Fastify) with routes for the
// rate-limit tests, captures its log lines and closes it in teardown.
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { buildServer } from '../../server.js'
import { authRateLimit, type RateLimitPluginOptions } from '../../plugins/rate-limit.js'

export interface LimitedApp {
  app: FastifyInstance
  rawLogs: () => string
}

interface Teardown { teardown: (fn: () => unknown) => void }

export async function buildLimitedApp (t: Teardown, env: Record<string, string>, rateLimit?: RateLimitPluginOptions): Promise<LimitedApp> {
  const lines: string[] = []
  const logStream = new Writable({
    write (chunk, _encoding, callback) {
      lines.push(...String(chunk).split('\n').filter((line) => line !== ''))
      callback()
    }
  })
  const app = await buildServer({ env: { NODE_ENV: 'test', LOG_LEVEL: 'info', ...env }, processEnv: false, logStream, ...(rateLimit === undefined ? {} : { rateLimit }) })
  t.teardown(() => app.close())
  const ok = async (): Promise<{ ok: true }> => ({ ok: true })
  app.get('/limited', ok) // the global limit
  app.get('/short', { config: { rateLimit: { max: 2, timeWindow: 500 } } }, ok)
  app.get('/sliding', { config: { rateLimit: { max: 2, timeWindow: '4s', limiter: { algorithm: 'sliding' } } } }, ok)
  // A window no test outlasts: a check of how many requests pass that must not depend on how long each one took.
  app.get('/sliding-minute', { config: { rateLimit: { max: 2, timeWindow: '1 minute', limiter: { algorithm: 'sliding' } } } }, ok)
  app.get('/wide', { config: { rateLimit: { max: 10, timeWindow: '10s', limiter: { algorithm: 'sliding', policy: 'wide' } } } }, ok)
  app.get('/unlimited', { config: { rateLimit: false } }, ok)
  app.post('/login', { config: { rateLimit: authRateLimit } }, ok)
  app.post('/password-reset', { config: { rateLimit: authRateLimit } }, ok)
  await app.ready()
  return { app, rawLogs: () => lines.join('\n') }
}

/** Status codes of `count` GETs of `url` from one client address. */
export async function statuses (app: FastifyInstance, url: string, count: number, remoteAddress = '203.0.113.10'): Promise<number[]> {
  const codes: number[] = []
  for (let i = 0; i < count; i++) codes.push((await app.inject({ url, remoteAddress })).statusCode)
  return codes
}
