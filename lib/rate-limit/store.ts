// The rate-limit store: decides one request against Redis (or the in-process limiter when no Redis is
// configured), applies the Redis-down mode when Redis fails or is known down, counts every decision,
// and logs the mode once at creation and Redis failures once per burst.
import { parseDuration, type Duration } from '../duration.js'
import { buildLimitKeys } from './keys.js'
import { MemoryLimiter } from './memory-limiter.js'
import { RedisLimiter, type RedisClient } from './redis-limiter.js'
import type {
  BanOptions, DecisionSource, LimiterResult, LimitParams, RateLimitAlgorithm, RateLimitDecision,
  RateLimitLogger, RateLimitStats, RedisDownMode, ResolvedBan
} from './types.js'

export interface RateLimitStoreOptions {
  /** The app's ioredis client; without one, the in-process limiter decides (development only). */
  redis?: RedisClient | undefined
  /** When it returns false, Redis is skipped at once (the connection is known down). */
  isRedisReady?: (() => boolean) | undefined
  /** While Redis is down: `fallback` (in-process limiter, default), `open` (allow) or `closed` (refuse, 503). */
  whenRedisDown?: RedisDownMode
  /** Longest a decision waits on Redis. Default 250 ms. */
  timeout?: Duration
  /** Default algorithm; each call may choose. Default `fixed`. */
  algorithm?: RateLimitAlgorithm
  /** Default ban; each call may override it (or turn it off with `false`). */
  ban?: BanOptions | false
  /** Prefix of every key. Default 'rl:'. */
  namespace?: string
  /** Keys kept by the in-process limiter (fallback or standalone). Default 10 000. */
  memoryMaxKeys?: number
  /** How long a `closed` refusal tells the client to wait. Default 1 s. */
  closedRetryAfter?: Duration
  logger?: RateLimitLogger | undefined
  /** Called for every decision (for metrics); errors it throws are ignored. */
  onDecision?: ((decision: RateLimitDecision) => void) | undefined
  /** Clock of the in-process limiter, for tests. */
  now?: () => number
}

export interface ConsumeOptions {
  max: number
  timeWindow: Duration
  /** The route or limit the id is counted under. Default 'global'. */
  scope?: string
  algorithm?: RateLimitAlgorithm
  ban?: BanOptions | false
  continueExceeding?: boolean
  exponentialBackoff?: boolean
}

export function resolveBan (ban: BanOptions | false | undefined): ResolvedBan | undefined {
  if (ban === undefined || ban === false) return undefined
  if (!Number.isInteger(ban.after) || ban.after < 1) {
    throw new TypeError(`rate-limit ban.after must be a whole number of refusals of at least 1, got ${JSON.stringify(ban.after)}`)
  }
  const durationMs = parseDuration(ban.duration, 'rate-limit ban.duration')
  return { after: ban.after, durationMs, withinMs: ban.within === undefined ? durationMs : parseDuration(ban.within, 'rate-limit ban.within') }
}

const MODES: readonly RedisDownMode[] = ['fallback', 'open', 'closed']

export class RateLimitStore {
  readonly mode: RedisDownMode
  readonly backend: 'redis' | 'memory'
  readonly timeoutMs: number
  readonly #redis: RedisLimiter | undefined
  readonly #memory: MemoryLimiter
  readonly #isRedisReady: () => boolean
  readonly #options: RateLimitStoreOptions
  readonly #defaultBan: ResolvedBan | undefined
  readonly #closedRetryAfterMs: number
  readonly #stats: RateLimitStats = { allowed: 0, limited: 0, fallback: 0, open: 0, closed: 0, banned: 0, redisFailures: 0 }
  #failing = false

  constructor (options: RateLimitStoreOptions = {}) {
    this.#options = options
    this.mode = options.whenRedisDown ?? 'fallback'
    if (!MODES.includes(this.mode)) {
      throw new TypeError(`rate-limit whenRedisDown must be one of ${MODES.join(', ')}, got ${JSON.stringify(this.mode)}`)
    }
    this.timeoutMs = parseDuration(options.timeout ?? 250, 'rate-limit timeout')
    this.#closedRetryAfterMs = parseDuration(options.closedRetryAfter ?? 1000, 'rate-limit closedRetryAfter')
    this.#defaultBan = resolveBan(options.ban)
    this.backend = options.redis === undefined ? 'memory' : 'redis'
    this.#redis = options.redis === undefined ? undefined : new RedisLimiter(options.redis, { timeoutMs: this.timeoutMs })
    this.#memory = new MemoryLimiter({ maxKeys: options.memoryMaxKeys, now: options.now })
    this.#isRedisReady = options.isRedisReady ?? (() => true)
    this.#logMode()
  }

  /** Counts one request of `id` and decides it. Never rejects: Redis failures become the Redis-down mode. */
  async consume (id: string, options: ConsumeOptions): Promise<RateLimitDecision> {
    const algorithm = options.algorithm ?? this.#options.algorithm ?? 'fixed'
    const params: LimitParams = {
      max: Math.max(0, Math.trunc(options.max)),
      timeWindow: Math.max(1, parseDuration(options.timeWindow, 'rate-limit timeWindow')),
      algorithm,
      ban: options.ban === undefined ? this.#defaultBan : resolveBan(options.ban),
      continueExceeding: options.continueExceeding,
      exponentialBackoff: options.exponentialBackoff
    }
    const keys = buildLimitKeys({ namespace: this.#options.namespace, scope: options.scope ?? 'global', id, algorithm })
    const decide = (source: DecisionSource, result: LimiterResult): RateLimitDecision =>
      this.#record({ ...result, source, key: id, limit: params.max, timeWindow: params.timeWindow, algorithm, unavailable: source === 'closed' })

    if (this.#redis === undefined) return decide('memory', this.#memory.consumeSync(keys, params))
    if (this.#isRedisReady()) {
      try {
        const result = await this.#redis.consume(keys, params)
        this.#recovered()
        return decide('redis', result)
      } catch (err) {
        this.#stats.redisFailures++
        this.#failed(err)
      }
    } else {
      this.#failed(new Error('the Redis connection is down'))
    }
    switch (this.mode) {
      case 'fallback':
        return decide('fallback', this.#memory.consumeSync(keys, params))
      case 'open':
        return decide('open', { allowed: true, current: 0, remaining: params.max, resetMs: 0, retryAfterMs: 0, banned: false })
      case 'closed':
        return decide('closed', {
          allowed: false, current: params.max + 1, remaining: 0, resetMs: this.#closedRetryAfterMs, retryAfterMs: this.#closedRetryAfterMs, banned: false
        })
    }
  }

  /** A snapshot of the decision counters since creation. */
  stats (): RateLimitStats {
    return { ...this.#stats }
  }

  #record (decision: RateLimitDecision): RateLimitDecision {
    const stats = this.#stats
    if (decision.source === 'redis' || decision.source === 'memory') {
      if (decision.allowed) stats.allowed++
      else stats.limited++
    } else {
      stats[decision.source]++
    }
    if (decision.banned) stats.banned++
    try {
      this.#options.onDecision?.(decision)
    } catch {
      // A metrics callback must never fail a request.
    }
    return decision
  }

  #logMode (): void {
    const logger = this.#options.logger
    if (logger === undefined) return
    const rateLimit = { backend: this.backend, whenRedisDown: this.mode, timeoutMs: this.timeoutMs }
    if (this.backend === 'memory') {
      // info, not warn: the Redis plugin's one warning line already says the app runs on in-process stores.
      logger.info({ rateLimit }, 'rate limit: no Redis configured, limits are counted in this process only (not shared between instances)')
    } else {
      logger.info({ rateLimit }, `rate limit: counted in Redis; while Redis is down, ${DOWN_MODE_TEXT[this.mode]}`)
    }
  }

  #failed (err: unknown): void {
    if (this.#failing) return
    this.#failing = true
    const message = err instanceof Error ? err.message : String(err)
    this.#options.logger?.warn({ rateLimit: { whenRedisDown: this.mode }, err: { message } },
      `rate limit: Redis unavailable (${message}); ${DOWN_MODE_TEXT[this.mode]}`)
  }

  #recovered (): void {
    if (!this.#failing) return
    this.#failing = false
    this.#options.logger?.info({ rateLimit: { whenRedisDown: this.mode } }, 'rate limit: Redis answers again; limits are counted in Redis')
  }
}

const DOWN_MODE_TEXT: Record<RedisDownMode, string> = {
  fallback: 'requests are limited per process by the in-process limiter',
  open: 'requests are allowed without a limit (fail open)',
  closed: 'requests are refused with 503 (fail closed)'
}
