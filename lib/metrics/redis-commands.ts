// Command duration and errors from ioredis 6's own diagnostics_channel tracing ('ioredis:command',
// documented in its README), so no client is wrapped or patched. The channel is process-wide and its
// context names the server, not the client: commands are attributed to a connection by the server
// address its client was configured with (cluster: the current node set). Apps in one process that
// share a Redis server therefore also share these series.
import diagnosticsChannel, { type TracingChannelSubscribers } from 'node:diagnostics_channel'
import type { Cluster, CommandTraceContext, Redis } from 'ioredis'
import { isCapabilityProbe } from '../redis/index.js'

type Client = Redis | Cluster

export type CommandErrorKind = 'reply' | 'timeout' | 'connection' | 'other'

export interface CommandObserver {
  (connection: string, command: string, seconds: number, error: CommandErrorKind | undefined): void
}

type Traced = Record<symbol, { connection: string, at: number } | undefined>

/** The key ioredis itself builds for a client's trace context (Redis#_getServerAddress). */
function addressOf (options: { path?: string | null, host?: string, port?: number }): string {
  if (typeof options.path === 'string' && options.path !== '') return options.path
  return `${options.host !== undefined && options.host !== '' ? options.host : 'localhost'}:${options.port ?? 6379}`
}

/**
 * Observes every command sent to the given connections (first match wins) until the returned function
 * is called. Commands refused before reaching the socket (offline queue off, connection down) are not
 * traced by ioredis; the connection state series covers those periods.
 */
export function traceRedisCommands (connections: ReadonlyArray<{ name: string, client: Client }>, observe: CommandObserver): () => void {
  const byAddress = new Map<string, string>()
  // The connection of the last server address seen: a client's contexts carry the same address string
  // and port on every command, so the usual lookup is two comparisons, not a concatenation and a hash.
  let lastAddress: string | undefined
  let lastPort: number | undefined
  let lastConnection: string | undefined
  const cleanups: Array<() => void> = []
  for (const { name, client } of connections) {
    if (client.isCluster) {
      const cluster = client as Cluster
      // A cluster's node set changes: the remembered lookup starts over.
      const add = (node: Redis): void => { lastAddress = undefined; if (!byAddress.has(addressOf(node.options))) byAddress.set(addressOf(node.options), name) }
      const remove = (node: Redis): void => { lastAddress = undefined; if (byAddress.get(addressOf(node.options)) === name) byAddress.delete(addressOf(node.options)) }
      for (const node of cluster.nodes('all')) add(node)
      cluster.on('+node', add)
      cluster.on('-node', remove)
      cleanups.push(() => { cluster.off('+node', add); cluster.off('-node', remove) })
    } else {
      const key = addressOf((client as Redis).options)
      if (!byAddress.has(key)) byAddress.set(key, name)
    }
  }

  // The command's connection and start time ride on ioredis' context object (cheaper than a WeakMap),
  // under a key of this subscription's own: another app's subscription sees the same context.
  const STARTED = Symbol('fastify-redis-suite.commandStarted')
  const channel = diagnosticsChannel.tracingChannel<object, CommandTraceContext>('ioredis:command')
  const connectionOf = (address: string, port: number | undefined): string | undefined => {
    if (address === lastAddress && port === lastPort) return lastConnection
    const connection = byAddress.get(port === undefined ? address : `${address}:${port}`)
    lastAddress = address
    lastPort = port
    lastConnection = connection
    return connection
  }
  // Only start and asyncEnd (a failed command's context carries its error there): a channel without
  // subscribers costs tracePromise nothing, where a no-op subscriber is still a publish per command.
  const handlers: Pick<TracingChannelSubscribers<CommandTraceContext & { error?: unknown }>, 'start' | 'asyncEnd'> = {
    start (context: CommandTraceContext): void {
      // CLIENT SETINFO at connect (refused by Redis < 7.2, ignored by ioredis) and the settings check's
      // CONFIG GET (refused by managed Redis and the least-privilege ACL): probes, not the app's traffic.
      if (isCapabilityProbe(context.command, context.args)) return
      const connection = connectionOf(context.serverAddress, context.serverPort)
      if (connection !== undefined) (context as unknown as Traced)[STARTED] = { connection, at: performance.now() }
    },
    asyncEnd (context: CommandTraceContext & { error?: unknown }): void {
      const begun = (context as unknown as Traced)[STARTED]
      if (begun === undefined) return
      const seconds = (performance.now() - begun.at) / 1000
      try {
        observe(begun.connection, context.command, seconds, 'error' in context ? classify(context.error) : undefined)
      } catch {
        // Metrics must never break a Redis command.
      }
    }
  }
  channel.subscribe(handlers as TracingChannelSubscribers<CommandTraceContext>)
  return () => {
    channel.unsubscribe(handlers as TracingChannelSubscribers<CommandTraceContext>)
    for (const cleanup of cleanups) cleanup()
  }
}

/** A bounded label for why a command failed; never the message (it may carry key names). */
export function classify (error: unknown): CommandErrorKind {
  if (!(error instanceof Error)) return 'other'
  if (error.name === 'ReplyError') return 'reply'
  if (/timed out/i.test(error.message)) return 'timeout'
  if (/Connection is closed|Stream isn't writeable|ECONNRESET|EPIPE|ECONNREFUSED|ETIMEDOUT/i.test(error.message)) return 'connection'
  return 'other'
}
