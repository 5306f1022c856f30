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
//
// Plain fixed-window decisions of one turn are also merged per key (`increment`): one script call
// adds n to the counter (INCRBY n), and the k-th of the n requests gets the count the k-th of n
// separate INCRs would have returned. The script runs atomically, so no other increment falls between
// them: the decisions are exactly those of n INCRs in a row. A hot key (one client, a route-wide
// limit) then costs one command per turn instead of one per request. On one server (standalone or
// Sentinel) the turn's distinct keys also go in one call (PLAIN_FIXED_WINDOW_MANY_LUA, key by key in
// the order of their first request), so many clients cost one command per turn too, not one per key.
// On Cluster, whose keys live in many slots, each key is its own call.
//
// A route's list of policies (`policies`) is merged the same way on one server: the requests of a
// turn go in one POLICIES_MANY_LUA call, decided one after another in arrival order, each atomically.
import type { Cluster, Redis } from 'ioredis'
import { PLAIN_FIXED_WINDOW_MANY_SCRIPT, PLAIN_FIXED_WINDOW_SCRIPT, POLICIES_MANY_SCRIPT, POLICIES_SCRIPT, type LoadedScript } from './scripts.js'
import type { LimiterResult } from './types.js'
import { codes, RateLimitRedisError } from '../errors/index.js'

export type RedisClient = Redis | Cluster

export function wrapRedisError (err: unknown): RateLimitRedisError {
  if (err instanceof RateLimitRedisError) return err
  const message = err instanceof Error ? err.message : String(err)
  return /timed? ?out/i.test(message)
    ? new RateLimitRedisError(codes.FRS_RATE_LIMIT_REDIS_TIMEOUT, `Redis did not answer in time: ${message}`, { cause: err })
    : new RateLimitRedisError(codes.FRS_RATE_LIMIT_REDIS_ERROR, `Redis rate-limit command failed: ${message}`, { cause: err })
}

export const isNoScript = (err: unknown): boolean => err instanceof Error && err.message.includes('NOSCRIPT')

/**
 * EVALSHA, and EVAL once after a NOSCRIPT (SCRIPT FLUSH, a failover or a restart: EVAL runs the script
 * and caches it again). Failures come back as RateLimitRedisError.
 */
function evalScript (client: RedisClient, script: LoadedScript, keys: readonly string[], args: readonly string[]): Promise<unknown> {
  return client.evalsha(script.sha, keys.length, ...keys, ...args).catch((err: unknown) => {
    if (!isNoScript(err)) throw wrapRedisError(err)
    return client.eval(script.lua, keys.length, ...keys, ...args).catch((again: unknown) => { throw wrapRedisError(again) })
  })
}

type Corkable = { cork: () => void, uncork: () => void }

/**
 * One request's merged increment, told the count after its own increment (and the window's ms
 * left), or why there is none: exactly one of the two, once. An object, not a promise: a decision
 * then costs no promise, closure or reply tuple per request (the store's lean path, store.ts).
 */
export interface IncrementWaiter {
  granted: (current: number, ttlMs: number) => void
  failed: (err: unknown) => void
}

/** Keys per multi-key increment call: bounds the script's run time (Redis runs nothing else meanwhile). */
const MANY_KEYS = 256

/** The increments of one key (and window) in this turn, in arrival order. */
interface PendingIncrement { script: LoadedScript, key: string, windowArg: string, waiters: IncrementWaiter[] }

/** One request's policies in this turn: POLICIES_LUA's keys and arguments. */
interface PendingPolicies { keys: readonly string[], args: readonly string[], resolve: (reply: unknown) => void, reject: (err: unknown) => void }

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

  /**
   * Set once a multi-key call was refused with CROSSSLOT: a "standalone" endpoint that is a sharding
   * proxy (some managed services' clustered databases) takes one key per call, as Cluster does.
   */
  #oneKeyPerCall = false

  /** `increment` calls of this turn by key (key + ' ' + window for a second window); sent by #flush at the end of the turn. */
  readonly #pending = new Map<string, PendingIncrement>()
  /** `policies` calls of this turn, in arrival order; sent by #flush at the end of the turn. */
  #pendingPolicies: PendingPolicies[] = []
  #flushScheduled = false
  readonly #flush = (): void => {
    this.#flushScheduled = false
    const client = this.#client()
    const stream = client === this.#owned && client.status === 'ready' ? (client as Redis).stream as Corkable | undefined : undefined
    stream?.cork()
    if (this.#pending.size > 0) this.#sendIncrements(client)
    if (this.#pendingPolicies.length > 0) this.#sendPolicies(client)
    stream?.uncork()
  }

  constructor (client: () => RedisClient, owned?: RedisClient) {
    this.#client = client
    this.#owned = owned
  }

  /**
   * One request's plain fixed-window increment of `key` (window `windowArg` ms when it starts): merged
   * with the other increments of the key issued in this event-loop turn into one script call.
   */
  increment (script: LoadedScript, key: string, windowArg: string, waiter: IncrementWaiter): void {
    this.#schedule()
    // Keyed by the counter key alone: no string is built per request. A second window for the same
    // key in one turn (a per-request timeWindow, rare) gets its own entry under key + window.
    let id = key
    let pending = this.#pending.get(id)
    if (pending !== undefined && pending.windowArg !== windowArg) {
      id = key + ' ' + windowArg
      pending = this.#pending.get(id)
    }
    if (pending === undefined) {
      pending = { script, key, windowArg, waiters: [] }
      this.#pending.set(id, pending)
    }
    pending.waiters.push(waiter)
  }

  /**
   * One request's policies (POLICIES_LUA's keys and arguments): on one server, merged with the other
   * requests' of this turn into one call; on Cluster, whose keys live in many slots, its own call.
   * Resolves to the request's 5 values per policy.
   */
  policies (keys: readonly string[], args: readonly string[]): Promise<unknown> {
    if (this.#oneKeyPerCall || this.#client().isCluster) return this.callKeys(POLICIES_SCRIPT, keys, args)
    this.#schedule()
    return new Promise((resolve, reject) => { this.#pendingPolicies.push({ keys, args, resolve, reject }) })
  }

  #schedule (): void {
    if (this.#flushScheduled) return
    this.#flushScheduled = true
    setImmediate(this.#flush)
  }

  /**
   * Sends this turn's policy decisions: one call for all of them, or each its own when alone in the
   * turn (the plain script, no wrapper) or on a sharding proxy.
   */
  #sendPolicies (client: RedisClient): void {
    const requests = this.#pendingPolicies
    this.#pendingPolicies = [] // first: whatever happens below, the next request schedules its own flush
    if (requests.length === 1 || this.#oneKeyPerCall || client.isCluster) {
      for (const request of requests) this.#sendPolicy(client, request)
      return
    }
    for (let start = 0; start < requests.length; start += MANY_KEYS) {
      this.#sendManyPolicies(client, requests.slice(start, start + MANY_KEYS))
    }
  }

  /** One request's own call; a call that throws (in the flush, so nothing else would catch it) fails that request only. */
  #sendPolicy (client: RedisClient, request: PendingPolicies): void {
    try {
      evalScript(client, POLICIES_SCRIPT, request.keys, request.args).then(request.resolve, request.reject)
    } catch (err) {
      request.reject(wrapRedisError(err))
    }
  }

  #sendManyPolicies (client: RedisClient, requests: readonly PendingPolicies[]): void {
    const keys: string[] = []
    const args: string[] = [String(requests.length)]
    for (const { keys: own, args: ownArgs } of requests) {
      keys.push(...own)
      args.push(String(own.length), ...ownArgs)
    }
    const share = (reply: unknown): void => {
      if (!Array.isArray(reply) || reply.length !== keys.length * 5) {
        fail(new RateLimitRedisError(codes.FRS_RATE_LIMIT_REDIS_ERROR, 'Unexpected reply from the rate-limit policies script'))
        return
      }
      let offset = 0
      for (const request of requests) {
        const size = request.keys.length * 5
        if (reply[offset] === -1) request.reject(new RateLimitRedisError(codes.FRS_RATE_LIMIT_REDIS_ERROR, `Redis rate-limit command failed: ${String(reply[offset + 1])}`))
        else request.resolve(reply.slice(offset, offset + size))
        offset += size
      }
    }
    const fail = (err: unknown): void => {
      if (err instanceof Error && err.message.includes('CROSSSLOT')) {
        // A sharding proxy: these requests, and every later turn's, one call each.
        this.#oneKeyPerCall = true
        for (const request of requests) this.#sendPolicy(client, request)
        return
      }
      const wrapped = wrapRedisError(err)
      for (const request of requests) request.reject(wrapped)
    }
    try {
      evalScript(client, POLICIES_MANY_SCRIPT, keys, args).then(share, fail)
    } catch (err) {
      fail(err)
    }
  }

  /**
   * Sends this turn's merged increments. Groups go in the order of their first request: requests of
   * one key with different windows (a per-request timeWindow) are counted group by group, not
   * interleaved.
   */
  #sendIncrements (client: RedisClient): void {
    const groups = [...this.#pending.values()]
    this.#pending.clear() // first: whatever happens below, the next increment schedules its own flush
    if (groups.length > 1 && !client.isCluster && !this.#oneKeyPerCall && groups.every((pending) => pending.script === PLAIN_FIXED_WINDOW_SCRIPT)) {
      for (let start = 0; start < groups.length; start += MANY_KEYS) {
        const chunk = groups.slice(start, start + MANY_KEYS)
        try {
          if (chunk.length === 1) this.#sendIncrement(client, chunk[0]!)
          else this.#sendMany(client, chunk)
        } catch (err) {
          for (const pending of chunk) failAll(pending.waiters, err)
        }
      }
    } else {
      this.#sendEach(client, groups)
    }
  }

  /** One script call per key; a call that throws fails its own requests only. */
  #sendEach (client: RedisClient, groups: readonly PendingIncrement[]): void {
    for (const pending of groups) {
      try {
        this.#sendIncrement(client, pending)
      } catch (err) {
        failAll(pending.waiters, err)
      }
    }
  }

  /** Several keys' merged increments in one script call on one server. */
  #sendMany (client: RedisClient, groups: readonly PendingIncrement[]): void {
    const keys = groups.map((pending) => pending.key)
    const args: string[] = []
    for (const pending of groups) args.push(pending.windowArg, String(pending.waiters.length))
    const share = (reply: unknown): void => {
      if (!Array.isArray(reply) || reply.length !== groups.length * 2) {
        fail(new RateLimitRedisError(codes.FRS_RATE_LIMIT_REDIS_ERROR, 'Unexpected reply from the rate-limit script'))
        return
      }
      for (let g = 0; g < groups.length; g++) shareOf(groups[g]!.waiters, reply[2 * g], reply[2 * g + 1])
    }
    const fail = (err: unknown): void => {
      if (err instanceof Error && err.message.includes('CROSSSLOT')) {
        // A sharding proxy: these keys, and every later turn's, one per call.
        this.#oneKeyPerCall = true
        this.#sendEach(client, groups)
        return
      }
      for (const pending of groups) failAll(pending.waiters, err)
    }
    const script = PLAIN_FIXED_WINDOW_MANY_SCRIPT
    client.evalsha(script.sha, keys.length, ...keys, ...args).then(share, (err: unknown) => {
      if (!isNoScript(err)) return fail(err)
      client.eval(script.lua, keys.length, ...keys, ...args).then(share, fail)
    })
  }

  #sendIncrement (client: RedisClient, { script, key, windowArg, waiters }: PendingIncrement): void {
    const n = String(waiters.length)
    const share = (reply: unknown): void => {
      if (!Array.isArray(reply) || reply.length !== 2) {
        fail(new RateLimitRedisError(codes.FRS_RATE_LIMIT_REDIS_ERROR, 'Unexpected reply from the rate-limit script'))
        return
      }
      shareOf(waiters, reply[0], reply[1])
    }
    const fail = (err: unknown): void => { failAll(waiters, err) }
    client.evalsha(script.sha, 1, key, windowArg, n).then(share, (err: unknown) => {
      // After SCRIPT FLUSH, a failover or a restart: EVAL runs the script and caches it again.
      if (!isNoScript(err)) return fail(err)
      client.eval(script.lua, 1, key, windowArg, n).then(share, fail)
    })
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

  /** Whether commands go to a Cluster (whose keys of one call must share a slot). */
  get isCluster (): boolean {
    return this.#client().isCluster
  }

  /** A script on several keys (one slot on Cluster) with its own arguments; the raw reply. */
  callKeys (script: LoadedScript, keys: readonly string[], args: readonly string[]): Promise<unknown> {
    return evalScript(this.#next(), script, keys, args)
  }

  /** A script on one key with its own arguments; the raw reply. */
  call (script: LoadedScript, key: string, args: readonly string[]): Promise<unknown> {
    return evalScript(this.#next(), script, [key], args)
  }
}

/** Hands one key's reply to the n requests merged into it: request k (from 0) saw the count after its own increment. */
function shareOf (waiters: readonly IncrementWaiter[], current: unknown, ttl: unknown): void {
  if (typeof current !== 'number' || typeof ttl !== 'number' || current < 0) {
    failAll(waiters, new RateLimitRedisError(codes.FRS_RATE_LIMIT_REDIS_ERROR, current === -1 && typeof ttl === 'string'
      ? `Redis rate-limit command failed: ${ttl}`
      : 'Unexpected reply from the rate-limit script'))
    return
  }
  const first = current - waiters.length + 1
  for (let k = 0; k < waiters.length; k++) {
    try {
      waiters[k]!.granted(first + k, ttl)
    } catch (err) {
      rethrowLater(err)
    }
  }
}

function failAll (waiters: readonly IncrementWaiter[], err: unknown): void {
  for (const waiter of waiters) {
    try {
      waiter.failed(err)
    } catch (thrown) {
      rethrowLater(thrown)
    }
  }
}

/**
 * A waiter that throws (a bug downstream) must not cost the other requests of its turn their
 * answers: it surfaces on its own, as a throwing promise reaction would (an unhandled rejection).
 */
function rethrowLater (err: unknown): void {
  queueMicrotask(() => { throw err })
}

function toResult (reply: unknown): LimiterResult {
  if (!Array.isArray(reply) || reply.length < 6) {
    throw new RateLimitRedisError(codes.FRS_RATE_LIMIT_REDIS_ERROR, 'Unexpected reply from the rate-limit script')
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
