// app.locks: single-instance Redis locks with fencing tokens (lib/locks/locks.ts) on the main connection;
// in-process without Redis. Locks still held at close are released (bounded by the command timeout).
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { Locks, MemoryLockStore, RedisLockStore } from '../lib/locks/index.js'
import { suiteLogOptions } from '../lib/config/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    locks: Locks
  }
}

async function locksPlugin (app: FastifyInstance): Promise<void> {
  const main = app.redisConnections.main
  const store = main === undefined ? new MemoryLockStore() : new RedisLockStore(main, app.config.REDIS_COMMAND_TIMEOUT, app.redisConnections.failoverWaitLeft)
  const locks = new Locks({ store, logger: app.log.child({ plugin: 'locks' }, suiteLogOptions(app.config)) })
  app.decorate('locks', locks)
  app.addHook('onClose', async () => { await locks.close() })
}

export default fp(locksPlugin, { name: 'redis-suite-locks', fastify: '5.x', dependencies: ['redis-suite-config', 'redis-suite-redis'] })
