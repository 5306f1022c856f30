// Shared setup for the cache tests: ioredis clients configured the way the app configures them
// (no offline queue, no retries per request, a 1 s command timeout), closed in each test's teardown.
import { Redis, type RedisOptions } from 'ioredis'
import { useRedis, type RedisServer, type TeardownScope } from '../../helpers/index.js'
import { createCache } from '../../../lib/cache/index.js'
import type { Cache, CacheEvent, CacheOptions } from '../../../lib/cache/index.js'

export const COMMAND_TIMEOUT_MS = 1_000

export async function connect (t: TeardownScope, server: RedisServer, options: RedisOptions = {}): Promise<Redis> {
  const client = new Redis({
    host: server.host,
    port: server.port,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: COMMAND_TIMEOUT_MS,
    connectTimeout: 1_000,
    retryStrategy: () => 100,
    lazyConnect: true,
    ...options
  })
  client.on('error', () => {}) // reconnects are expected in fault tests
  t.teardown(() => client.disconnect())
  await client.connect()
  return client
}

export interface Instance {
  cache: Cache
  client: Redis
  subscriber: Redis
  events: CacheEvent[]
  warnings: string[]
}

/** One "app instance": its own client, subscriber and cache, like a separate process would have. */
export async function instance (t: TeardownScope, server: RedisServer, options: Partial<CacheOptions> = {},
  clientOptions: RedisOptions = {}): Promise<Instance> {
  const client = await connect(t, server, clientOptions)
  const subscriber = await connect(t, server, clientOptions)
  const events: CacheEvent[] = []
  const warnings: string[] = []
  const cache = createCache({
    redis: client,
    subscriber,
    logger: { warn: (_obj, msg) => warnings.push(msg ?? ''), debug: () => {} },
    onEvent: (event) => events.push(event),
    ...options
  })
  t.teardown(() => cache.close())
  await cache.ready()
  return { cache, client, subscriber, events, warnings }
}

export async function redisWithInstance (t: TeardownScope, options: Partial<CacheOptions> = {}): Promise<Instance & { server: RedisServer }> {
  const server = await useRedis(t)
  return { server, ...await instance(t, server, options) }
}

/** How many times Redis ran a command, from INFO commandstats (Redis decides, not our bookkeeping). */
export async function commandCalls (server: RedisServer, command: string): Promise<number> {
  const info = await server.cli('INFO', 'commandstats')
  const match = new RegExp(`cmdstat_${command.toLowerCase()}:calls=(\\d+)`).exec(info)
  return Number(match?.[1] ?? 0)
}

export function deferred<T = void> (): { promise: Promise<T>, resolve: (value: T) => void } {
  let settle!: (value: T) => void
  const promise = new Promise<T>((resolve) => { settle = resolve })
  return { promise, resolve: settle }
}
