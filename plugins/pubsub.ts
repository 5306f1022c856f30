// app.pubsub: typed pub/sub and streams (lib/realtime/pubsub.ts, lib/realtime/streams.ts). PUBLISH goes on the main
// connection, SUBSCRIBE on the app's dedicated subscriber (made on first subscribe), each stream
// consumer gets its own connection for blocking reads. Without Redis: in-process, same API.
//
// Lifecycle (pubsubPlugin): decorates app.pubsub; no request hooks; onClose closes it (its
// subscriptions and stream consumers) and quits its own subscriber (made on an app's client) within a bound.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Cluster, Redis } from 'ioredis'
import {
  PUBSUB_CHANNEL_SEGMENT, PubSub, MemoryPubSubTransport, RedisPubSubTransport, RedisStreams, MemoryStreams
} from '../lib/realtime/index.js'
import { featureConnection, quitWithin, type RedisClient } from './redis.js'
import { suiteLogOptions } from '../lib/config/index.js'
import { stopSlotsRefreshOnClose } from '../lib/redis/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    pubsub: PubSub
  }
}

export interface PubSubPluginOptions {
  /** An ioredis Redis or Cluster of the app's to publish on (subscribing on a duplicate of it) instead of the suite's connection; left open at close. */
  client?: RedisClient
}

async function pubsubPlugin (app: FastifyInstance, options: PubSubPluginOptions = {}): Promise<void> {
  const config = app.config
  const connection = featureConnection(app, options.client)
  const main = connection.redis
  const logger = app.log.child({ plugin: 'pubsub' }, suiteLogOptions(app.config))
  const timeoutMs = config.REDIS_COMMAND_TIMEOUT
  // A command issued during a failover may wait for it (REDIS_FAILOVER_WAIT) on top of its own bound.
  const waitLeft = connection.failoverWaitLeft
  let ownSubscriber: RedisClient | undefined
  const subscriber = (): RedisClient => {
    if (!connection.own) return app.redisConnections.subscriber() as RedisClient
    ownSubscriber ??= subscriberOf(main as RedisClient)
    return ownSubscriber
  }
  const pubsub = main === undefined
    ? new PubSub({ transport: new MemoryPubSubTransport(), logger, streams: new MemoryStreams(logger) })
    : new PubSub({
      transport: new RedisPubSubTransport({
        publisher: main,
        subscriber,
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
  app.addHook('onClose', async () => {
    await pubsub.close()
    if (ownSubscriber !== undefined) await quitWithin(ownSubscriber, Math.min(timeoutMs, 2_000))
  })
}

/** A subscriber copy of an app's client; autoResubscribe off, as the suite's own (see plugins/redis.ts). */
function subscriberOf (client: RedisClient): RedisClient {
  const copy = client.isCluster ? stopSlotsRefreshOnClose((client as Cluster).duplicate()) : (client as Redis).duplicate({ autoResubscribe: false })
  copy.on('error', () => {})
  copy.connect().catch(() => {})
  return copy
}

function duplicate (client: RedisClient): RedisClient {
  const copy = client.isCluster ? stopSlotsRefreshOnClose((client as Cluster).duplicate()) : (client as Redis).duplicate()
  copy.on('error', () => {}) // the consumer logs its own once-per-outage warning
  copy.connect().catch(() => {})
  return copy
}

export default fp(pubsubPlugin, { name: 'redis-suite-pubsub', fastify: '5.x', dependencies: ['redis-suite-config', 'redis-suite-redis'] })
