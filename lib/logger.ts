// pino options shared by the demo server and tests: what must never reach a log line is censored here.
import type { FastifyServerOptions } from 'fastify'

/** Paths pino censors: credentials, cookies and session ids, wherever a request or error carries them. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  '*.password',
  '*.REDIS_PASSWORD',
  '*.SESSION_SECRET',
  '*.sessionId',
  '*.sessionid'
]

export function loggerOptions (level: string): NonNullable<FastifyServerOptions['logger']> {
  return { level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }
}
