// Test helpers for the rate-limit tests: ioredis clients configured as the app configures them
// (no offline queue, no retries per request, a command timeout), closed in t.teardown.
import { Redis, type RedisOptions } from 'ioredis'
import type { RedisServer } from '../../helpers/redis-server.js'
import type { TeardownScope } from '../../helpers/fixtures.js'
import { RateLimitStore, type RateLimitStoreOptions } from '../../../lib/rate-limit/store.js'

export async function connectClient (t: TeardownScope, server: RedisServer, options: RedisOptions = {}): Promise<Redis> {
  const client = new Redis({
    host: server.host,
    port: server.port,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: 1000,
    retryStrategy: () => 50,
    ...options
  })
  // disconnect(), not quit(): quit would wait on a frozen server.
  t.teardown(() => client.disconnect())
  client.on('error', () => {})
  await new Promise<void>((resolve, reject) => {
    client.once('ready', resolve)
    client.once('end', () => reject(new Error('client ended before ready')))
  })
  return client
}

export interface CapturedLog {
  level: 'info' | 'warn'
  msg: string | undefined
}

/** A pino-like logger that records what it is given. */
export function captureLogger (): { logs: CapturedLog[], logger: { info: (obj: object, msg?: string) => void, warn: (obj: object, msg?: string) => void } } {
  const logs: CapturedLog[] = []
  return {
    logs,
    logger: {
      info: (_obj, msg) => { logs.push({ level: 'info', msg }) },
      warn: (_obj, msg) => { logs.push({ level: 'warn', msg }) }
    }
  }
}

/** A store, ready (its budget connection up) and closed in t.teardown. */
export async function openStore (t: TeardownScope, options: RateLimitStoreOptions = {}): Promise<RateLimitStore> {
  const store = new RateLimitStore(options)
  t.teardown(() => store.close())
  await store.ready()
  return store
}
