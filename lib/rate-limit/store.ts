// The rate-limit store: decides one request against Redis (or the in-process limiter when no Redis is
// configured), applies the Redis-down mode when Redis fails or is known down, counts every decision,
// and logs the mode once at creation and Redis failures once per burst.
//
// Hot path: `limit(definition)` resolves everything about one limit once (ban, script, arguments, the
// escaped scope of its keys); the bound limit's `consume(id)` then builds its key strings and sends
// one EVALSHA. A plain fixed window (no ban, backoff or continueExceeding: the common limit) takes the
// lean path: one key, INCRBY + PTTL (or PEXPIRE when new) in Redis, the increments of one key in one
// event-loop turn merged into one call (redis-limiter.ts), and the decision built straight from the
// two-number reply. No timer per request: when the time budget is
// tighter than the client's commandTimeout, the store opens one duplicate connection whose
// commandTimeout is the budget (its writes batched per event-loop turn, see redis-limiter.ts), and
// closes it in close().
//
// REDIS_FAILOVER_WAIT: while the connection is being re-established and the app's failover budget is
// not spent (`failoverWaitLeft() > 0`), a decision is sent anyway: the main client holds it in its
// offline queue and sends it once reconnected, or rejects it when the budget runs out, and the
// Redis-down mode applies then. Past the budget, a connection known down is skipped at once.
import type { Cluster, Redis } from 'ioredis'
import { parseDuration, type Duration } from '../config/index.js'
import { BatchedLimiter, type BatchedLimiterOptions } from './batched-limiter.js'
import { limitKeyPrefix } from './keys.js'
import { MemoryLimiter } from './memory-limiter.js'
import { RedisLimiter, wrapRedisError, type IncrementWaiter, type RedisClient } from './redis-limiter.js'
import {
  ADJUST_SCRIPT, FIXED_WINDOW_READ_SCRIPT, FIXED_WINDOW_SCRIPT, POLICIES_SCRIPT, PLAIN_FIXED_WINDOW_SCRIPT, SLIDING_WINDOW_READ_SCRIPT, SLIDING_WINDOW_SCRIPT,
  type LoadedScript
} from './scripts.js'
import type {
  BanOptions, DecisionSource, LimiterResult, LimitKeys, LimitParams, RateLimitAlgorithm, RateLimitDecision,
  RateLimitLogger, RateLimitStats, RedisDownMode, ResolvedBan
} from './types.js'
import { codes, RateLimitOptionError, RateLimitRedisError } from '../errors/index.js'

/** `exact`: one Redis script per decision. `batched`: leases of quota, decided locally (batched-limiter.ts). */
export type RateLimitSync = 'exact' | 'batched'

export interface RateLimitStoreOptions {
  /** The app's ioredis client; without one, the in-process limiter decides (development only). */
  redis?: RedisClient | undefined
  /** When it returns false, Redis is skipped at once (the connection is known down), unless a failover wait is open. */
  isRedisReady?: (() => boolean) | undefined
  /**
   * Milliseconds a command issued now may still wait for a lost connection (REDIS_FAILOVER_WAIT left;
   * 0 when connected or once spent). While above 0 a decision waits for the connection instead of
   * taking the Redis-down mode at once; the client's offline queue holds it (lib/redis/failover.ts).
   */
  failoverWaitLeft?: (() => number) | undefined
  /** While Redis is down: `fallback` (in-process limiter, default), `open` (allow) or `closed` (refuse, 503). */
  whenRedisDown?: RedisDownMode
  /** Longest a decision waits on Redis. Default 250 ms. */
  timeout?: Duration
  /** Default algorithm; each call may choose. Default `fixed`. */
  algorithm?: RateLimitAlgorithm
  /** Default ban; each call may override it (or turn it off with `false`). */
  ban?: BanOptions | false
  /**
   * `exact` (default) or `batched`: fixed-window limits without a ban decide locally from leases of
   * quota (sliding, banned and backoff limits stay exact). Over-admission bound: instances × lease.
   */
  sync?: RateLimitSync
  /** Batched mode's lease size and bookkeeping. */
  batched?: BatchedLimiterOptions
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
  /**
   * Applied to the connection the store opens for its time budget (a copy of `redis`), before use.
   * The plugin passes lib/redis's stopSlotsRefreshOnClose for Clusters: a copy of an app's own Cluster
   * would otherwise keep refreshing its slots after close (lib/redis/cluster-close.ts).
   */
  adoptCopy?: ((copy: RedisClient) => RedisClient) | undefined
}

/** One limit, as a route or a createRateLimit() call defines it. */
export interface LimitDefinition {
  max: number
  timeWindow: Duration
  /** The route or limit the id is counted under. Default 'global'. */
  scope?: string
  algorithm?: RateLimitAlgorithm
  ban?: BanOptions | false
  continueExceeding?: boolean
  exponentialBackoff?: boolean
}

/** One policy of a route's `config.rateLimit.policies`, as the store counts it. */
export interface PolicyDefinition {
  max: number
  timeWindow: Duration
  /** Names the counter: different scopes never share one. */
  scope: string
  algorithm?: RateLimitAlgorithm
  /** Count and report, never refuse. */
  dryRun?: boolean
}

/** The decision of every policy of one request. */
export interface PoliciesDecision {
  /** No enforcing policy refuses (dry-run policies never do). */
  allowed: boolean
  /** Redis is down and the mode is `closed`: answer 503. */
  unavailable: boolean
  /** One per policy, in list order; `allowed` there is whether that policy alone would allow. */
  decisions: RateLimitDecision[]
  /** The enforcing policy that refuses with the longest wait; -1 when allowed. */
  refusedBy: number
  /** Milliseconds until the request would pass; 0 when allowed. */
  retryAfterMs: number
}

/** Several policies resolved once; `consume` is the per-request call. */
export interface BoundPolicies {
  readonly size: number
  /**
   * Charges each policy its cost for its id when every enforcing policy allows; none when one refuses.
   * One round trip and atomic on one server; on Cluster one call per policy, refunded when another
   * refuses (see the README). Never rejects.
   */
  consume: (ids: readonly string[], costs: readonly number[]) => Promise<PoliciesDecision>
}

interface ResolvedPolicy {
  params: LimitParams
  prefix: string
  suffix: string
  dryRun: boolean
  /** ARGV of POLICIES_LUA before the cost: algorithm, window, max. */
  head: [string, string, string]
}

/** @deprecated name kept for callers of consume(); same as LimitDefinition. */
export type ConsumeOptions = LimitDefinition

/** A limit resolved once; `consume` and `peek` are the per-request calls. */
export interface BoundLimit {
  readonly max: number
  readonly timeWindowMs: number
  readonly algorithm: RateLimitAlgorithm
  /** Batched mode applies to this limit. */
  readonly batched: boolean
  /** Counts one request of `id`. `max`/`timeWindowMs` override the bound ones (per-request functions). Never rejects. */
  consume: (id: string, max?: number, timeWindowMs?: number) => Promise<RateLimitDecision>
  /**
   * consume() with the bound max and window, answered synchronously when it is decided in this
   * process (a batched lease in hand, no Redis, Redis known down): no promise and no microtask on
   * that path. A promise (never rejecting) when Redis is asked.
   */
  decide: (id: string) => RateLimitDecision | Promise<RateLimitDecision>
  /** The same answer without counting (@fastify/rate-limit's `{ increment: false }`). Never rejects. */
  peek: (id: string, max?: number, timeWindowMs?: number) => Promise<RateLimitDecision>
  /**
   * Outside the request path: `n` > 0 charges `id` n more requests (a penalty), `n` < 0 gives n back
   * (a reward, never below none used). Rejects when Redis fails (nothing is counted in-process then).
   */
  adjust: (id: string, n: number) => Promise<void>
}

export function resolveBan (ban: BanOptions | false | undefined): ResolvedBan | undefined {
  if (ban === undefined || ban === false) return undefined
  if (!Number.isInteger(ban.after) || ban.after < 1) {
    throw new RateLimitOptionError(`rate-limit ban.after must be a whole number of refusals of at least 1, got ${JSON.stringify(ban.after)}`)
  }
  const durationMs = parseDuration(ban.duration, 'rate-limit ban.duration')
  return { after: ban.after, durationMs, withinMs: ban.within === undefined ? durationMs : parseDuration(ban.within, 'rate-limit ban.within') }
}

const MODES: readonly RedisDownMode[] = ['fallback', 'open', 'closed']

function commandTimeoutOf (client: RedisClient): number | undefined {
  const options = client.isCluster
    ? (client.options as { redisOptions?: { commandTimeout?: number } }).redisOptions
    : client.options as { commandTimeout?: number }
  return options?.commandTimeout
}

// A second connection whose commandTimeout is the rate-limit budget: the budget without a timer per request.
// Not auto-pipelined: ioredis holds the next auto-pipeline until the running one answers, so on a frozen
// server a decision would wait up to two budgets (seen in test/faults/rate-limit.test.ts).
function budgetClient (client: RedisClient, timeoutMs: number): RedisClient {
  if (client.isCluster) {
    const cluster = client as Cluster
    return cluster.duplicate(undefined, { redisOptions: { ...cluster.options.redisOptions, commandTimeout: timeoutMs }, lazyConnect: false })
  }
  return (client as Redis).duplicate({ commandTimeout: timeoutMs, lazyConnect: false })
}

/** Counter keys remembered per bound limit (cleared when full: a flood of new ids costs a rebuild, never memory). */
const COUNTER_CACHE_SIZE = 10_000

export class RateLimitStore {
  readonly mode: RedisDownMode
  readonly backend: 'redis' | 'memory'
  readonly sync: RateLimitSync
  readonly timeoutMs: number
  readonly #redis: RedisLimiter | undefined
  readonly #budget: RedisClient | undefined
  readonly #batched: BatchedLimiter | undefined
  readonly #memory: MemoryLimiter
  readonly #isRedisReady: () => boolean
  readonly #failoverWaitLeft: () => number
  readonly #options: RateLimitStoreOptions
  readonly #defaultBan: ResolvedBan | undefined
  readonly #closedRetryAfterMs: number
  readonly #stats: RateLimitStats = { allowed: 0, limited: 0, fallback: 0, open: 0, closed: 0, banned: 0, redisFailures: 0, dryRunRefused: 0 }
  readonly #bound = new Map<string, BoundLimit>()
  #failing = false

  constructor (options: RateLimitStoreOptions = {}) {
    this.#options = options
    this.mode = options.whenRedisDown ?? 'fallback'
    if (!MODES.includes(this.mode)) {
      throw new RateLimitOptionError(`rate-limit whenRedisDown must be one of ${MODES.join(', ')}, got ${JSON.stringify(this.mode)}`)
    }
    this.sync = options.sync ?? 'exact'
    if (this.sync !== 'exact' && this.sync !== 'batched') {
      throw new RateLimitOptionError(`rate-limit sync must be exact or batched, got ${JSON.stringify(this.sync)}`)
    }
    this.timeoutMs = parseDuration(options.timeout ?? 250, 'rate-limit timeout')
    this.#closedRetryAfterMs = parseDuration(options.closedRetryAfter ?? 1000, 'rate-limit closedRetryAfter')
    this.#defaultBan = resolveBan(options.ban)
    const main = options.redis
    this.backend = main === undefined ? 'memory' : 'redis'
    if (main !== undefined) {
      const own = commandTimeoutOf(main)
      const copy = own === undefined || own > this.timeoutMs ? budgetClient(main, this.timeoutMs) : undefined
      this.#budget = copy === undefined || options.adoptCopy === undefined ? copy : options.adoptCopy(copy)
      this.#budget?.on('error', () => {}) // failures are counted and logged per decision burst, below
      const budget = this.#budget
      // Until the budget connection is up (start-up, a reconnect), the main one serves: its own commandTimeout bounds it.
      this.#redis = new RedisLimiter(budget === undefined ? () => main : () => budget.status === 'ready' ? budget : main, budget)
      if (this.sync === 'batched') this.#batched = new BatchedLimiter(this.#redis, options.batched)
    }
    this.#memory = new MemoryLimiter({ maxKeys: options.memoryMaxKeys, now: options.now })
    this.#isRedisReady = options.isRedisReady ?? (() => true)
    this.#failoverWaitLeft = options.failoverWaitLeft ?? (() => 0)
    this.#logMode()
  }

  /** Resolves when the budget connection (if any) is ready, or after `withinMs`; for start-up. */
  async ready (withinMs = this.timeoutMs * 4): Promise<void> {
    const budget = this.#budget
    if (budget === undefined || budget.status === 'ready') return
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, withinMs)
      function done (): void {
        clearTimeout(timer)
        budget?.off('ready', done)
        resolve()
      }
      budget.once('ready', done)
    })
  }

  /** Closes the connection the store opened (never the app's own). */
  async close (): Promise<void> {
    this.#budget?.disconnect()
  }

  /** Lease size of batched mode for `max` (0 when batched mode is off). */
  leaseSize (max: number): number {
    return this.#batched?.leaseSize(max) ?? 0
  }

  /** Counts one request of `id` and decides it. Never rejects: Redis failures become the Redis-down mode. */
  consume (id: string, options: LimitDefinition): Promise<RateLimitDecision> {
    return this.limit(options).consume(id)
  }

  /** Resolves a limit once (bans parsed, keys' scope escaped, script and arguments chosen). Cached by its settings. */
  limit (definition: LimitDefinition): BoundLimit {
    const ban = definition.ban === undefined ? this.#defaultBan : resolveBan(definition.ban)
    const params: LimitParams = {
      max: Math.max(0, Math.trunc(definition.max)),
      timeWindow: Math.max(1, parseDuration(definition.timeWindow, 'rate-limit timeWindow')),
      algorithm: definition.algorithm ?? this.#options.algorithm ?? 'fixed',
      ban,
      continueExceeding: definition.continueExceeding === true,
      exponentialBackoff: definition.exponentialBackoff === true
    }
    const scope = definition.scope ?? 'global'
    const cacheKey = JSON.stringify([scope, params])
    let bound = this.#bound.get(cacheKey)
    if (bound === undefined) {
      bound = this.#bind(scope, params)
      if (this.#bound.size < 1000) this.#bound.set(cacheKey, bound)
    }
    return bound
  }

  #bind (scope: string, params: LimitParams): BoundLimit {
    const prefix = limitKeyPrefix(this.#options.namespace, scope)
    const counterSuffix = params.algorithm === 'sliding' ? '}:g' : '}:f'
    const script: LoadedScript = params.algorithm === 'sliding' ? SLIDING_WINDOW_SCRIPT : FIXED_WINDOW_SCRIPT
    const readScript: LoadedScript = params.algorithm === 'sliding' ? SLIDING_WINDOW_READ_SCRIPT : FIXED_WINDOW_READ_SCRIPT
    const { ban } = params
    const tail = [
      String(ban?.after ?? 0), String(ban?.durationMs ?? 0), String(ban?.withinMs ?? 0),
      params.continueExceeding === true ? '1' : '0', params.exponentialBackoff === true ? '1' : '0'
    ]
    const fixedArgs = [String(params.timeWindow), String(params.max), ...tail]
    const plain = params.algorithm === 'fixed' && ban === undefined && params.continueExceeding !== true && params.exponentialBackoff !== true
    const batched = this.#batched !== undefined && plain
    const lean = plain && !batched && this.#redis !== undefined
    const windowArg = String(Math.ceil(params.timeWindow))
    const store = this

    function keysOf (id: string): LimitKeys {
      const base = prefix + escapeId(id)
      return { counter: base + counterSuffix, strikes: base + '}:s', ban: base + '}:b' }
    }
    function paramsFor (max: number | undefined, timeWindowMs: number | undefined): LimitParams {
      return (max === undefined || max === params.max) && (timeWindowMs === undefined || timeWindowMs === params.timeWindow)
        ? params
        : { ...params, max: Math.max(0, Math.trunc(max ?? params.max)), timeWindow: Math.max(1, Math.trunc(timeWindowMs ?? params.timeWindow)) }
    }
    function argsFor (p: LimitParams): readonly string[] {
      return p === params ? fixedArgs : [String(p.timeWindow), String(p.max), ...tail]
    }
    // The counter key of each recent id, built once: a request of a known client then needs no escape,
    // no concatenation and no hashing of a new string (its Map lookups reuse the cached string's hash).
    const counters = new Map<string, string>()
    function counterOf (id: string): string {
      let counter = counters.get(id)
      if (counter === undefined) {
        if (counters.size >= COUNTER_CACHE_SIZE) counters.clear()
        counter = prefix + escapeId(id) + counterSuffix
        counters.set(id, counter)
      }
      return counter
    }
    function count (id: string, p: LimitParams): RateLimitDecision | Promise<RateLimitDecision> {
      if (lean) return store.#lean(id, counterOf(id), p, p === params ? windowArg : String(Math.ceil(p.timeWindow)))
      if (batched) return store.#leased(id, counterOf(id), p)
      const keys = keysOf(id)
      return store.#decide(id, keys, p, (redis) => redis.run(script, keys.counter, keys.strikes, keys.ban, argsFor(p)), false)
    }

    return {
      max: params.max,
      timeWindowMs: params.timeWindow,
      algorithm: params.algorithm,
      batched,
      consume (id, max, timeWindowMs) {
        return settled(count(id, paramsFor(max, timeWindowMs)))
      },
      decide (id) {
        return count(id, params)
      },
      adjust (id, n) {
        return store.#adjust(keysOf(id), params, n)
      },
      peek (id, max, timeWindowMs) {
        const p = paramsFor(max, timeWindowMs)
        const keys = keysOf(id)
        return settled(store.#decide(id, keys, p, (redis) => redis.run(readScript, keys.counter, keys.strikes, keys.ban, argsFor(p)), true))
      }
    }
  }

  /** Resolves a list of policies once (scopes escaped, script arguments built). */
  policies (definitions: readonly PolicyDefinition[]): BoundPolicies {
    const list: ResolvedPolicy[] = definitions.map((definition) => {
      const params: LimitParams = {
        max: Math.max(0, Math.trunc(definition.max)),
        timeWindow: Math.max(1, parseDuration(definition.timeWindow, 'rate-limit timeWindow')),
        algorithm: definition.algorithm ?? this.#options.algorithm ?? 'fixed'
      }
      const sliding = params.algorithm === 'sliding'
      return {
        params,
        prefix: limitKeyPrefix(this.#options.namespace, definition.scope),
        suffix: sliding ? '}:g' : '}:f',
        dryRun: definition.dryRun === true,
        head: [sliding ? 'g' : 'f', String(Math.ceil(params.timeWindow)), String(params.max)]
      }
    })
    return {
      size: list.length,
      consume: (ids, costs) => settled(this.#policies(list, ids, costs))
    }
  }

  #policies (list: readonly ResolvedPolicy[], ids: readonly string[], costs: readonly number[]): PoliciesDecision | Promise<PoliciesDecision> {
    // Only the counters per request; the in-process limiter's full key sets are built on its paths.
    const counters: string[] = []
    for (let i = 0; i < list.length; i++) counters.push(list[i]!.prefix + escapeId(ids[i]!) + list[i]!.suffix)
    const redis = this.#redis
    if (redis === undefined) return this.#policiesInProcess(list, ids, counters.map((c) => this.#keysFor(c)), costs, 'memory')
    if (this.#skipRedis()) return this.#policiesDown(list, ids, counters, costs)
    const ask = redis.isCluster && list.length > 1 ? this.#policiesOnCluster(redis, list, counters, costs) : redis.policies(counters, policyArgs(list, costs, 0, list.length))
    const failure = (err: unknown): PoliciesDecision => {
      this.#stats.redisFailures++
      this.#failed(err)
      return this.#policiesDown(list, ids, counters, costs)
    }
    return ask.then((reply) => {
      if (this.#failing) this.#recovered()
      try {
        return this.#policiesDecision(list, ids, reply, 'redis')
      } catch (err) {
        return failure(err)
      }
    }, failure)
  }

  // Cluster: the policies' keys live in different slots, so each is its own call (in parallel), and
  // the ones charged are given back when an enforcing policy refused. Weaker than one server's script:
  // between the calls another request may see the charge (it may be refused, never wrongly admitted).
  async #policiesOnCluster (redis: RedisLimiter, list: readonly ResolvedPolicy[], counters: readonly string[], costs: readonly number[]): Promise<unknown> {
    const replies = await Promise.all(list.map((_policy, i) => redis.callKeys(POLICIES_SCRIPT, [counters[i]!], policyArgs(list, costs, i, i + 1))))
    const flat = replies.flatMap((reply) => Array.isArray(reply) ? reply as unknown[] : [])
    const refused = list.some((policy, i) => !policy.dryRun && flat[i * 5] !== 1)
    if (!refused) return flat
    const refunds: Array<Promise<unknown>> = []
    for (let i = 0; i < list.length; i++) {
      const cost = costs[i] ?? 1
      if (flat[i * 5] !== 1 || cost <= 0) continue
      const policy = list[i]!
      refunds.push(redis.callKeys(ADJUST_SCRIPT, [counters[i]!], [...policy.head, String(-cost)]))
      flat[i * 5 + 1] = Number(flat[i * 5 + 1]) - cost
      flat[i * 5 + 2] = Number(flat[i * 5 + 2]) + cost
    }
    await Promise.all(refunds)
    return flat
  }

  #policiesDecision (list: readonly ResolvedPolicy[], ids: readonly string[], reply: unknown, source: DecisionSource): PoliciesDecision {
    if (!Array.isArray(reply) || reply.length !== list.length * 5) {
      throw new RateLimitRedisError(codes.FRS_RATE_LIMIT_REDIS_ERROR, 'Unexpected reply from the rate-limit policies script')
    }
    const results: LimiterResult[] = []
    for (let i = 0; i < list.length; i++) {
      const r = i * 5
      results.push({
        allowed: reply[r] === 1,
        current: Number(reply[r + 1]),
        remaining: Number(reply[r + 2]),
        resetMs: Number(reply[r + 3]),
        retryAfterMs: Number(reply[r + 4]),
        banned: false
      })
    }
    return this.#policiesOutcome(list, ids, results, source)
  }

  #policiesOutcome (list: readonly ResolvedPolicy[], ids: readonly string[], results: readonly LimiterResult[], source: DecisionSource): PoliciesDecision {
    let refusedBy = -1
    let retryAfterMs = 0
    let dryRefused = false
    const decisions = results.map((result, i) => {
      const policy = list[i]!
      if (!result.allowed) {
        if (policy.dryRun) dryRefused = true
        else if (result.retryAfterMs >= retryAfterMs) {
          refusedBy = i
          retryAfterMs = result.retryAfterMs
        }
      }
      return this.#notify({ ...result, source, key: ids[i]!, limit: policy.params.max, timeWindow: policy.params.timeWindow, algorithm: policy.params.algorithm, unavailable: source === 'closed' })
    })
    const stats = this.#stats
    const allowed = refusedBy === -1 && source !== 'closed'
    if (source === 'redis' || source === 'memory') {
      if (allowed) stats.allowed++
      else stats.limited++
    } else {
      stats[source]++
    }
    if (dryRefused) stats.dryRunRefused++
    return { allowed, unavailable: source === 'closed', decisions, refusedBy, retryAfterMs }
  }

  // In process (no Redis, or the fallback while it is down): every policy peeked first, then charged
  // only when no enforcing one refuses, as the Redis script does.
  #policiesInProcess (list: readonly ResolvedPolicy[], ids: readonly string[], keys: readonly LimitKeys[], costs: readonly number[], source: DecisionSource): PoliciesDecision {
    const memory = this.#memory
    const fits = list.map((policy, i) => {
      const peek = memory.peekSync(keys[i]!, policy.params)
      return peek.allowed && peek.remaining >= (costs[i] ?? 1)
    })
    const refused = list.some((policy, i) => !policy.dryRun && !fits[i])
    const results = list.map((policy, i): LimiterResult => {
      const cost = costs[i] ?? 1
      let result = memory.peekSync(keys[i]!, policy.params)
      if (fits[i] === true && !refused) for (let k = 0; k < cost; k++) result = memory.consumeSync(keys[i]!, policy.params)
      if (fits[i] === true) return result
      return { ...result, allowed: false, remaining: 0, retryAfterMs: Math.max(1, result.retryAfterMs, result.resetMs) }
    })
    return this.#policiesOutcome(list, ids, results, source)
  }

  #policiesDown (list: readonly ResolvedPolicy[], ids: readonly string[], counters: readonly string[], costs: readonly number[]): PoliciesDecision {
    if (this.mode === 'fallback') return this.#policiesInProcess(list, ids, counters.map((c) => this.#keysFor(c)), costs, 'fallback')
    const open = this.mode === 'open'
    const retry = this.#closedRetryAfterMs
    return this.#policiesOutcome(list, ids, list.map((policy) => open
      ? { allowed: true, current: 0, remaining: policy.params.max, resetMs: 0, retryAfterMs: 0, banned: false }
      : { allowed: false, current: policy.params.max + 1, remaining: 0, resetMs: retry, retryAfterMs: retry, banned: false }), this.mode)
  }

  async #adjust (keys: LimitKeys, params: LimitParams, n: number): Promise<void> {
    const count = Math.trunc(n)
    if (count === 0) return
    const redis = this.#redis
    if (redis === undefined) {
      // In process: a penalty counts n requests; a reward is not kept (the in-process limiter is for development).
      for (let k = 0; k < count; k++) this.#memory.consumeSync(keys, params)
      return
    }
    const head = [params.algorithm === 'sliding' ? 'g' : 'f', String(Math.ceil(params.timeWindow)), String(params.max)]
    await redis.callKeys(ADJUST_SCRIPT, [keys.counter], [...head, String(count)])
  }

  /** Redis is known down and no failover wait is open: skip it. */
  #skipRedis (): boolean {
    if (this.#isRedisReady() || this.#failoverWaitLeft() > 0) return false
    this.#failed(new Error('the Redis connection is down'))
    return true
  }

  // The lean path (see the head of this file): the request waits in its turn's merged increment as a
  // LeanRequest, which turns the reply (or the failure) into the decision and resolves the request's
  // one promise with it: no .then closures, waiter record or reply tuple per request.
  #lean (id: string, counter: string, params: LimitParams, windowArg: string): RateLimitDecision | Promise<RateLimitDecision> {
    if (this.#skipRedis()) return this.#down(id, this.#keysFor(counter), params, false)
    return new Promise((resolve) => { this.#redis!.increment(PLAIN_FIXED_WINDOW_SCRIPT, counter, windowArg, new LeanRequest(this.#leanAnswers, id, counter, params, resolve)) })
  }

  readonly #leanAnswers: LeanAnswers = {
    granted: (request, current, ttlMs) => this.#leanDecision(request.id, request.params, current, ttlMs),
    failed: (request, err) => this.#afterFailure(wrapRedisError(err), request.id, this.#keysFor(request.counter), request.params, false)
  }

  // Batched mode's path: a lease in hand answers in this call, with no key object or closure per
  // request; a lease call (once per lease) or a failure takes the general path's steps.
  #leased (id: string, counter: string, params: LimitParams): RateLimitDecision | Promise<RateLimitDecision> {
    if (this.#skipRedis()) return this.#down(id, this.#keysFor(counter), params, false)
    let answer: LimiterResult | Promise<LimiterResult>
    try {
      answer = this.#batched!.consume(counter, params.max, params.timeWindow)
    } catch (err) {
      return this.#afterFailure(err, id, this.#keysFor(counter), params, false)
    }
    if (!(answer instanceof Promise)) return this.#record(id, params, 'redis', answer)
    return answer.then((result) => {
      if (this.#failing) this.#recovered()
      return this.#record(id, params, 'redis', result)
    }, (err: unknown) => this.#afterFailure(err, id, this.#keysFor(counter), params, false))
  }

  #leanDecision (id: string, params: LimitParams, current: number, ttl: number): RateLimitDecision {
    if (this.#failing) this.#recovered()
    const max = params.max
    const allowed = current <= max
    return this.#count({
      allowed,
      current,
      remaining: allowed ? max - current : 0,
      resetMs: ttl,
      retryAfterMs: allowed ? 0 : Math.max(1, ttl),
      banned: false,
      source: 'redis',
      key: id,
      limit: max,
      timeWindow: params.timeWindow,
      algorithm: 'fixed',
      unavailable: false
    })
  }

  // A plain fixed window's keys from its counter key, for the in-process limiter on the failure path.
  #keysFor (counter: string): LimitKeys {
    const base = counter.slice(0, -2)
    return { counter, strikes: base + ':s', ban: base + ':b' }
  }

  /** The decision, synchronously when no Redis reply is needed; a promise that never rejects otherwise. */
  #decide (id: string, keys: LimitKeys, params: LimitParams, ask: (redis: RedisLimiter) => LimiterResult | Promise<LimiterResult>, peek: boolean): RateLimitDecision | Promise<RateLimitDecision> {
    const redis = this.#redis
    if (redis === undefined) {
      return this.#record(id, params, 'memory', peek ? this.#memory.peekSync(keys, params) : this.#memory.consumeSync(keys, params))
    }
    if (this.#skipRedis()) return this.#down(id, keys, params, peek)
    let answer: LimiterResult | Promise<LimiterResult>
    try {
      answer = ask(redis)
    } catch (err) {
      return this.#afterFailure(err, id, keys, params, peek)
    }
    if (!(answer instanceof Promise)) return this.#record(id, params, 'redis', answer)
    return answer.then((result) => {
      if (this.#failing) this.#recovered()
      return this.#record(id, params, 'redis', result)
    }, (err: unknown) => this.#afterFailure(err, id, keys, params, peek))
  }

  #afterFailure (err: unknown, id: string, keys: LimitKeys, params: LimitParams, peek: boolean): RateLimitDecision {
    this.#stats.redisFailures++
    this.#failed(err)
    return this.#down(id, keys, params, peek)
  }

  #down (id: string, keys: LimitKeys, params: LimitParams, peek: boolean): RateLimitDecision {
    switch (this.mode) {
      case 'fallback':
        return this.#record(id, params, 'fallback', peek ? this.#memory.peekSync(keys, params) : this.#memory.consumeSync(keys, params))
      case 'open':
        return this.#record(id, params, 'open', { allowed: true, current: 0, remaining: params.max, resetMs: 0, retryAfterMs: 0, banned: false })
      case 'closed':
        return this.#record(id, params, 'closed', {
          allowed: false, current: params.max + 1, remaining: 0, resetMs: this.#closedRetryAfterMs, retryAfterMs: this.#closedRetryAfterMs, banned: false
        })
    }
  }

  /** A snapshot of the decision counters since creation. */
  stats (): RateLimitStats {
    return { ...this.#stats }
  }

  #record (id: string, params: LimitParams, source: DecisionSource, result: LimiterResult): RateLimitDecision {
    return this.#count({
      allowed: result.allowed,
      current: result.current,
      remaining: result.remaining,
      resetMs: result.resetMs,
      retryAfterMs: result.retryAfterMs,
      banned: result.banned,
      source,
      key: id,
      limit: params.max,
      timeWindow: params.timeWindow,
      algorithm: params.algorithm,
      unavailable: source === 'closed'
    })
  }

  /** onDecision for one policy's decision (the request is counted in stats once, by #policiesOutcome). */
  #notify (decision: RateLimitDecision): RateLimitDecision {
    const onDecision = this.#options.onDecision
    if (onDecision !== undefined) {
      try {
        onDecision(decision)
      } catch {
        // A metrics callback must never fail a request.
      }
    }
    return decision
  }

  #count (decision: RateLimitDecision): RateLimitDecision {
    const stats = this.#stats
    const source = decision.source
    if (source === 'redis' || source === 'memory') {
      if (decision.allowed) stats.allowed++
      else stats.limited++
    } else {
      stats[source]++
    }
    if (decision.banned) stats.banned++
    return this.#notify(decision)
  }

  #logMode (): void {
    const logger = this.#options.logger
    if (logger === undefined) return
    const rateLimit = { backend: this.backend, whenRedisDown: this.mode, timeoutMs: this.timeoutMs, sync: this.sync }
    if (this.backend === 'memory') {
      // info, not warn: the Redis plugin's one warning line already says the app runs on in-process stores.
      logger.info({ rateLimit }, 'rate limit: no Redis configured, limits are counted in this process only (not shared between instances)')
    } else {
      const how = this.sync === 'batched' ? 'counted in Redis in leased batches (RATE_LIMIT_SYNC=batched)' : 'counted in Redis'
      // Never claim Redis when it did not answer boot (REDIS_WAIT_ON_BOOT=false): say what applies now.
      if (this.#isRedisReady()) logger.info({ rateLimit }, `rate limit: ${how}; while Redis is down, ${DOWN_MODE_TEXT[this.mode]}`)
      else logger.info({ rateLimit }, `rate limit: Redis is not reachable yet, so ${DOWN_MODE_TEXT[this.mode]}; once it answers, ${how}`)
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

const ESCAPED = /[%{}]/
const ESCAPED_ALL = /[%{}]/g

// As keys.ts escapes: braces would move the Cluster hash tag; the test first keeps the common case free.
function escapeId (id: string): string {
  return ESCAPED.test(id) ? id.replace(ESCAPED_ALL, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`) : id
}

const DOWN_MODE_TEXT: Record<RedisDownMode, string> = {
  fallback: 'requests are limited per process by the in-process limiter',
  open: 'requests are allowed without a limit (fail open)',
  closed: 'requests are refused with 503 (fail closed)'
}

/** POLICIES_LUA's ARGV for policies `from` to `to` (exclusive). */
function policyArgs (list: readonly ResolvedPolicy[], costs: readonly number[], from: number, to: number): string[] {
  const args: string[] = []
  for (let i = from; i < to; i++) {
    const policy = list[i]!
    args.push(policy.head[0], policy.head[1], policy.head[2], String(Math.max(0, Math.trunc(costs[i] ?? 1))), policy.dryRun ? '1' : '0')
  }
  return args
}

/** Where a lean request's decision goes once made: its promise's resolve. */
type DecisionSink = (decision: RateLimitDecision) => void

/** The store's side of a lean request, made once per store: the decision from a reply, or from a failure. */
interface LeanAnswers {
  granted: (request: LeanRequest, current: number, ttlMs: number) => RateLimitDecision
  failed: (request: LeanRequest, err: unknown) => RateLimitDecision
}

/** One exact fixed-window decision waiting in its turn's merged increment (redis-limiter.ts). */
class LeanRequest implements IncrementWaiter {
  readonly answers: LeanAnswers
  readonly id: string
  readonly counter: string
  readonly params: LimitParams
  readonly sink: DecisionSink

  constructor (answers: LeanAnswers, id: string, counter: string, params: LimitParams, sink: DecisionSink) {
    this.answers = answers
    this.id = id
    this.counter = counter
    this.params = params
    this.sink = sink
  }

  granted (current: number, ttlMs: number): void {
    this.sink(this.answers.granted(this, current, ttlMs))
  }

  failed (err: unknown): void {
    this.sink(this.answers.failed(this, err))
  }
}

/** A decision as the promise consume() and peek() promise. */
function settled<T> (decision: T | Promise<T>): Promise<T> {
  return decision instanceof Promise ? decision : Promise.resolve(decision)
}
