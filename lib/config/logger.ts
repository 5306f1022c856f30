// pino options shared by the demo server and tests: what must never reach a log line is censored here.
import type { Writable } from 'node:stream'

/**
 * Paths pino censors: credentials, cookies and session ids, wherever a request or error carries them.
 * Explicit paths only: app.config redacts itself through toJSON, and a wildcard path (or one naming a
 * config key) makes pino copy objects field by field, bypassing toJSON — the URL's password leaked.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]'
]

/** Fastify's `logger` option (pino options): the level, the censored paths, and where lines go. */
export interface SuiteLoggerOptions {
  level: string
  redact: { paths: string[], censor: string }
  stream?: Writable
}

export function loggerOptions (level: string, stream?: Writable): SuiteLoggerOptions {
  return { level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, ...(stream === undefined ? {} : { stream }) }
}
