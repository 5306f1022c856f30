// The shapes shared by the rate-limit limiters (Redis, in-process) and the store that picks between them.
import type { Duration } from '../config/index.js'

/**
 * `fixed`: @fastify/rate-limit's own semantics (a counter per window, INCR + PEXPIRE on the first hit).
 * `sliding`: GCRA, a smooth window without the fixed window's double burst at the boundary (see gcra.ts).
 */
export type RateLimitAlgorithm = 'fixed' | 'sliding'

/** What to do while Redis cannot answer within the time budget. */
export type RedisDownMode = 'fallback' | 'open' | 'closed'

/** A temporary ban: after `after` refused requests within `within`, refuse everything for `duration`. */
export interface BanOptions {
  after: number
  duration: Duration
  /** How long refused requests are remembered when counting towards a ban. Default: `duration`. */
  within?: Duration
}

/** Per-call parameters; @fastify/rate-limit passes `max` and `timeWindow` on every call. */
export interface LimitParams {
  max: number
  /** Milliseconds. */
  timeWindow: number
  algorithm: RateLimitAlgorithm
  ban?: ResolvedBan | undefined
  /** Fixed window only, as in @fastify/rate-limit: a refused request restarts the window. */
  continueExceeding?: boolean | undefined
  /** Fixed window only, as in @fastify/rate-limit: each refused request doubles the window. */
  exponentialBackoff?: boolean | undefined
}

export interface ResolvedBan {
  after: number
  durationMs: number
  withinMs: number
}

/** The answer of one limiter (Redis or in-process) for one request. */
export interface LimiterResult {
  allowed: boolean
  /** Requests counted against the limit, the @fastify/rate-limit way: `current > max` means refused. */
  current: number
  /** Requests left before a refusal (0 when refused). */
  remaining: number
  /** Milliseconds until the quota is whole again (fixed: the window's PTTL). */
  resetMs: number
  /** Milliseconds until a request would be allowed again; 0 when allowed. */
  retryAfterMs: number
  /** Refused because of a ban (see BanOptions). */
  banned: boolean
}

/** One limiter: the Redis one and the in-process one share this interface. */
export interface Limiter {
  consume: (key: LimitKeys, params: LimitParams) => Promise<LimiterResult>
}

/** The Redis keys of one limit; they share a hash tag so one script may touch them all in a Cluster. */
export interface LimitKeys {
  counter: string
  strikes: string
  ban: string
}

/**
 * How a decision was made: by the primary limiter (`redis`, or `memory` when no Redis is configured),
 * or, while Redis is down, by the fallback limiter, by failing open or by failing closed.
 */
export type DecisionSource = 'redis' | 'memory' | 'fallback' | 'open' | 'closed'

export interface RateLimitDecision extends LimiterResult {
  source: DecisionSource
  key: string
  limit: number
  /** Milliseconds. */
  timeWindow: number
  algorithm: RateLimitAlgorithm
  /** Refused because Redis is down and the mode is `closed`: answer 503, not 429. */
  unavailable: boolean
}

/** Counters since creation; `allowed + limited + fallback + open + closed` is the number of decisions. */
export interface RateLimitStats {
  /** Allowed by the primary limiter. */
  allowed: number
  /** Refused by the primary limiter (bans included). */
  limited: number
  /** Decided by the in-process fallback while Redis was down (either way). */
  fallback: number
  /** Allowed without a check while Redis was down (mode `open`). */
  open: number
  /** Refused while Redis was down (mode `closed`). */
  closed: number
  /** Refusals that were bans (a subset of limited and fallback). */
  banned: number
  /** Redis commands that failed or did not answer within the time budget. */
  redisFailures: number
  /** Requests a dry-run policy would have refused (they were let through; see `dryRun`). */
  dryRunRefused: number
}

/** The part of a pino logger the store uses. */
export interface RateLimitLogger {
  info: (obj: object, msg?: string) => void
  warn: (obj: object, msg?: string) => void
}
