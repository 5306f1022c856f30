// app.presence: who is in a room (lib/realtime/presence.ts), on the main connection; in-process without Redis.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { MemoryPresenceStore, Presence, RedisPresenceStore } from '../lib/realtime/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    presence: Presence
  }
}

async function presencePlugin (app: FastifyInstance): Promise<void> {
  const main = app.redisConnections.main
  const store = main === undefined ? new MemoryPresenceStore() : new RedisPresenceStore(main, app.config.REDIS_COMMAND_TIMEOUT, app.redisConnections.failoverWaitLeft)
  app.decorate('presence', new Presence({ store }))
}

export default fp(presencePlugin, { name: 'redis-suite-presence', fastify: '5.x', dependencies: ['redis-suite-config', 'redis-suite-redis'] })
