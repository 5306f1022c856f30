// Presence (`app.presence`): who is in a room. One sorted set per room (`presence:<room>`), member =
// user id, score = the expiry in ms on the Redis clock (TIME), so every app instance agrees on it
// whatever their own clocks say. Each operation first drops expired members with ZREMRANGEBYSCORE,
// an O(log n + removed) range delete, never a scan; the key itself expires with its last member.
// Every operation is one script on one key, so rooms spread over Cluster slots.
import { parseDuration, type Duration } from '../config/index.js'
import { CommandBound, runScript, script, type RedisClient } from '../redis/index.js'
import { codes, DurationError, PresenceNameError } from '../errors/index.js'

const MAX_TRACKED_ROOMS = 1_000

/** The Redis key of a room (exported for the suite's key-disjointness test). */
export function presenceKey (room: string): string {
  return `presence:${room}`
}

export interface PresenceMember {
  userId: string
  /** Epoch ms when the member drops out unless refreshed. */
  expiresAt: number
}

export interface JoinResult {
  /** False when the user was already present (the ttl was renewed). */
  joined: boolean
  count: number
  expiresAt: number
}

export interface PresenceStats {
  joins: number
  leaves: number
  failures: number
  /** Last known size of each room this instance touched (at most 1,000 rooms, oldest dropped). */
  sizes: Record<string, number>
}

/** The storage behind Presence: Redis or this process. `now` is the store's clock. */
export interface PresenceStore {
  /** mode 'refresh' renews only a present member: returns present = false otherwise. */
  touch: (room: string, userId: string, ttlMs: number, mode: 'join' | 'refresh') => Promise<{ present: boolean, count: number, expiresAt: number }>
  leave: (room: string, userId: string) => Promise<{ removed: boolean, count: number }>
  list: (room: string) => Promise<PresenceMember[]>
  count: (room: string) => Promise<number>
}

const PRUNE = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now))
-- The key lives as long as its longest-lived member.
local function expireKey ()
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  if last[2] then redis.call('PEXPIREAT', KEYS[1], last[2]) end
end
`

const TOUCH = script(PRUNE + `
local present = redis.call('ZSCORE', KEYS[1], ARGV[1])
if ARGV[3] == 'refresh' and not present then return { 0, redis.call('ZCARD', KEYS[1]), 0 } end
local expires = string.format('%.0f', now + tonumber(ARGV[2]))
redis.call('ZADD', KEYS[1], expires, ARGV[1])
expireKey()
return { present and 1 or 0, redis.call('ZCARD', KEYS[1]), expires }
`)

const LEAVE = script(PRUNE + `
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
return { removed, redis.call('ZCARD', KEYS[1]) }
`)

const LIST = script(PRUNE + `
return redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
`)

const COUNT = script(PRUNE + `
return redis.call('ZCARD', KEYS[1])
`)

export class RedisPresenceStore implements PresenceStore {
  readonly #client: RedisClient
  readonly #bound: CommandBound

  /** `timeoutMs` and `waitLeft` bound each command (CommandBound: REDIS_COMMAND_TIMEOUT + the failover wait left). */
  constructor (client: RedisClient, timeoutMs: number, waitLeft?: () => number) {
    this.#client = client
    this.#bound = new CommandBound(timeoutMs, codes.FRS_PRESENCE_UNAVAILABLE, waitLeft)
  }

  async touch (room: string, userId: string, ttlMs: number, mode: 'join' | 'refresh'): Promise<{ present: boolean, count: number, expiresAt: number }> {
    const reply = await this.#run(TOUCH, room, [userId, String(ttlMs), mode], mode)
    const [present, count, expiresAt] = (reply as unknown[]).map(Number)
    // For a join, `present` says whether the user was there before; for a refresh, whether it is now.
    return { present: mode === 'join' ? present === 1 : expiresAt !== 0, count: count ?? 0, expiresAt: expiresAt ?? 0 }
  }

  async leave (room: string, userId: string): Promise<{ removed: boolean, count: number }> {
    const [removed, count] = (await this.#run(LEAVE, room, [userId], 'leave') as unknown[]).map(Number)
    return { removed: removed === 1, count: count ?? 0 }
  }

  async list (room: string): Promise<PresenceMember[]> {
    const flat = await this.#run(LIST, room, [], 'list') as string[]
    const members: PresenceMember[] = []
    for (let i = 0; i + 1 < flat.length; i += 2) members.push({ userId: String(flat[i]), expiresAt: Number(flat[i + 1]) })
    return members
  }

  async count (room: string): Promise<number> {
    return Number(await this.#run(COUNT, room, [], 'count'))
  }

  #run (s: ReturnType<typeof script>, room: string, args: string[], what: string): Promise<unknown> {
    return this.#bound.run(() => runScript(this.#client, s, [presenceKey(room)], args), `presence ${what} in room ${JSON.stringify(room)}`)
  }
}

/** Presence for memory mode: one process only, same semantics. */
export class MemoryPresenceStore implements PresenceStore {
  readonly #rooms = new Map<string, Map<string, number>>()

  async touch (room: string, userId: string, ttlMs: number, mode: 'join' | 'refresh'): Promise<{ present: boolean, count: number, expiresAt: number }> {
    const members = this.#pruned(room)
    const present = members.has(userId)
    if (mode === 'refresh' && !present) return { present: false, count: members.size, expiresAt: 0 }
    const expiresAt = Date.now() + ttlMs
    members.set(userId, expiresAt)
    this.#rooms.set(room, members)
    return { present: mode === 'join' ? present : true, count: members.size, expiresAt }
  }

  async leave (room: string, userId: string): Promise<{ removed: boolean, count: number }> {
    const members = this.#pruned(room)
    const removed = members.delete(userId)
    if (members.size === 0) this.#rooms.delete(room)
    return { removed, count: members.size }
  }

  async list (room: string): Promise<PresenceMember[]> {
    return [...this.#pruned(room)].map(([userId, expiresAt]) => ({ userId, expiresAt }))
      .sort((a, b) => a.expiresAt - b.expiresAt)
  }

  async count (room: string): Promise<number> {
    return this.#pruned(room).size
  }

  #pruned (room: string): Map<string, number> {
    const members = this.#rooms.get(room) ?? new Map<string, number>()
    const now = Date.now()
    for (const [userId, expiresAt] of members) if (expiresAt <= now) members.delete(userId)
    if (members.size === 0) this.#rooms.delete(room)
    return members
  }
}

export interface PresenceOptions {
  store: PresenceStore
  /** Default 5m. */
  defaultTtl?: Duration
}

export class Presence {
  readonly #store: PresenceStore
  readonly #defaultTtl: number
  readonly #sizes = new Map<string, number>()
  readonly #counts = { joins: 0, leaves: 0, failures: 0 }

  constructor (options: PresenceOptions) {
    this.#store = options.store
    this.#defaultTtl = parseDuration(options.defaultTtl ?? '5m', 'defaultTtl')
  }

  /** Marks `userId` present in `room` for `ttl` (default 5 minutes); joining again renews the ttl. */
  async join (room: string, userId: string, options: { ttl?: Duration } = {}): Promise<JoinResult> {
    const result = await this.#touch(room, userId, options.ttl, 'join')
    if (!result.present) this.#counts.joins++
    return { joined: !result.present, count: result.count, expiresAt: result.expiresAt }
  }

  /** Renews a present member's ttl. False when the user is not present (expired or left): join again. */
  async refresh (room: string, userId: string, options: { ttl?: Duration } = {}): Promise<boolean> {
    return (await this.#touch(room, userId, options.ttl, 'refresh')).present
  }

  async leave (room: string, userId: string): Promise<boolean> {
    validate(room, 'room')
    validate(userId, 'userId')
    const { removed, count } = await this.#tracked(this.#store.leave(room, userId))
    if (removed) this.#counts.leaves++
    this.#remember(room, count)
    return removed
  }

  /** Members present now, soonest to expire first. */
  async list (room: string): Promise<PresenceMember[]> {
    validate(room, 'room')
    const members = await this.#tracked(this.#store.list(room))
    this.#remember(room, members.length)
    return members
  }

  async count (room: string): Promise<number> {
    validate(room, 'room')
    const count = await this.#tracked(this.#store.count(room))
    this.#remember(room, count)
    return count
  }

  stats (): PresenceStats {
    return { ...this.#counts, sizes: Object.fromEntries(this.#sizes) }
  }

  async #touch (room: string, userId: string, ttl: Duration | undefined, mode: 'join' | 'refresh'): Promise<{ present: boolean, count: number, expiresAt: number }> {
    validate(room, 'room')
    validate(userId, 'userId')
    const ttlMs = parseDuration(ttl ?? this.#defaultTtl, 'ttl')
    if (ttlMs < 1) throw new DurationError('ttl must be at least 1 ms')
    const result = await this.#tracked(this.#store.touch(room, userId, ttlMs, mode))
    this.#remember(room, result.count)
    return result
  }

  async #tracked<T> (operation: Promise<T>): Promise<T> {
    try {
      return await operation
    } catch (err) {
      this.#counts.failures++
      throw err
    }
  }

  #remember (room: string, count: number): void {
    this.#sizes.delete(room)
    if (count === 0) return
    this.#sizes.set(room, count)
    if (this.#sizes.size > MAX_TRACKED_ROOMS) this.#sizes.delete(this.#sizes.keys().next().value as string)
  }
}

function validate (value: string, what: string): void {
  if (typeof value !== 'string' || value.length === 0 || value.length > 512) {
    throw new PresenceNameError(`A presence ${what} must be a string of 1 to 512 characters, got ${JSON.stringify(value)}`)
  }
}
