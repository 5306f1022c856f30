// The lock primitive, on a bare ioredis client (the cache's stampede lock uses it too) and in process.
//
// A lock is one key holding a random owner token, set with SET NX PX; only the holder of the token
// may delete it (compare-and-delete) or push its expiry (compare-and-pexpire), both in Lua so the
// check and the write are one step. A fenced lock also INCRs a per-name counter in the same script,
// so every acquisition gets a token larger than all before it; the lock and its counter share a hash
// tag (`lock:{name}` and `lock:{name}:fence`), so the script touches one Cluster slot.
//
// Single-instance semantics, not Redlock: if the Redis primary dies before replicating a SET, a
// replica promoted in its place does not know the lock and a second owner can take it. The fencing
// token is the answer for work that must never overlap: the protected resource refuses a token
// smaller than the last one it saw.
import { createHash } from 'node:crypto'
import { CommandBound, runScript, script, type RedisClient } from '../redis/index.js'
import { codes } from '../errors/index.js'

const ACQUIRE_FENCED = script(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
return 0
`)

const RELEASE = script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

const EXTEND = script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`)

const ttlArg = (ttlMs: number): string => String(Math.max(1, Math.ceil(ttlMs)))

/** SET NX PX: true when `owner` now holds `key` for `ttlMs`. No fencing token (the cache's stampede lock). */
export async function tryLock (client: RedisClient, key: string, owner: string, ttlMs: number): Promise<boolean> {
  return (await client.set(key, owner, 'PX', ttlArg(ttlMs), 'NX')) === 'OK'
}

/** SET NX PX plus INCR of `fenceKey` in one script: the new fencing token, or undefined when the lock is taken. */
export async function tryFencedLock (client: RedisClient, key: string, fenceKey: string, owner: string, ttlMs: number): Promise<number | undefined> {
  const token = Number(await runScript(client, ACQUIRE_FENCED, [key, fenceKey], [owner, ttlArg(ttlMs)]))
  return token > 0 ? token : undefined
}

/** Compare-and-delete: true when `owner` held the lock and it is now gone; false when someone else holds it (or nobody). */
export async function releaseLock (client: RedisClient, key: string, owner: string): Promise<boolean> {
  return Number(await runScript(client, RELEASE, [key], [owner])) === 1
}

/** Compare-and-pexpire: true when `owner` still holds the lock, which now expires `ttlMs` from now. */
export async function extendLock (client: RedisClient, key: string, owner: string, ttlMs: number): Promise<boolean> {
  return Number(await runScript(client, EXTEND, [key], [owner, ttlArg(ttlMs)])) === 1
}

/** Where locks live: Redis, or this process in memory mode. Methods reject with FRS_LOCK_UNAVAILABLE when Redis fails. */
export interface LockStore {
  /** The new fencing token, or undefined when another owner holds the lock. */
  acquire: (name: string, owner: string, ttlMs: number) => Promise<number | undefined>
  release: (name: string, owner: string) => Promise<boolean>
  extend: (name: string, owner: string, ttlMs: number) => Promise<boolean>
}

/** Redis keys of a lock name. The counter key extends the lock key, so both hash to the same slot. */
export function lockKeys (name: string): { key: string, fence: string } {
  // A name opening with '}' leaves an empty hash tag ('lock:{}…'), and Redis then hashes each whole key:
  // lock and counter in different slots, CROSSSLOT on Cluster. Such a name is tagged with its digest
  // instead, in a form ('lock:}{') no other name produces; every other name keeps its key.
  const key = name.startsWith('}') ? `lock:}{${createHash('sha256').update(name).digest('hex').slice(0, 16)}}${name}` : `lock:{${name}}`
  return { key, fence: `${key}:fence` }
}

export class RedisLockStore implements LockStore {
  readonly #client: RedisClient
  readonly #bound: CommandBound

  /** `timeoutMs` and `waitLeft` bound each command (CommandBound: REDIS_COMMAND_TIMEOUT + the failover wait left). */
  constructor (client: RedisClient, timeoutMs: number, waitLeft?: () => number) {
    this.#client = client
    this.#bound = new CommandBound(timeoutMs, codes.FRS_LOCK_UNAVAILABLE, waitLeft)
  }

  acquire (name: string, owner: string, ttlMs: number): Promise<number | undefined> {
    const { key, fence } = lockKeys(name)
    return this.#bound.run(() => tryFencedLock(this.#client, key, fence, owner, ttlMs), `acquire lock ${JSON.stringify(name)}`)
  }

  release (name: string, owner: string): Promise<boolean> {
    return this.#bound.run(() => releaseLock(this.#client, lockKeys(name).key, owner), `release lock ${JSON.stringify(name)}`)
  }

  extend (name: string, owner: string, ttlMs: number): Promise<boolean> {
    return this.#bound.run(() => extendLock(this.#client, lockKeys(name).key, owner, ttlMs), `extend lock ${JSON.stringify(name)}`)
  }
}

/** In-process locks for memory mode: same semantics, one process only. */
export class MemoryLockStore implements LockStore {
  readonly #held = new Map<string, { owner: string, expiresAt: number }>()
  readonly #fences = new Map<string, number>()

  async acquire (name: string, owner: string, ttlMs: number): Promise<number | undefined> {
    if (this.#holder(name) !== undefined) return undefined
    this.#held.set(name, { owner, expiresAt: Date.now() + Math.max(1, ttlMs) })
    const token = (this.#fences.get(name) ?? 0) + 1
    this.#fences.set(name, token)
    return token
  }

  async release (name: string, owner: string): Promise<boolean> {
    if (this.#holder(name) !== owner) return false
    this.#held.delete(name)
    return true
  }

  async extend (name: string, owner: string, ttlMs: number): Promise<boolean> {
    const lock = this.#held.get(name)
    if (lock === undefined || this.#holder(name) !== owner) return false
    lock.expiresAt = Date.now() + Math.max(1, ttlMs)
    return true
  }

  #holder (name: string): string | undefined {
    const lock = this.#held.get(name)
    if (lock === undefined) return undefined
    if (lock.expiresAt <= Date.now()) {
      this.#held.delete(name)
      return undefined
    }
    return lock.owner
  }
}
