// app.locks: single-instance Redis locks with fencing tokens (lib/locks/locks.ts) on the main connection;
// in-process without Redis. Locks still held at close are released (bounded by the command timeout).
//
// Lifecycle (locksPlugin): decorates app.locks; no request hooks; onClose releases the locks still
// held (the connection is the redis plugin's, or the app's client, left open).
import fp from 'fastify-plugin'
import { featureConnection, type RedisClient } from './redis.js'
import type { FastifyInstance } from 'fastify'
import { Locks, MemoryLockStore, RedisLockStore } from '../lib/locks/index.js'
import { suiteLogOptions } from '../lib/config/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    locks: Locks
  }
}

export interface LocksPluginOptions {
  /** An ioredis Redis or Cluster of the app's to use instead of the suite's connection; left open at close. */
  client?: RedisClient
}

async function locksPlugin (app: FastifyInstance, options: LocksPluginOptions = {}): Promise<void> {
  const { redis: main, failoverWaitLeft } = featureConnection(app, options.client)
  const store = main === undefined ? new MemoryLockStore() : new RedisLockStore(main, app.config.REDIS_COMMAND_TIMEOUT, failoverWaitLeft)
  const logger = app.log.child({ plugin: 'locks' }, suiteLogOptions(app.config))
  const locks = new Locks({ store, logger })
  logger.info(main === undefined
    ? 'locks: in process (no Redis configured): held by this instance only'
    : main.status === 'ready' ? 'locks: Redis' : 'locks: Redis, which is not reachable yet: acquiring fails until it answers')
  app.decorate('locks', locks)
  app.addHook('onClose', async () => { await locks.close() })
}

export default fp(locksPlugin, { name: 'redis-suite-locks', fastify: '5.x', dependencies: ['redis-suite-config', 'redis-suite-redis'] })
