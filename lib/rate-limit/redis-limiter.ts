// The Redis limiter: one EVALSHA per decision (EVAL once after a NOSCRIPT, which also reloads the
// script), raced against a time budget so a frozen server cannot hold a request. It throws on any
// failure; the store (store.ts) turns failures into the configured Redis-down mode.
import type { Cluster, Redis } from 'ioredis'
import { FIXED_WINDOW_SCRIPT, SLIDING_WINDOW_SCRIPT, type LoadedScript } from './scripts.js'
import type { Limiter, LimiterResult, LimitKeys, LimitParams } from './types.js'

export type RedisClient = Redis | Cluster

export interface RedisLimiterOptions {
  /** Milliseconds a decision may wait on Redis. Default 250. */
  timeoutMs?: number
}

/** Redis failed, or did not answer within the time budget. */
export class RateLimitRedisError extends Error {
  override name = 'RateLimitRedisError'
  readonly code: 'FRS_RATE_LIMIT_REDIS_TIMEOUT' | 'FRS_RATE_LIMIT_REDIS_ERROR'

  constructor (code: RateLimitRedisError['code'], message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
  }
}

export class RedisLimiter implements Limiter {
  readonly #client: RedisClient
  readonly #timeoutMs: number

  constructor (client: RedisClient, options: RedisLimiterOptions = {}) {
    this.#client = client
    this.#timeoutMs = options.timeoutMs ?? 250
  }

  async consume (keys: LimitKeys, params: LimitParams): Promise<LimiterResult> {
    const script = params.algorithm === 'sliding' ? SLIDING_WINDOW_SCRIPT : FIXED_WINDOW_SCRIPT
    const ban = params.ban
    const args = [
      String(Math.max(1, Math.trunc(params.timeWindow))),
      String(Math.max(0, Math.trunc(params.max))),
      String(ban?.after ?? 0),
      String(ban?.durationMs ?? 0),
      String(ban?.withinMs ?? 0),
      params.continueExceeding === true ? '1' : '0',
      params.exponentialBackoff === true ? '1' : '0'
    ]
    const reply = await this.#withinBudget(this.#run(script, [keys.counter, keys.strikes, keys.ban], args))
    return toResult(reply)
  }

  async #run (script: LoadedScript, keys: string[], args: string[]): Promise<unknown> {
    try {
      return await this.#client.evalsha(script.sha, keys.length, ...keys, ...args)
    } catch (err) {
      // After SCRIPT FLUSH, a failover or a restart: EVAL runs the script and caches it again.
      if (!(err instanceof Error) || !err.message.includes('NOSCRIPT')) throw err
      return await this.#client.eval(script.lua, keys.length, ...keys, ...args)
    }
  }

  // The command is left to finish (or to fail on the client's own commandTimeout); its late reply is dropped.
  #withinBudget<T> (command: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new RateLimitRedisError('FRS_RATE_LIMIT_REDIS_TIMEOUT', `Redis did not answer within ${this.#timeoutMs} ms`))
      }, this.#timeoutMs)
      command.then((value) => {
        clearTimeout(timer)
        resolve(value)
      }, (err: unknown) => {
        clearTimeout(timer)
        reject(new RateLimitRedisError('FRS_RATE_LIMIT_REDIS_ERROR', `Redis rate-limit command failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err }))
      })
    })
  }
}

function toResult (reply: unknown): LimiterResult {
  if (!Array.isArray(reply) || reply.length < 6) {
    throw new RateLimitRedisError('FRS_RATE_LIMIT_REDIS_ERROR', 'Unexpected reply from the rate-limit script')
  }
  const [allowed, current, remaining, resetMs, retryAfterMs, banned] = reply.map(Number)
  return {
    allowed: allowed === 1,
    current: current ?? 0,
    remaining: remaining ?? 0,
    resetMs: resetMs ?? 0,
    retryAfterMs: retryAfterMs ?? 0,
    banned: banned === 1
  }
}
