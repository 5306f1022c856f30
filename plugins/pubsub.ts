// app.pubsub: typed pub/sub and streams (lib/realtime/pubsub.ts, lib/realtime/streams.ts). PUBLISH goes on the main
// connection, SUBSCRIBE on the app's dedicated subscriber (made on first subscribe), each stream
// consumer gets its own connection for blocking reads. Without Redis: in-process, same API.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Cluster, Redis } from 'ioredis'
import {
  PUBSUB_CHANNEL_SEGMENT, PubSub, MemoryPubSubTransport, RedisPubSubTransport, RedisStreams, MemoryStreams
} from '../lib/realtime/index.js'
import type { RedisClient } from './redis.js'
import { suiteLogOptions } from '../lib/config/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    pubsub: PubSub
  }
}

async function pubsubPlugin (app: FastifyInstance): Promise<void> {
  const config = app.config
  const main = app.redisConnections.main
  const logger = app.log.child({ plugin: 'pubsub' }, suiteLogOptions(app.config))
  const timeoutMs = config.REDIS_COMMAND_TIMEOUT
  // A command issued during a failover may wait for it (REDIS_FAILOVER_WAIT) on top of its own bound.
  const waitLeft = app.redisConnections.failoverWaitLeft
  const pubsub = main === undefined
    ? new PubSub({ transport: new MemoryPubSubTransport(), logger, streams: new MemoryStreams(logger) })
    : new PubSub({
      transport: new RedisPubSubTransport({
        publisher: main,
        subscriber: () => app.redisConnections.subscriber() as RedisClient,
        timeoutMs,
        waitLeft
      }),
      // ioredis prefixes keys, never channels: without the app's prefix, apps sharing a Redis would hear
      // each other. The `ps:` segment keeps app channels apart from the suite's own (the cache's
      // `cache:invalidate`): a channel name taken from user input can never forge an invalidation.
      prefix: `${config.REDIS_KEY_PREFIX}${PUBSUB_CHANNEL_SEGMENT}`,
      logger,
      streams: new RedisStreams({ client: main, blockingConnection: () => duplicate(main), timeoutMs, waitLeft, logger })
    })
  app.decorate('pubsub', pubsub)
  logger.info(main === undefined
    ? 'pubsub: in process (no Redis configured): messages reach this instance only'
    : main.status === 'ready' ? 'pubsub: Redis' : 'pubsub: Redis, which is not reachable yet: publishing fails and subscriptions start once it answers')
  app.addHook('onClose', async () => { await pubsub.close() })
}

function duplicate (client: RedisClient): RedisClient {
  const copy = client.isCluster ? (client as Cluster).duplicate() : (client as Redis).duplicate()
  copy.on('error', () => {}) // the consumer logs its own once-per-outage warning
  copy.connect().catch(() => {})
  return copy
}

export default fp(pubsubPlugin, { name: 'redis-suite-pubsub', fastify: '5.x', dependencies: ['redis-suite-config', 'redis-suite-redis'] })
