// Key layout. Sessions are stored under a hash of their id, not the id itself: the ids in a Redis dump,
// a MONITOR trace or the session list the API returns are useless as cookies. Every multi-command
// write touches one key per command (or one key per script), so the layout works on Redis Cluster as is;
// user indexes carry the user id as a hash tag only so that related tooling can group them.
//
//   sess:{<handle>}            hash: d:<field> = JSON of one payload field, m:<meta> = metadata
//   sess:user:{<userId>}       sorted set: handle → expiry (ms), pruned with ZREMRANGEBYSCORE
//   sess:uh:{<userId>}         on Redis >= 7.4 / Valkey >= 9: hash handle → expiry (ms), each field
//                              expiring itself (HPEXPIREAT), so no prune is sent; reads still take the
//                              sorted set's entries written before the server had hash-field expiry
//   sess:exp:{<b>}             16 sorted sets, the expiry ledger of the lifecycle events: handle → a lower
//                              bound of its expiry (ms), written at creation only; the sweep re-scores
//                              live entries from m:exp and claims the ones whose session is gone
//   sess:expu:{<b>}            hash next to it (same slot): handle → user id, for the expired event
//   sess:all:{<b>}             16 sorted sets: handle → expiry (ms), for the total count, b picked by the
//                              handle; written only at sign-in, data changes, sign-out, revocation and
//                              the refresh cadence, never on a plain read. Split so that sign-ins spread
//                              over 16 slots on Cluster instead of all writing one key.
// The client's REDIS_KEY_PREFIX is applied by ioredis on top of these.
import { createHash } from 'node:crypto'

/** The public, non-secret identifier of a session: what lists show and what revoke takes. */
export function sessionHandle (sessionId: string): string {
  return createHash('sha256').update(sessionId).digest('base64url').slice(0, 27)
}

export function sessionKey (handle: string): string {
  return `sess:{${handle}}`
}

/** What every user index key starts with (the load script builds the rest as userIndexKey does). */
export const USER_INDEX_PREFIX = 'sess:user:{'

export function userIndexKey (userId: string): string {
  // encodeURIComponent escapes braces, so a user id cannot open or close the hash tag.
  return `${USER_INDEX_PREFIX}${encodeURIComponent(userId)}}`
}

/** The user index as a hash with per-field expiry (Redis >= 7.4, Valkey >= 9). */
export const USER_HASH_INDEX_PREFIX = 'sess:uh:{'

export function userHashIndexKey (userId: string): string {
  return `${USER_HASH_INDEX_PREFIX}${encodeURIComponent(userId)}}`
}

const ALL_SESSIONS_BUCKETS = 16

/** The bucket of the total index that holds this session (the handle is a uniform hash). */
export function allSessionsKey (handle: string): string {
  return `sess:all:{${(handle.charCodeAt(0) || 0) % ALL_SESSIONS_BUCKETS}}`
}

/** The expiry ledger bucket of a session and its user hash (one slot: the same {b} tag). */
export function expiryLedgerKeys (handle: string): readonly [string, string] {
  const b = (handle.charCodeAt(0) || 0) % ALL_SESSIONS_BUCKETS
  return EXPIRY_LEDGER_KEYS[b] as readonly [string, string]
}

/** Every expiry ledger bucket with its user hash: the sweep reads them all. */
export const EXPIRY_LEDGER_KEYS: ReadonlyArray<readonly [string, string]> = Object.freeze(
  Array.from({ length: ALL_SESSIONS_BUCKETS }, (_, b) => Object.freeze([`sess:exp:{${b}}`, `sess:expu:{${b}}`] as const)))

/** Every bucket of the total index: countAll() adds them up. */
export const ALL_SESSIONS_KEYS: readonly string[] = Object.freeze(
  Array.from({ length: ALL_SESSIONS_BUCKETS }, (_, b) => `sess:all:{${b}}`))

/** Hash field prefixes: payload fields and metadata never collide whatever the payload's names. */
export const DATA_PREFIX = 'd:'
export const META = {
  created: 'm:created',
  seen: 'm:seen',
  absolute: 'm:abs',
  expires: 'm:exp',
  user: 'm:user',
  ip: 'm:ip',
  userAgent: 'm:ua',
  cookie: 'm:cookie'
} as const
