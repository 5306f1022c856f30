// The Redis limiter: one EVALSHA per decision (EVAL once after a NOSCRIPT, which also reloads the
// script). No timer of its own: the client's commandTimeout bounds each command (the store hands it a
// client whose commandTimeout is the rate-limit budget, see store.ts). It throws on any failure; the
// store turns failures into the configured Redis-down mode.
//
// Writes are batched per event-loop turn on the connection the store owns: the first command of a
// turn corks its socket and one setImmediate uncorks it, so the decisions of every request parsed in
// that turn leave in one write (one syscall) instead of one each, as ioredis' auto-pipelining does,
// but without its wait for the previous batch's answer (which, on a frozen server, would make a
// decision wait two budgets). Each command is still its own EVALSHA with its own commandTimeout.
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

export function wrapRedisError (err: unknown): RateLimitRedisError {
  if (err instanceof RateLimitRedisError) return err
  const message = err instanceof Error ? err.message : String(err)
  return /timed? ?out/i.test(message)
    ? new RateLimitRedisError('FRS_RATE_LIMIT_REDIS_TIMEOUT', `Redis did not answer in time: ${message}`, { cause: err })
    : new RateLimitRedisError('FRS_RATE_LIMIT_REDIS_ERROR', `Redis rate-limit command failed: ${message}`, { cause: err })
}

export const isNoScript = (err: unknown): boolean => err instanceof Error && err.message.includes('NOSCRIPT')

type Corkable = { cork: () => void, uncork: () => void }

/**
 * Runs `script` on the three keys of one limit with its seven arguments (see scripts.ts).
 * `client` is asked per call: the store switches between its tight-budget connection and the main one.
 * `owned` is the connection the store opened for itself: only its writes are batched per turn (the
 * app's main connection is shared with other features, whose timing is theirs).
 */
export class RedisLimiter {
  readonly #client: () => RedisClient
  readonly #owned: RedisClient | undefined
  #corked: Corkable | undefined
  readonly #uncork = (): void => {
    const stream = this.#corked
    this.#corked = undefined
    stream?.uncork()
  }

  constructor (client: () => RedisClient, owned?: RedisClient) {
    this.#client = client
    this.#owned = owned
  }

  /** The client for the next command; corks the owned connection's socket until the end of this turn. */
  #next (): RedisClient {
    const client = this.#client()
    if (client === this.#owned && this.#corked === undefined && client.status === 'ready') {
      const stream = (client as Redis).stream as Corkable | undefined
      if (stream !== undefined && typeof stream.cork === 'function') {
        stream.cork()
        this.#corked = stream
        setImmediate(this.#uncork)
      }
    }
    return client
  }

  run (script: LoadedScript, counter: string, strikes: string, ban: string, args: readonly string[]): Promise<LimiterResult> {
    const client = this.#next()
    return client.evalsha(script.sha, 3, counter, strikes, ban, ...args).then(toResult, (err: unknown) => {
      // After SCRIPT FLUSH, a failover or a restart: EVAL runs the script and caches it again.
      if (!isNoScript(err)) throw wrapRedisError(err)
      return client.eval(script.lua, 3, counter, strikes, ban, ...args).then(toResult, (again: unknown) => { throw wrapRedisError(again) })
    })
  }

  /**
   * The lean path: EVALSHA of a script on one key with one argument; the raw reply, or the driver's
   * error (the store handles NOSCRIPT with `evalOne` in its own rejection handler: no extra promise).
   */
  one (script: LoadedScript, key: string, arg: string): Promise<unknown> {
    return this.#next().evalsha(script.sha, 1, key, arg)
  }

  /** `one` by EVAL, after a NOSCRIPT: runs the script and caches it again. */
  evalOne (script: LoadedScript, key: string, arg: string): Promise<unknown> {
    return this.#next().eval(script.lua, 1, key, arg)
  }

  /** A script on one key with its own arguments; the raw reply. */
  call (script: LoadedScript, key: string, args: readonly string[]): Promise<unknown> {
    const client = this.#next()
    return client.evalsha(script.sha, 1, key, ...args).catch((err: unknown) => {
      if (!isNoScript(err)) throw wrapRedisError(err)
      return client.eval(script.lua, 1, key, ...args).catch((again: unknown) => { throw wrapRedisError(again) })
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
