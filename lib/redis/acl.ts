// The least-privilege ACL rule for the suite's Redis user, in one place: the README prints it and
// test/lib/redis/acl.test.ts runs the whole surface as that user against a real redis-server.
// Derived from what the suite sends (INFO commandstats after that test's surface run), not from
// categories: `+@scripting` would allow FUNCTION FLUSH and SCRIPT FLUSH, `+@keyspace` SCAN, RANDOMKEY
// and KEYS, and `&*` publishing to any channel.
import { AclRuleError } from '../errors/index.js'

/** App channels sit under this segment after the app's prefix (`<REDIS_KEY_PREFIX>ps:<name>`), apart from the suite's own channels. */
export const PUBSUB_CHANNEL_SEGMENT = 'ps:'

/** Every command the suite sends, lower case, `command|subcommand` where only one subcommand is needed. */
export const SUITE_ACL_COMMANDS: readonly string[] = Object.freeze([
  // connection set-up (ready check: INFO), the health monitor, Cluster slot discovery and state.
  // CLIENT SETINFO: ioredis names its library at every connect to a server that has it (Redis >= 7.2,
  // Valkey); refused, it leaves one ACL-log entry per connection. It only labels the connection.
  'auth', 'hello', 'ping', 'client|setname', 'client|setinfo', 'info', 'quit', 'cluster|slots', 'cluster|info',
  // strings and counters: cache entries, tag versions, rate-limit counters, locks
  'get', 'mget', 'set', 'del', 'exists', 'incr', 'incrby', 'pexpire', 'pexpireat', 'pttl', 'time',
  // hashes and sorted sets: sessions and their per-user index, presence, the sliding limiter
  'hget', 'hmget', 'hgetall', 'hkeys', 'hset', 'hsetnx', 'hdel', 'hlen',
  // hash-field expiry of the per-user session index (Redis >= 7.4, Valkey >= 9 only)
  'hpexpireat',
  'zadd', 'zrem', 'zcard', 'zcount', 'zscore', 'zrange', 'zrangebyscore', 'zremrangebyscore',
  // streams (app.pubsub.stream); XPENDING reads the delivery counts of re-claimed entries
  'xadd', 'xgroup|create', 'xreadgroup', 'xack', 'xautoclaim', 'xpending',
  // scripts: run and load only (never SCRIPT FLUSH, never FUNCTION)
  'eval', 'evalsha', 'script|load',
  // pub/sub: cache invalidations and app.pubsub, on channels under the prefix only
  'publish', 'subscribe', 'unsubscribe', 'psubscribe', 'punsubscribe'
])

/** Redis glob characters in a prefix are matched literally. */
function globLiteral (prefix: string): string {
  return prefix.replace(/[\\*?[\]]/g, (c) => `\\${c}`)
}

export interface SuiteAclOptions {
  /**
   * The patterns the app passes to `app.pubsub.psubscribe` (without the prefix). Redis allows
   * PSUBSCRIBE only to a pattern that is literally one of the user's channel rules, so each gets its own.
   */
  patterns?: readonly string[]
  /**
   * REDIS_DB. SELECT is granted only for a database other than 0: key patterns apply in every
   * database, so SELECT would give the user the same key names in all of them.
   */
  db?: number
  /**
   * The server the rule is for: a Redis version ('7.0.15', INFO's redis_version) or 'valkey 8.0.1'
   * (INFO's valkey_version). A server refuses a rule naming a command it does not have, so commands
   * newer than it are left out: CLIENT SETINFO (Redis 7.2) and HPEXPIREAT (Redis 7.4, Valkey 9; the
   * suite uses it only where the server has it). Default: a server with every command.
   */
  serverVersion?: string
}

/** The first version of each product that has a command newer than Redis 7.0. */
const SINCE: Readonly<Record<string, { redis: number, valkey: number }>> = {
  'client|setinfo': { redis: 7.02, valkey: 7.02 },
  hpexpireat: { redis: 7.04, valkey: 9 }
}

function serverHas (command: string, server: string | undefined): boolean {
  const since = SINCE[command]
  if (since === undefined || server === undefined) return true
  const match = /^(valkey\s+)?(\d+)\.(\d+)/i.exec(server.trim())
  if (match === null) return true
  const version = Number(match[2]) + Number(match[3]) / 100
  return version >= (match[1] === undefined ? since.redis : since.valkey)
}

/**
 * The ACL rules for `ACL SETUSER <user> on ><password> <rules>` (or a `user` line in users.acl),
 * for a suite configured with this REDIS_KEY_PREFIX: its keys and channels only, its commands only.
 */
export function suiteAclRule (keyPrefix: string, options: SuiteAclOptions = {}): string {
  if (keyPrefix === '') {
    throw new AclRuleError('suiteAclRule needs the REDIS_KEY_PREFIX the suite runs with (e.g. \'app:\'): with an empty prefix the rule would grant every key and channel (~* &*)')
  }
  const prefix = globLiteral(keyPrefix)
  const patterns = (options.patterns ?? []).map((pattern) => ` &${prefix}${PUBSUB_CHANNEL_SEGMENT}${pattern}`).join('')
  const granted = SUITE_ACL_COMMANDS.filter((command) => serverHas(command, options.serverVersion))
  const commands = (options.db ?? 0) === 0 ? granted : [...granted, 'select']
  return `resetkeys ~${prefix}* resetchannels &${prefix}*${patterns} -@all ${commands.map((c) => `+${c}`).join(' ')}`
}
