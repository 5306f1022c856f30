// The adaptation of @fastify/rate-limit's Redis-store tests: where a test passes `redis` to the
// plugin (which then builds its own RedisStore), it passes the suite's store over that same client.
// The store learns that the client is gone the way the suite's Redis monitor tells it in an app
// (isRedisReady), and it is closed after the file's tests (its budget connection).
import { after } from 'node:test'
import type { Redis } from 'ioredis'
import { RateLimitStore, fastifyRateLimitStore, type FastifyRateLimitStoreClass, type RateLimitStoreOptions } from '../../../lib/rate-limit/index.js'
import { startRedis } from '../../helpers/redis-server.js'

const stores: RateLimitStore[] = []
const clients: Redis[] = []
// A test that fails before its own `redis.quit()` must not leave a client reconnecting for ever.
after(async () => {
  await Promise.all(stores.map((store) => store.close()))
  for (const client of clients) client.disconnect()
})

export async function suiteStore (redis: Redis, options: RateLimitStoreOptions = {}): Promise<FastifyRateLimitStoreClass> {
  // Upstream flushes at the end of each test, which a failed test skips: start each one clean instead.
  clients.push(redis)
  await redis.flushall()
  // Down once the test quits its client ('end'), as the Redis monitor would report it in an app.
  const store = new RateLimitStore({ redis, timeout: 1000, isRedisReady: () => redis.status !== 'end' && redis.status !== 'close', ...options })
  stores.push(store)
  await store.ready()
  return fastifyRateLimitStore(store)
}

/** A helper-started redis-server instead of the one upstream expects on 127.0.0.1:6379. */
export async function testRedis (): Promise<{ host: string, port: number }> {
  const server = await startRedis()
  after(() => server.stop())
  return { host: server.host, port: server.port }
}
