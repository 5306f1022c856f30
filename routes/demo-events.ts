// Demo of app.pubsub: GET /demo/events relays the `demo-events` channel as server-sent events, and
// POST /demo/events publishes to it. Every instance behind the load balancer relays every message.
import { PassThrough } from 'node:stream'
import fp from 'fastify-plugin'
import Type from 'typebox'
import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'

export const DemoEvent = Type.Object({
  text: Type.String({ minLength: 1, maxLength: 500 }),
  from: Type.Optional(Type.String({ minLength: 1, maxLength: 50 }))
}, { additionalProperties: false })

const Published = Type.Object({ delivered: Type.Integer() })
const Unavailable = Type.Object({ statusCode: Type.Integer(), error: Type.String(), message: Type.String() })

/** Comment lines keep idle connections (and proxies) from timing the stream out. */
const HEARTBEAT_MS = 15_000

async function demoEventsRoutes (fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const events = app.pubsub.channel('demo-events', DemoEvent)
  // Open streams never end by themselves: end them before close() waits for in-flight requests.
  const open = new Set<() => void>()
  app.addHook('preClose', async () => { for (const cleanup of [...open]) cleanup() })

  app.post('/demo/events', {
    schema: { body: DemoEvent, response: { 202: Published, 503: Unavailable } }
  }, async (request, reply) => {
    try {
      const delivered = await events.publish(request.body)
      return await reply.code(202).send({ delivered })
    } catch (err) {
      request.log.warn({ err: { message: (err as Error).message } }, 'demo events: publish failed')
      return reply.code(503).header('retry-after', '1').send({ statusCode: 503, error: 'Service Unavailable', message: 'Events are unavailable right now; retry shortly' })
    }
  })

  app.get('/demo/events', async (request, reply) => {
    const stream = new PassThrough()
    let unsubscribe: (() => Promise<void>) | undefined
    try {
      unsubscribe = await events.subscribe((message) => {
        stream.write(`event: message\ndata: ${JSON.stringify(message)}\n\n`)
      })
    } catch (err) {
      request.log.warn({ err: { message: (err as Error).message } }, 'demo events: subscribe failed')
      return reply.code(503).header('retry-after', '1').send({ statusCode: 503, error: 'Service Unavailable', message: 'Events are unavailable right now; retry shortly' })
    }
    const heartbeat = setInterval(() => stream.write(': heartbeat\n\n'), HEARTBEAT_MS)
    let cleaned = false
    const cleanup = (): void => {
      if (cleaned) return
      cleaned = true
      open.delete(cleanup)
      clearInterval(heartbeat)
      unsubscribe?.().catch(() => {})
      stream.end()
    }
    // The client went away: stop relaying and drop the subscription.
    reply.raw.once('close', cleanup)
    open.add(cleanup)
    // `retry` tells EventSource how soon to reconnect; the comment flushes headers so the client knows it is live.
    stream.write('retry: 2000\n: subscribed\n\n')
    return reply
      .header('content-type', 'text/event-stream; charset=utf-8')
      .header('cache-control', 'no-store')
      .header('x-accel-buffering', 'no')
      .send(stream)
  })
}

export default fp(demoEventsRoutes, { name: 'redis-suite-demo-events', fastify: '5.x', dependencies: ['redis-suite-pubsub'] })
