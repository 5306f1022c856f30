// Sessions in Redis. Writes to a user's index go first (or in the same script), so a session whose
// expiry moved is always findable by revokeAll().
//
// A read is one command. On a standalone server or Sentinel it is LOAD_LUA: it reads the session and,
// when the session is due for refresh, refreshes it in the same call (expiry, last-seen time, the
// user's index and the total index bucket: one atomic script, no slot constraint). While this instance
// knows the session cannot be due yet (it read or wrote its last-seen time less than a cadence ago),
// the read is a plain HGETALL instead: one command executed, no script. On Cluster the
// user's index lives in another slot and the user is only known once the session is read, so the read
// is a plain HGETALL and a due session is refreshed by a second call (the store's touch); that happens
// once per refresh cadence per session, never on a read that is not due.
//
// Reads that start in the same event-loop turn go out in one socket write (corked), as ioredis'
// auto-pipelining would do: under load a write syscall per read was the largest cost of a read.
import type { Writable } from 'node:stream'
import type { Cluster, Redis } from 'ioredis'
import {
  ALL_SESSIONS_KEYS, allSessionsKey, DATA_PREFIX, EXPIRY_LEDGER_KEYS, expiryLedgerKeys, META, sessionKey, USER_HASH_INDEX_PREFIX, USER_INDEX_PREFIX, userHashIndexKey, userIndexKey
} from './keys.js'
import type {
  DestroyResult, ExpiredSession, IndexedSession, LoadRefresh, SessionBackend, SessionMeta, SessionWrite, StoredSession, WriteResult
} from './types.js'

export type RedisClient = Redis | Cluster

// KEYS[1] the session hash. ARGV: mode (r|u), now, ttl, #set, #setIfAbsent, set pairs, setIfAbsent
// pairs, then fields to delete. Returns { the TTL applied or 0 when nothing was written, 1 when the
// write created the session (it did not exist before) else 0 }.
const WRITE_LUA = `
local key = KEYS[1]
local now, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
local nSet, nNx = tonumber(ARGV[4]), tonumber(ARGV[5])
local exists = redis.call('EXISTS', key) == 1
if ARGV[1] == 'u' and not exists then return { 0, 0 } end
local setStart, nxStart, delStart = 6, 6 + 2 * nSet, 6 + 2 * nSet + 2 * nNx
if ARGV[1] == 'r' and exists then
  local keep = {}
  for i = setStart, nxStart - 1, 2 do keep[ARGV[i]] = true end
  for _, field in ipairs(redis.call('HKEYS', key)) do
    if string.sub(field, 1, 2) == '${DATA_PREFIX}' and not keep[field] then redis.call('HDEL', key, field) end
  end
end
if nSet > 0 then redis.call('HSET', key, unpack(ARGV, setStart, nxStart - 1)) end
for i = nxStart, delStart - 1, 2 do redis.call('HSETNX', key, ARGV[i], ARGV[i + 1]) end
if #ARGV >= delStart then redis.call('HDEL', key, unpack(ARGV, delStart, #ARGV)) end
local absolute = tonumber(redis.call('HGET', key, '${META.absolute}'))
if absolute then ttl = math.min(ttl, absolute - now) end
if ttl < 1 then
  redis.call('DEL', key)
  return { 0, 0 }
end
redis.call('HSET', key, '${META.expires}', string.format('%.0f', now + ttl))
redis.call('PEXPIRE', key, string.format('%.0f', ttl))
return { ttl, exists and 0 or 1 }
`

// The expiry ledger (keys.ts). KEYS[1] a ledger bucket, KEYS[2] its user hash (same slot).
// LEDGER_ADD ARGV: score, handle, '1' and the user id, or '0', then a cutoff: up to 100 entries due
// before it are dropped (no sweep ran for LEDGER_GRACE_MS: a store used without the plugin's sweep, or
// every instance down that long), so the ledger stays bounded. LEDGER_DEL ARGV: handles.
const LEDGER_ADD_LUA = `
local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[5], 'LIMIT', 0, 100)
if #stale > 0 then
  redis.call('ZREM', KEYS[1], unpack(stale))
  redis.call('HDEL', KEYS[2], unpack(stale))
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] == '1' then redis.call('HSET', KEYS[2], ARGV[2], ARGV[4]) else redis.call('HDEL', KEYS[2], ARGV[2]) end
return 1
`
const LEDGER_DEL_LUA = `
redis.call('ZREM', KEYS[1], unpack(ARGV))
redis.call('HDEL', KEYS[2], unpack(ARGV))
return 1
`
// LEDGER_CLAIM ARGV: now, claimed-until, then handles whose session is gone. Each one still due (score
// ≤ now: not claimed by another instance meanwhile) is moved to claimed-until; returns { handle, user
// or false, … } for those this call claimed.
const LEDGER_CLAIM_LUA = `
local now, out = tonumber(ARGV[1]), {}
for i = 3, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) <= now then
    redis.call('ZADD', KEYS[1], ARGV[2], ARGV[i])
    out[#out + 1] = ARGV[i]
    out[#out + 1] = redis.call('HGET', KEYS[2], ARGV[i])
  end
end
return out
`

// KEYS[1] an index. ARGV: now, expiresAt, handle, ttl. Expired entries go first, so the set holds
// live sessions only; the key itself expires with its longest-lived entry.
const INDEX_ADD_LUA = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
local ttl = tonumber(ARGV[4])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
return redis.call('ZCARD', KEYS[1])
`

// KEYS[1] a user's hash index (Redis >= 7.4 / Valkey >= 9). ARGV: expiresAt, handle. The field expires
// itself: no prune, no key expiry to keep (a hash whose last field expired is gone). Returns the fields
// held, which may still count some past their expiry and not yet reclaimed: the cap re-lists before revoking.
const USER_HASH_ADD_LUA = `
redis.call('HSET', KEYS[1], ARGV[2], ARGV[1])
redis.call('HPEXPIREAT', KEYS[1], ARGV[1], 'FIELDS', 1, ARGV[2])
return redis.call('HLEN', KEYS[1])
`

// KEYS[1] the session hash. ARGV[1] the owner ('' for any). Returns { deleted (0|1), user or '' }.
const DESTROY_LUA = `
local user = redis.call('HGET', KEYS[1], '${META.user}') or ''
if ARGV[1] ~= '' and user ~= ARGV[1] then return { 0, user } end
return { redis.call('DEL', KEYS[1]), user }
`

// KEYS[1] the session hash, KEYS[2] its total index bucket, KEYS[3] its expiry ledger bucket. ARGV: now, refreshEvery, idleTimeout, ttl
// (SESSION_TTL), the key prefix of user indexes (the client's keyPrefix included), the handle, 'h'
// when the user index is the hash with field expiry (its prefix then given in ARGV[5]), 'z' otherwise,
// and SESSION_MAX_LIFETIME (the cap of a chosen max age, which is also that session's idle timeout).
// Returns { the hash as HGETALL returns it, the TTL applied by a refresh or 0 }. A session that is not
// due, already past a timeout or missing metadata is returned as read, untouched (the store discards
// the expired ones). The TTL rule is the store's #ttl(): the cookie's expiry or max age (capped by
// SESSION_TTL), the idle timeout and the absolute deadline, whichever comes first. The user index key
// is built here as userIndexKey() builds it (encodeURIComponent of the user id, on its UTF-8 bytes);
// on a standalone server a script may touch keys it did not declare.
const LOAD_LUA = `
local h = redis.call('HGETALL', KEYS[1])
local now, every = tonumber(ARGV[1]), tonumber(ARGV[2])
local seen, abs, cookie, user
for i = 1, #h, 2 do
  local f = h[i]
  if f == '${META.seen}' then seen = tonumber(h[i + 1])
  elseif f == '${META.absolute}' then abs = tonumber(h[i + 1])
  elseif f == '${META.cookie}' then cookie = h[i + 1]
  elseif f == '${META.user}' then user = h[i + 1] end
end
if not seen or not abs or not cookie or now - seen < every then return { h, 0 } end
local idle, cap = tonumber(ARGV[3]), tonumber(ARGV[4])
local left = cap
local ok, lifetime = pcall(cjson.decode, cookie)
if ok and type(lifetime) == 'table' then
  if type(lifetime.maxAge) == 'number' and lifetime.chosen == true then
    left = math.min(lifetime.maxAge, tonumber(ARGV[8]))
    idle = left
  elseif type(lifetime.maxAge) == 'number' then left = math.min(lifetime.maxAge, cap)
  elseif type(lifetime.expires) == 'number' then left = lifetime.expires - now
  elseif type(lifetime.originalMaxAge) == 'number' then left = math.min(lifetime.originalMaxAge, cap) end
end
if now - seen >= idle or now >= abs then return { h, 0 } end
local ttl = math.floor(math.min(left, idle, abs - now))
if ttl < 1 then return { h, 0 } end
local expiresAt = string.format('%.0f', now + ttl)
local function index (key)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1])
  redis.call('ZADD', key, expiresAt, ARGV[6])
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end
if user then
  local userKey = ARGV[5] .. string.gsub(user, "[^A-Za-z0-9%-_%.!~%*'%(%)]", function (c) return string.format('%%%02X', string.byte(c)) end) .. '}'
  if ARGV[7] == 'h' then
    redis.call('HSET', userKey, ARGV[6], expiresAt)
    redis.call('HPEXPIREAT', userKey, expiresAt, 'FIELDS', 1, ARGV[6])
  else
    index(userKey)
  end
end
local before = nil
for i = 1, #h, 2 do if h[i] == '${META.expires}' then before = tonumber(h[i + 1]) end end
-- A shorter expiry than before (a shortened timeout): the expiry ledger (same slot as KEYS[2]) follows.
if before and now + ttl < before then redis.call('ZADD', KEYS[3], 'XX', 'LT', expiresAt, ARGV[6]) end
redis.call('HSET', KEYS[1], '${META.seen}', ARGV[1], '${META.expires}', expiresAt)
redis.call('PEXPIRE', KEYS[1], ttl)
index(KEYS[2])
return { h, ttl }
`

interface ScriptedClient {
  sessionLoad: (key: string, bucket: string, ledger: string, now: string, every: string, idle: string, ttl: string, userPrefix: string, handle: string, indexKind: 'h' | 'z', maxLifetime: string) => Promise<[string[], number]>
  sessionUserHashAdd: (key: string, expiresAt: string, handle: string) => Promise<number>
  sessionWrite: (key: string, ...args: string[]) => Promise<[number, number]>
  sessionLedgerAdd: (ledger: string, users: string, score: string, handle: string, hasUser: '0' | '1', userId: string, cutoff: string) => Promise<number>
  sessionLedgerDel: (ledger: string, users: string, ...handles: string[]) => Promise<number>
  sessionLedgerClaim: (ledger: string, users: string, now: string, until: string, ...handles: string[]) => Promise<Array<string | null>>
  sessionIndexAdd: (key: string, now: string, expiresAt: string, handle: string, ttl: string) => Promise<number>
  sessionDestroy: (key: string, owner: string) => Promise<[number, string]>
}

const META_FIELDS = [META.created, META.seen, META.absolute, META.expires, META.user, META.ip, META.userAgent, META.cookie]

export class RedisSessionBackend implements SessionBackend {
  readonly kind = 'redis'
  readonly #client: RedisClient & ScriptedClient

  constructor (client: RedisClient) {
    // defineCommand runs EVALSHA with an EVAL fallback after NOSCRIPT and applies the keyPrefix to KEYS.
    const scripted = client as RedisClient & Partial<ScriptedClient>
    if (scripted.sessionWrite === undefined) {
      client.defineCommand('sessionWrite', { numberOfKeys: 1, lua: WRITE_LUA })
      client.defineCommand('sessionIndexAdd', { numberOfKeys: 1, lua: INDEX_ADD_LUA })
      client.defineCommand('sessionDestroy', { numberOfKeys: 1, lua: DESTROY_LUA })
      client.defineCommand('sessionLoad', { numberOfKeys: 3, lua: LOAD_LUA })
      client.defineCommand('sessionUserHashAdd', { numberOfKeys: 1, lua: USER_HASH_ADD_LUA })
      client.defineCommand('sessionLedgerAdd', { numberOfKeys: 2, lua: LEDGER_ADD_LUA })
      client.defineCommand('sessionLedgerDel', { numberOfKeys: 2, lua: LEDGER_DEL_LUA })
      client.defineCommand('sessionLedgerClaim', { numberOfKeys: 2, lua: LEDGER_CLAIM_LUA })
    }
    this.#client = client as RedisClient & ScriptedClient
    this.#standalone = !client.isCluster
    const keyPrefix = (client as Redis).options?.keyPrefix ?? ''
    this.#userPrefix = `${keyPrefix}${USER_INDEX_PREFIX}`
    this.#userHashPrefix = `${keyPrefix}${USER_HASH_INDEX_PREFIX}`
  }

  readonly #standalone: boolean
  /** The user index key up to its hash tag, as the server sees it (keyPrefix included). */
  readonly #userPrefix: string
  readonly #userHashPrefix: string
  /** The server has hash-field expiry: user indexes are written as hashes whose fields expire themselves. */
  #hashFieldExpiry = false
  /**
   * Hash indexes may exist: set once the flag was ever on, and never cleared. Reads, revocations and
   * counts then take both index forms, so a failover to an older server (or a probe that read the
   * flag as off) never hides a session written to the hash index from revokeAll or the per-user cap.
   */
  #hashIndexes = false

  /** Set from what the server says at each connect (detectHashFieldExpiry): it decides how new entries are written. */
  useHashFieldExpiry (on: boolean): void {
    this.#hashFieldExpiry = on
    if (on) this.#hashIndexes = true
  }

  get hashFieldExpiry (): boolean {
    return this.#hashFieldExpiry
  }

  /** Reads waiting for the end of this event-loop turn, to go out in one write. */
  #batch: PendingLoad[] | undefined
  /**
   * The last-seen time this instance last read or wrote, per session (bounded). m:seen only moves
   * forward, so it is a lower bound of the stored one: while it says "not due", the read is a plain
   * HGETALL (1 command executed instead of a script and its HGETALL); otherwise the script decides.
   */
  readonly #seen = new Map<string, number>()

  async load (handle: string, refresh?: LoadRefresh): Promise<StoredSession | undefined> {
    if (!this.#standalone) return parseHash(await this.#client.hgetall(sessionKey(handle)))
    const known = this.#seen.get(handle)
    const script = refresh !== undefined && (known === undefined || refresh.now - known >= refresh.every)
    const args: LoadArgs | undefined = script
      ? [sessionKey(handle), allSessionsKey(handle), expiryLedgerKeys(handle)[0], String(refresh.now), String(refresh.every), String(refresh.idleTimeout), String(refresh.ttl),
          this.#hashFieldExpiry ? this.#userHashPrefix : this.#userPrefix, handle, this.#hashFieldExpiry ? 'h' : 'z', String(refresh.maxLifetime)]
      : undefined
    const reply = await new Promise<unknown>((resolve, reject) => {
      if (this.#batch === undefined) {
        this.#batch = []
        setImmediate(this.#flush)
      }
      this.#batch.push({ key: sessionKey(handle), args, resolve, reject })
    })
    if (!script) {
      const stored = parseHash(reply as Record<string, string>)
      if (stored === undefined) this.#seen.delete(handle)
      return stored
    }
    const [flat, ttl] = reply as [string[], number]
    const stored = parseFlatHash(flat)
    if (stored === undefined) {
      this.#seen.delete(handle)
      return undefined
    }
    if (Number(ttl) < 1) {
      this.#remember(handle, stored.meta.seenAt)
      return stored
    }
    this.#remember(handle, refresh.now)
    stored.refreshedTtl = Number(ttl)
    return stored
  }

  #remember (handle: string, seenAt: number): void {
    if (!this.#standalone) return
    if (this.#seen.size >= MAX_SEEN && !this.#seen.has(handle)) {
      const oldest = this.#seen.keys().next().value // insertion order: a bounded map without LRU upkeep
      if (oldest !== undefined) this.#seen.delete(oldest)
    }
    this.#seen.set(handle, seenAt)
  }

  /**
   * Sends the batched reads as plain commands between cork() and uncork() of the connection's socket:
   * Node then hands them to the kernel in one writev. Same effect as a pipeline without building one
   * (ioredis copies every script defined on the client into each Pipeline). When the connection is
   * not ready the commands take ioredis' usual path (offline queue, failover wait, commandTimeout).
   */
  readonly #flush = (): void => {
    const batch = this.#batch ?? []
    this.#batch = undefined
    const stream = (this.#client as Redis).stream as Writable | undefined
    const cork = batch.length > 1 && this.#client.status === 'ready' && stream?.writable === true
    if (cork) stream.cork()
    try {
      for (const pending of batch) {
        // One send throwing (a client closed under it) must not leave the rest of the batch unsettled.
        try {
          const sent = pending.args === undefined ? this.#client.hgetall(pending.key) : this.#client.sessionLoad(...pending.args)
          sent.then(pending.resolve, pending.reject)
        } catch (err) {
          pending.reject(err)
        }
      }
    } finally {
      if (cork) stream.uncork()
    }
  }

  async write (handle: string, write: SessionWrite): Promise<WriteResult> {
    const expiresAt = write.now + write.ttlMs
    const indexArgs = [String(write.now), String(expiresAt), handle, String(write.ttlMs)] as const
    const set = Object.entries(write.set).flat()
    const setIfAbsent = Object.entries(write.setIfAbsent).flat()
    const args = [write.mode === 'replace' ? 'r' : 'u', String(write.now), String(write.ttlMs),
      String(set.length / 2), String(setIfAbsent.length / 2), ...set, ...setIfAbsent, ...write.del]
    const moved = write.previousUserId !== undefined && write.previousUserId !== write.userId
    // The expiry ledger holds a lower bound of each session's expiry: written when a session may be
    // new (a replace) or changes user, never at a refresh (the sweep re-scores live entries itself).
    const ledger = write.mode === 'replace' || moved || write.shortened === true ? expiryLedgerKeys(handle) : undefined
    // One round trip: the commands go out together. The user's index is written first (on one
    // connection Redis runs them in order), so a session whose expiry moved is always findable by
    // revokeAll(); the total index is only written here, at sign-in, sign-out and the refresh cadence.
    const [userSessions, [applied, created]] = await Promise.all([
      write.userId === undefined
        ? undefined
        : this.#hashFieldExpiry
          ? this.#client.sessionUserHashAdd(userHashIndexKey(write.userId), String(expiresAt), handle)
          : this.#client.sessionIndexAdd(userIndexKey(write.userId), ...indexArgs),
      this.#client.sessionWrite(sessionKey(handle), ...args),
      this.#client.sessionIndexAdd(allSessionsKey(handle), ...indexArgs),
      moved ? this.#userUnindex(write.previousUserId as string, handle) : undefined,
      ledger === undefined
        ? undefined
        : write.mode === 'update' && !moved
          // Only ever lowered (LT), and only for a session the ledger holds (XX).
          ? this.#client.zadd(ledger[0], 'XX', 'LT', String(expiresAt), handle)
          : this.#client.sessionLedgerAdd(ledger[0], ledger[1], String(expiresAt), handle, write.userId === undefined ? '0' : '1', write.userId ?? '', String(write.now - LEDGER_GRACE_MS))
    ])
    if (Number(applied) === 0) {
      this.#seen.delete(handle)
      await Promise.all([
        this.#unindex(handle, write.userId),
        // The session is gone (expired, or destroyed meanwhile): a ledger entry this write moved to the
        // future is brought back to now, so the sweep reports an expiry at once (XX: a destroyed
        // session's entry, removed by its destroy, is not brought back).
        ledger === undefined ? undefined : this.#client.zadd(ledger[0], 'XX', String(write.now), handle)
      ])
    } else if (write.set[META.seen] !== undefined) {
      this.#remember(handle, write.now)
    }
    return { applied: Number(applied), userSessions: userSessions === undefined ? undefined : Number(userSessions), created: Number(created) === 1 }
  }

  async destroy (handle: string, owner?: string): Promise<DestroyResult> {
    this.#seen.delete(handle)
    const ledger = expiryLedgerKeys(handle)
    if (owner === undefined) {
      // Sign-out and regenerate(): one round trip. The total index and expiry ledger entries go with
      // the session; the user's index entry (its user is known from the reply) follows on the same
      // connection without a wait, so a later count or list of that user runs after it.
      const [[deleted, user]] = await Promise.all([
        this.#client.sessionDestroy(sessionKey(handle), ''),
        this.#client.zrem(allSessionsKey(handle), handle),
        this.#client.sessionLedgerDel(ledger[0], ledger[1], handle)
      ])
      if (user !== '') this.#userUnindex(user, handle).catch(() => {}) // a leftover is pruned by list()
      return { deleted: Number(deleted) === 1, userId: user === '' ? undefined : user }
    }
    const [deleted, user] = await this.#client.sessionDestroy(sessionKey(handle), owner)
    if (user !== '' && user !== owner) return { deleted: false, userId: user }
    await Promise.all([this.#unindex(handle, owner), this.#client.sessionLedgerDel(ledger[0], ledger[1], handle)])
    return { deleted: Number(deleted) === 1, userId: owner }
  }

  async claimExpired (now: number, leaseMs: number, limit: number): Promise<ExpiredSession[]> {
    const claimed = await Promise.all(EXPIRY_LEDGER_KEYS.map(async ([ledger, users]) => {
      const due = await this.#client.zrangebyscore(ledger, '-inf', now, 'LIMIT', 0, limit)
      if (due.length === 0) return []
      // Every session has m:created; m:exp is its current expiry (the ledger's score a lower bound of it).
      const metas = await Promise.all(due.map((handle) => this.#client.hmget(sessionKey(handle), META.created, META.expires)))
      const live: string[] = []
      const gone: string[] = []
      due.forEach((handle, i) => {
        const [created, expires] = metas[i] ?? []
        if (created === null || created === undefined) gone.push(handle)
        else live.push(String(Math.max(Number(expires) || now, now)), handle)
      })
      const [, reply] = await Promise.all([
        // Still alive: its entry moves to its current expiry (XX: never re-adds one a destroy removed).
        live.length === 0 ? undefined : this.#client.zadd(ledger, 'XX', 'GT', ...live),
        gone.length === 0 ? [] : this.#client.sessionLedgerClaim(ledger, users, String(now), String(now + leaseMs), ...gone)
      ])
      const mine: ExpiredSession[] = []
      for (let i = 0; i + 1 < reply.length; i += 2) mine.push({ handle: reply[i] as string, userId: reply[i + 1] ?? undefined })
      return mine
    }))
    return claimed.flat()
  }

  async ackExpired (sessions: ExpiredSession[]): Promise<void> {
    const byBucket = new Map<readonly [string, string], string[]>()
    for (const { handle } of sessions) {
      const keys = expiryLedgerKeys(handle)
      const list = byBucket.get(keys)
      if (list === undefined) byBucket.set(keys, [handle])
      else list.push(handle)
    }
    await Promise.all([...byBucket].map(([[ledger, users], handles]) => this.#client.sessionLedgerDel(ledger, users, ...handles)))
  }

  async list (userId: string, now: number): Promise<IndexedSession[]> {
    const key = userIndexKey(userId)
    await this.#client.zremrangebyscore(key, '-inf', now)
    const [indexed, hashed] = await Promise.all([
      this.#client.zrangebyscore(key, now, '+inf'),
      this.#hashIndexes ? this.#liveInHash(userId, now) : []
    ])
    const handles = hashed.length === 0 ? indexed : [...new Set([...indexed, ...hashed])]
    const hashes = await Promise.all(handles.map((handle) => this.#client.hmget(sessionKey(handle), ...META_FIELDS)))
    const live: IndexedSession[] = []
    const gone: string[] = []
    handles.forEach((handle, i) => {
      const meta = parseMeta(Object.fromEntries(META_FIELDS.map((field, j) => [field, hashes[i]?.[j] ?? undefined])))
      if (meta === undefined || meta.userId !== userId) gone.push(handle)
      else live.push({ handle, meta })
    })
    if (gone.length > 0) {
      await Promise.all([
        this.#client.zrem(key, ...gone),
        this.#hashIndexes ? this.#client.hdel(userHashIndexKey(userId), ...gone) : undefined
      ])
    }
    return live
  }

  async count (userId: string, now: number): Promise<number> {
    if (!this.#hashIndexes) return await this.#client.zcount(userIndexKey(userId), now, '+inf')
    // Entries written before the server had field expiry stay in the sorted set until they expire.
    const [indexed, hashed] = await Promise.all([this.#client.zrangebyscore(userIndexKey(userId), now, '+inf'), this.#liveInHash(userId, now)])
    return hashed.length === 0 ? indexed.length : new Set([...indexed, ...hashed]).size
  }

  /** Handles in the user's hash index not past their expiry (a field may outlive it until reclaimed). */
  async #liveInHash (userId: string, now: number): Promise<string[]> {
    const entries = await this.#client.hgetall(userHashIndexKey(userId))
    return Object.keys(entries).filter((handle) => Number(entries[handle]) > now)
  }

  /** Drops a handle from the user's index, in both forms while the sorted set may still hold it. */
  async #userUnindex (userId: string, handle: string): Promise<void> {
    await Promise.all([
      this.#client.zrem(userIndexKey(userId), handle),
      this.#hashIndexes ? this.#client.hdel(userHashIndexKey(userId), handle) : undefined
    ])
  }

  async countAll (now: number): Promise<number> {
    const counts = await Promise.all(ALL_SESSIONS_KEYS.map((key) => this.#client.zcount(key, now, '+inf')))
    return counts.reduce((sum, n) => sum + n, 0)
  }

  async handles (now: number): Promise<string[]> {
    const buckets = await Promise.all(ALL_SESSIONS_KEYS.map((key) => this.#client.zrangebyscore(key, now, '+inf')))
    return buckets.flat()
  }

  async #unindex (handle: string, userId: string | undefined): Promise<void> {
    await Promise.all([
      this.#client.zrem(allSessionsKey(handle), handle),
      userId === undefined ? undefined : this.#userUnindex(userId, handle)
    ])
  }
}

type LoadArgs = [string, string, string, string, string, string, string, string, string, 'h' | 'z', string]
/** A batched read: the script with its arguments, or a plain HGETALL of `key` when args is undefined. */
interface PendingLoad { key: string, args: LoadArgs | undefined, resolve: (reply: unknown) => void, reject: (err: unknown) => void }
const MAX_SEEN = 50_000
/** Expiry ledger entries due longer ago than this were never swept: dropped by the next sign-in to their bucket. */
const LEDGER_GRACE_MS = 3_600_000

/** HGETALL's flat reply (field, value, …) into fields and metadata, without an intermediate object. */
function parseFlatHash (flat: string[]): StoredSession | undefined {
  if (flat.length === 0) return undefined
  const hash: Record<string, string> = {}
  const fields: Record<string, string> = {}
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const field = flat[i] as string
    if (field.startsWith(DATA_PREFIX)) fields[field.slice(DATA_PREFIX.length)] = flat[i + 1] as string
    else hash[field] = flat[i + 1] as string
  }
  const meta = parseMeta(hash)
  return meta === undefined ? undefined : { fields, meta }
}

/** A stored hash back into fields and metadata; a hash missing required metadata counts as gone. */
export function parseHash (hash: Record<string, string>): StoredSession | undefined {
  const meta = parseMeta(hash)
  if (meta === undefined) return undefined
  const fields: Record<string, string> = {}
  for (const field in hash) {
    if (field.startsWith(DATA_PREFIX)) fields[field.slice(DATA_PREFIX.length)] = hash[field] as string
  }
  return { fields, meta }
}

function parseMeta (hash: Record<string, string | undefined>): SessionMeta | undefined {
  const createdAt = Number(hash[META.created])
  const seenAt = Number(hash[META.seen])
  const absoluteAt = Number(hash[META.absolute])
  const expiresAt = Number(hash[META.expires])
  const cookie = hash[META.cookie]
  if (![createdAt, seenAt, absoluteAt, expiresAt].every((n) => Number.isFinite(n) && n > 0) || cookie === undefined) return undefined
  return {
    createdAt,
    seenAt,
    absoluteAt,
    expiresAt,
    userId: hash[META.user] ?? undefined,
    ip: hash[META.ip] ?? undefined,
    userAgent: hash[META.userAgent] ?? undefined,
    cookie
  }
}
