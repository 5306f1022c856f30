// Redis refusing commands is a state, not noise: a full noeviction Redis (OOM), a failed snapshot with
// stop-writes-on-bgsave-error (MISCONF), a replica (READONLY) or an ACL that lacks a right (NOPERM)
// answers every write with the same error while PING stays fast. Each refusal is counted by kind; the
// first of an episode is logged once with the reason and the setting to look at; while an episode lasts
// the monitor reports `degraded` with that reason (reads still work, so readiness stays up).
import diagnosticsChannel from 'node:diagnostics_channel'
import type { Cluster, CommandTraceContext, Redis } from 'ioredis'
import { isCapabilityProbe } from './diagnostics.js'

export type RefusalKind = 'oom' | 'misconf' | 'readonly' | 'noperm'
export const REFUSAL_KINDS: readonly RefusalKind[] = ['oom', 'misconf', 'readonly', 'noperm']

/** The reply prefix of each kind, and what an operator should look at. Never the reply itself: NOPERM names keys. */
const REASONS: Readonly<Record<RefusalKind, { prefix: string, reason: string }>> = {
  oom: {
    prefix: 'OOM',
    reason: 'Redis refuses writes (OOM): used memory is over maxmemory and maxmemory-policy is noeviction. Look at maxmemory and maxmemory-policy (INFO memory); put the cache on its own allkeys-lru instance (REDIS_CACHE_URL) or lower its caps'
  },
  misconf: {
    prefix: 'MISCONF',
    reason: 'Redis refuses writes (MISCONF): its last RDB snapshot failed and stop-writes-on-bgsave-error is yes. Look at the Redis log, the disk under its dir setting, and stop-writes-on-bgsave-error'
  },
  readonly: {
    prefix: 'READONLY',
    reason: 'Redis refuses writes (READONLY): the server is a read-only replica. Look at REDIS_URL (it must name the master) or use Sentinel (REDIS_SENTINELS)'
  },
  noperm: {
    prefix: 'NOPERM',
    reason: "Redis refuses commands (NOPERM): the suite's ACL user lacks a command, key or channel. Look at the user's ACL rule (suiteAclRule) and REDIS_KEY_PREFIX"
  }
}

/** The kind of refusal an error is, if it is one. */
export function refusalKind (err: unknown): RefusalKind | undefined {
  if (!(err instanceof Error)) return undefined
  for (const kind of REFUSAL_KINDS) if (err.message.startsWith(REASONS[kind].prefix)) return kind
  return undefined
}

export interface Refusal {
  kind: RefusalKind
  reason: string
  /** Epoch ms of the episode's first refusal. */
  since: number
}

export interface RefusalLogger {
  warn: (obj: object, msg: string) => void
  info: (obj: object, msg: string) => void
}

export interface RefusalTrackerOptions {
  logger: RefusalLogger
  /** An episode ends after this long without a refusal of its kind. Default 10 s. */
  quietMs?: number
}

export class RefusalTracker {
  readonly #logger: RefusalLogger
  readonly #quietMs: number
  readonly #counts: Record<RefusalKind, number> = { oom: 0, misconf: 0, readonly: 0, noperm: 0 }
  readonly #episodes = new Map<RefusalKind, { since: number, lastAt: number }>()

  constructor ({ logger, quietMs = 10_000 }: RefusalTrackerOptions) {
    this.#logger = logger
    this.#quietMs = quietMs
  }

  /** Counts `err` when it is a refusal; the first of an episode is logged. */
  record (err: unknown, now = Date.now()): void {
    const kind = refusalKind(err)
    if (kind === undefined) return
    this.#counts[kind]++
    const episode = this.#episodes.get(kind)
    if (episode !== undefined && now - episode.lastAt <= this.#quietMs) {
      episode.lastAt = now
      return
    }
    this.#episodes.set(kind, { since: now, lastAt: now })
    this.#logger.warn({ redis: { refusal: kind } }, REASONS[kind].reason)
  }

  /** The episode under way (the latest started when several are), ending those that went quiet. */
  active (now = Date.now()): Refusal | undefined {
    let current: Refusal | undefined
    for (const [kind, episode] of this.#episodes) {
      if (now - episode.lastAt > this.#quietMs) {
        this.#episodes.delete(kind)
        this.#logger.info({ redis: { refusal: kind, lastedMs: episode.lastAt - episode.since } }, `Redis no longer refuses commands (${REASONS[kind].prefix})`)
        continue
      }
      if (current === undefined || episode.since > current.since) current = { kind, reason: REASONS[kind].reason, since: episode.since }
    }
    return current
  }

  /** Refusals seen since start, by kind. */
  counts (): Readonly<Record<RefusalKind, number>> {
    return { ...this.#counts }
  }
}

type Client = Redis | Cluster

/** The address ioredis puts in a command's trace context for this client (Redis#_getServerAddress). */
export function traceAddress (options: { path?: string | null, host?: string, port?: number }): string {
  if (typeof options.path === 'string' && options.path !== '') return options.path
  return `${options.host !== undefined && options.host !== '' ? options.host : 'localhost'}:${options.port ?? 6379}`
}

/** Whether a failed command's context is one of `clients`' (the channel is process-wide). Run on failures only. */
function belongsTo (clients: readonly Client[], context: CommandTraceContext): boolean {
  const address = context.serverPort === undefined ? context.serverAddress : `${context.serverAddress}:${context.serverPort}`
  for (const client of clients) {
    const nodes = client.isCluster ? (client as Cluster).nodes('all') : [client as Redis]
    for (const node of nodes) {
      if (traceAddress(node.options) === address) return true
      // Sentinel mode: the options hold no master address; the socket knows where it went.
      const stream = (node as unknown as { stream?: { remoteAddress?: string, remotePort?: number } }).stream
      if (stream?.remoteAddress !== undefined && `${stream.remoteAddress}:${stream.remotePort ?? ''}` === address) return true
    }
  }
  return false
}

/**
 * Feeds the refusals of commands sent on `clients` to `tracker`, from ioredis' own tracing channel (no
 * client is wrapped), until the returned function is called. Successful commands cost one check.
 */
export function traceRefusals (clients: readonly Client[], tracker: RefusalTracker): () => void {
  const channel = diagnosticsChannel.tracingChannel<object, CommandTraceContext>('ioredis:command')
  const handlers = {
    start: noop,
    end: noop,
    asyncStart: noop,
    asyncEnd: noop,
    error (context: CommandTraceContext & { error?: unknown }): void {
      // A probe refused by the ACL (the settings check's CONFIG GET) is an answer, not an episode; so is a
      // refused INFO (health details and start-up checks only: every feature still works without it).
      if (refusalKind(context.error) === undefined || isCapabilityProbe(context.command, context.args) ||
        context.command.toLowerCase() === 'info' || !belongsTo(clients, context)) return
      tracker.record(context.error)
    }
  }
  channel.subscribe(handlers)
  return () => { channel.unsubscribe(handlers) }
}

function noop (): void {}
