// The Redis limiter: one EVALSHA per decision (EVAL once after a NOSCRIPT, which also reloads the
// script). No timer of its own: the client's commandTimeout bounds each command (the store hands it a
// client whose commandTimeout is the rate-limit budget, see store.ts). It throws on any failure; the
// store turns failures into the configured Redis-down mode.
import type { Cluster, Redis } from 'ioredis'
import type { LoadedScript } from './scripts.js'
import type { LimiterResult } from './types.js'

export type RedisClient = Redis | Cluster

/** Redis failed, or did not answer within the client's commandTimeout. */
export class RateLimitRedisError extends Error {
  override name = 'RateLimitRedisError'
  readonly code: 'FRS_RATE_LIMIT_REDIS_TIMEOUT' | 'FRS_RATE_LIMIT_REDIS_ERROR'

  constructor (code: RateLimitRedisError['code'], message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
  }
}

function wrap (err: unknown): RateLimitRedisError {
  if (err instanceof RateLimitRedisError) return err
  const message = err instanceof Error ? err.message : String(err)
  return /timed? ?out/i.test(message)
    ? new RateLimitRedisError('FRS_RATE_LIMIT_REDIS_TIMEOUT', `Redis did not answer in time: ${message}`, { cause: err })
    : new RateLimitRedisError('FRS_RATE_LIMIT_REDIS_ERROR', `Redis rate-limit command failed: ${message}`, { cause: err })
}

/**
 * Runs `script` on the three keys of one limit with its seven arguments (see scripts.ts).
 * `client` is asked per call: the store switches between its tight-budget connection and the main one.
 */
export class RedisLimiter {
  readonly #client: () => RedisClient

  constructor (client: () => RedisClient) {
    this.#client = client
  }

  run (script: LoadedScript, counter: string, strikes: string, ban: string, args: readonly string[]): Promise<LimiterResult> {
    const client = this.#client()
    return client.evalsha(script.sha, 3, counter, strikes, ban, ...args).then(toResult, (err: unknown) => {
      // After SCRIPT FLUSH, a failover or a restart: EVAL runs the script and caches it again.
      if (!(err instanceof Error) || !err.message.includes('NOSCRIPT')) throw wrap(err)
      return client.eval(script.lua, 3, counter, strikes, ban, ...args).then(toResult, (again: unknown) => { throw wrap(again) })
    })
  }

  /** A script on one key with its own arguments; the raw reply. */
  call (script: LoadedScript, key: string, args: readonly string[]): Promise<unknown> {
    const client = this.#client()
    return client.evalsha(script.sha, 1, key, ...args).catch((err: unknown) => {
      if (!(err instanceof Error) || !err.message.includes('NOSCRIPT')) throw wrap(err)
      return client.eval(script.lua, 1, key, ...args).catch((again: unknown) => { throw wrap(again) })
    })
  }
}

function toResult (reply: unknown): LimiterResult {
  if (!Array.isArray(reply) || reply.length < 6) {
    throw new RateLimitRedisError('FRS_RATE_LIMIT_REDIS_ERROR', 'Unexpected reply from the rate-limit script')
  }
  return {
    allowed: reply[0] === 1,
    current: Number(reply[1]),
    remaining: Number(reply[2]),
    resetMs: Number(reply[3]),
    retryAfterMs: Number(reply[4]),
    banned: reply[5] === 1
  }
}
