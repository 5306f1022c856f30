// Commands the suite sends on a client it did not build (an app's own ioredis client, passed as
// `client`) get the suite's command timeout whatever that client's settings. An ioredis default client
// has no commandTimeout, an offline queue and 20 retries per request: a command sent while Redis is
// down waits ~70 s. Changing the app's client would change its own commands, so the suite talks to a
// view of it instead: an object whose prototype is the client, where only sendCommand differs. Every
// command method (get, evalsha, a pipeline's commands, defined Lua commands) ends in `this.sendCommand`,
// which here arms the command's own timer first; ioredis arms it once (Command#setTimeout keeps the
// first), so the client's own longer commandTimeout cannot stretch it. State, events and connections
// stay the client's: the view is never connected, duplicated or closed by the suite.
import type { Cluster, Redis } from 'ioredis'

type RedisClient = Redis | Cluster
interface TimedCommand { setTimeout: (ms: number) => void }

const FORWARDED = [
  'on', 'once', 'off', 'addListener', 'removeListener', 'prependListener', 'prependOnceListener', 'removeAllListeners',
  'listeners', 'listenerCount', 'emit', 'connect', 'disconnect', 'duplicate', 'nodes'
] as const

const kBoundedOf = Symbol('fastify-redis-suite.boundedOf')

/** The client's own command timeout, or undefined when it has none. */
export function commandTimeoutOf (client: RedisClient): number | undefined {
  const timeout = client.isCluster
    ? (client.options as { redisOptions?: { commandTimeout?: number } }).redisOptions?.commandTimeout
    : (client.options as { commandTimeout?: number }).commandTimeout
  return typeof timeout === 'number' ? timeout : undefined
}

/**
 * `client` itself when its own commandTimeout is already within `timeoutMs`; else a view of it whose
 * commands fail with "Command timed out" after `timeoutMs`. A timed-out command is not withdrawn: a
 * queued one may still reach Redis later, its reply dropped.
 */
export function boundCommands<T extends RedisClient> (client: T, timeoutMs: number): T {
  const own = commandTimeoutOf(client)
  if (own !== undefined && own <= timeoutMs) return client
  const send = client.sendCommand.bind(client) as (command: TimedCommand, ...rest: unknown[]) => unknown
  const view = Object.create(client) as T & { [kBoundedOf]: RedisClient }
  Object.defineProperty(view, 'sendCommand', {
    value: (command: TimedCommand, ...rest: unknown[]) => {
      command.setTimeout(timeoutMs)
      return send(command, ...rest)
    }
  })
  // Listeners, connecting, closing and copies act on the client itself: EventEmitter methods run on
  // the view would keep part of their bookkeeping (_eventsCount) on the view.
  for (const method of FORWARDED) {
    const original = (client as unknown as Record<string, unknown>)[method]
    if (typeof original !== 'function') continue
    Object.defineProperty(view, method, {
      value: (...args: unknown[]) => {
        const result: unknown = (original as (...a: unknown[]) => unknown).apply(client, args)
        return result === client ? view : result
      }
    })
  }
  Object.defineProperty(view, kBoundedOf, { value: client })
  return view
}

/** The app's client behind a view made by boundCommands (for events, status, duplicate and close). */
export function unbound<T extends RedisClient> (client: T): T {
  return ((client as T & { [kBoundedOf]?: T })[kBoundedOf]) ?? client
}
