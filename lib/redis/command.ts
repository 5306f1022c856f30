// Small helpers shared by pub/sub, presence and locks: Lua scripts run by SHA (EVAL once after a
// NOSCRIPT), a time bound on any one command, and the error those features throw when Redis fails.
import { createHash } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'
import { RedisCommandError } from '../errors/index.js'

export type RedisClient = Redis | Cluster

export interface Script {
  lua: string
  sha: string
}

export function script (lua: string): Script {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') }
}

/** EVALSHA, falling back to EVAL (which also caches the script) after SCRIPT FLUSH, a restart or a failover. */
export async function runScript (client: RedisClient, s: Script, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
  try {
    return await client.evalsha(s.sha, keys.length, ...keys, ...args)
  } catch (err) {
    if (!(err instanceof Error) || !err.message.includes('NOSCRIPT')) throw err
    return await client.eval(s.lua, keys.length, ...keys, ...args)
  }
}

/**
 * Runs `command` and rejects with a RedisCommandError carrying `code` when it fails or takes longer
 * than `timeoutMs` (the client's own commandTimeout normally fires first; this bound holds even for a
 * client built without one). The command itself is left to finish; its late reply is dropped.
 */
export function bounded<T> (command: () => Promise<T>, timeoutMs: number, code: string, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new RedisCommandError(code, `${what}: Redis did not answer within ${timeoutMs} ms; check Redis (app.redisState) and retry later`))
    }, timeoutMs)
    let pending: Promise<T>
    try {
      pending = command()
    } catch (err) {
      pending = Promise.reject(err)
    }
    pending.then((value) => {
      clearTimeout(timer)
      resolve(value)
    }, (err: unknown) => {
      clearTimeout(timer)
      if (err instanceof RedisCommandError) return reject(err)
      const reason = err instanceof Error ? err.message : String(err)
      reject(new RedisCommandError(code, `${what}: Redis is unavailable (${reason}); check Redis (app.redisState) and retry later`, { cause: err }))
    })
  })
}

/**
 * The bound of one command of a feature that waits for Redis itself (locks, presence): the client's
 * command timeout (REDIS_COMMAND_TIMEOUT) plus the failover wait a command issued now may still spend
 * (`waitLeft`, app.redisConnections.failoverWaitLeft; REDIS_FAILOVER_WAIT), read when it is issued.
 * Failures and overruns become RedisCommandError with `code`.
 */
export class CommandBound {
  readonly #timeoutMs: number
  readonly #waitLeft: () => number
  readonly #code: string

  constructor (timeoutMs: number, code: string, waitLeft: () => number = () => 0) {
    this.#timeoutMs = timeoutMs
    this.#code = code
    this.#waitLeft = waitLeft
  }

  run<T> (command: () => Promise<T>, what: string): Promise<T> {
    return bounded(command, this.#timeoutMs + this.#waitLeft(), this.#code, what)
  }
}

/** Resolves when the client is ready, or rejects after `timeoutMs` (a dedicated connection still connecting). */
export function whenReady (client: RedisClient, timeoutMs: number, code: string, what: string): Promise<void> {
  if (client.status === 'ready') return Promise.resolve()
  return new Promise((resolve, reject) => {
    const onReady = (): void => {
      clearTimeout(timer)
      resolve()
    }
    const timer = setTimeout(() => {
      client.off('ready', onReady)
      reject(new RedisCommandError(code, `${what}: the Redis connection is not ready (status ${client.status}) after ${timeoutMs} ms; check Redis (app.redisState) and retry later`))
    }, timeoutMs)
    client.once('ready', onReady)
  })
}
