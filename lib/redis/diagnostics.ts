// Start-up checks of the server's own settings. Sessions and rate limits must not be evicted or lost
// on restart; managed Redis often ships allkeys-lru and no persistence. Denied by the ACL → skip quietly.
import type { Cluster, Redis } from 'ioredis'

/**
 * Commands sent to learn what the server allows, whose refusal is an answer, not an error: ioredis'
 * CLIENT SETINFO at connect (Redis < 7.2 has none) and the settings check's CONFIG GET (denied by
 * managed Redis and the least-privilege ACL). Metrics leave them out of the command error counts, so a
 * healthy 7.0 or a locked-down user raises no alert. Matched on the exact arguments the probe sends:
 * the app's own CONFIG GET still counts.
 */
const CAPABILITY_PROBES: ReadonlyArray<readonly [command: string, first: string, second?: string]> = [
  ['client', 'setinfo'],
  ['config', 'get', 'maxmemory-policy']
]

export function isCapabilityProbe (command: string, args: ReadonlyArray<unknown>): boolean {
  // Runs for every command the metrics observe: anything not six letters starting with c/C (every
  // GET, EVALSHA…) is decided here, before any lower-casing.
  if (command.length !== 6 || (command.charCodeAt(0) | 0x20) !== 99) return false
  for (const [name, first, second] of CAPABILITY_PROBES) {
    if (command.toLowerCase() !== name || String(args[0]).toLowerCase() !== first) continue
    if (second === undefined || String(args[1]).toLowerCase() === second) return true
  }
  return false
}

/**
 * Hash-field expiry (HPEXPIREAT): Redis 7.4 and Valkey 9. Read from INFO (every user may run it; a
 * COMMAND INFO probe would need another ACL right). Valkey reports redis_version 7.2.4 whatever its
 * own version, so valkey_version decides there. Rejects when INFO cannot be read.
 */
export async function detectHashFieldExpiry (client: Redis | Cluster): Promise<boolean> {
  const node = client.isCluster ? (client as Cluster).nodes('master')[0] : client as Redis
  if (node === undefined) return false
  // A failed INFO (a timeout during a reconnect, an ACL without INFO) rejects: the caller keeps what it knew.
  const info = await node.info('server')
  const version = (name: string): [number, number] | undefined => {
    const match = new RegExp(`^${name}:(\\d+)\\.(\\d+)`, 'm').exec(info)
    return match === null ? undefined : [Number(match[1]), Number(match[2])]
  }
  const valkey = version('valkey_version')
  if (valkey !== undefined) return valkey[0] >= 9
  const redis = version('redis_version')
  return redis !== undefined && (redis[0] > 7 || (redis[0] === 7 && redis[1] >= 4))
}

export interface DiagnosticsLogger {
  warn: (obj: object, msg: string) => void
  debug: (obj: object, msg: string) => void
}

export interface ServerSettings {
  maxmemoryPolicy?: string
  appendonly?: string
  save?: string
}

/**
 * CONFIG GET first (it knows the save points); managed Redis and the suite's least-privilege ACL user
 * (lib/redis/acl.ts) deny it, so INFO, which every user may run, answers the eviction policy and the
 * AOF switch. The save points are not in INFO: left unknown, so no persistence warning on a guess.
 */
export async function readServerSettings (client: Redis | Cluster): Promise<ServerSettings | undefined> {
  const node = client.isCluster ? (client as Cluster).nodes('master')[0] : client as Redis
  if (node === undefined) return undefined
  const fromConfig = await node.call('CONFIG', 'GET', 'maxmemory-policy', 'appendonly', 'save').then((pairs) => {
    // RESP3 answers CONFIG GET with a map; RESP2 with a flat list.
    const fields = Array.isArray(pairs) ? Object.fromEntries(chunk(pairs as string[])) : pairs as Record<string, string>
    return { maxmemoryPolicy: fields['maxmemory-policy'], appendonly: fields.appendonly, save: fields.save }
  }, () => undefined)
  if (fromConfig !== undefined) return fromConfig
  return await node.info().then((text) => {
    const fields = new Map(text.split('\r\n').flatMap((line) => {
      const at = line.indexOf(':')
      return at > 0 ? [[line.slice(0, at), line.slice(at + 1)] as const] : []
    }))
    const aof = fields.get('aof_enabled')
    return { maxmemoryPolicy: fields.get('maxmemory_policy'), appendonly: aof === undefined ? undefined : aof === '1' ? 'yes' : 'no' }
  }, () => undefined)
}

/** Warnings for settings that put sessions and rate limits at risk. */
export function settingWarnings (settings: ServerSettings): string[] {
  const warnings: string[] = []
  if (settings.maxmemoryPolicy !== undefined && settings.maxmemoryPolicy !== 'noeviction') {
    warnings.push(`maxmemory-policy is ${settings.maxmemoryPolicy}: sessions and rate-limit counters can be evicted under memory pressure; use noeviction here and put the cache on its own instance (REDIS_CACHE_URL)`)
  }
  if (settings.appendonly === 'no' && settings.save?.trim() === '') {
    warnings.push('persistence is off (appendonly no, no save points): every session is lost when Redis restarts; enable appendonly with appendfsync everysec')
  }
  return warnings
}

export async function checkServerSettings (client: Redis | Cluster, log: DiagnosticsLogger): Promise<string[]> {
  const settings = await readServerSettings(client)
  if (settings === undefined) {
    log.debug({}, 'Redis settings not checked: neither CONFIG GET nor INFO answered')
    return []
  }
  const warnings = settingWarnings(settings)
  for (const warning of warnings) log.warn({ redis: settings }, warning)
  return warnings
}

function chunk (list: string[]): Array<[string, string]> {
  const pairs: Array<[string, string]> = []
  for (let i = 0; i + 1 < list.length; i += 2) pairs.push([list[i] as string, list[i + 1] as string])
  return pairs
}
