// app.presence: who is in a room (lib/realtime/presence.ts), on the main connection; in-process without Redis.
//
// Lifecycle (presencePlugin): decorates app.presence; no hooks; nothing of its own to close (the
// connection is the redis plugin's, or the app's client, left open).
import fp from 'fastify-plugin'
import { featureConnection, type RedisClient } from './redis.js'
import { suiteLogOptions } from '../lib/config/index.js'
import type { FastifyInstance } from 'fastify'
import { MemoryPresenceStore, Presence, RedisPresenceStore } from '../lib/realtime/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    presence: Presence
  }
}

export interface PresencePluginOptions {
  /** An ioredis Redis or Cluster of the app's to use instead of the suite's connection; left open at close. */
  client?: RedisClient
}

async function presencePlugin (app: FastifyInstance, options: PresencePluginOptions = {}): Promise<void> {
  const { redis: main, failoverWaitLeft } = featureConnection(app, options.client)
  const store = main === undefined ? new MemoryPresenceStore() : new RedisPresenceStore(main, app.config.REDIS_COMMAND_TIMEOUT, failoverWaitLeft)
  app.log.child({ plugin: 'presence' }, suiteLogOptions(app.config)).info(main === undefined
    ? 'presence: in process (no Redis configured): this instance\'s members only'
    : main.status === 'ready' ? 'presence: Redis' : 'presence: Redis, which is not reachable yet: joins fail until it answers')
  app.decorate('presence', new Presence({ store }))
}

export default fp(presencePlugin, { name: 'redis-suite-presence', fastify: '5.x', dependencies: ['redis-suite-config', 'redis-suite-redis'] })
