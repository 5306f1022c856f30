// Health routes for load balancers and Kubernetes. They answer from state kept in memory and never
// wait on Redis inline.
import fp from 'fastify-plugin'
import Type from 'typebox'
import type { FastifyInstance } from 'fastify'

const Live = Type.Object({ status: Type.Literal('ok') })

async function healthRoutes (app: FastifyInstance): Promise<void> {
  app.get('/health/live', { schema: { response: { 200: Live } } }, async () => ({ status: 'ok' as const }))
}

export default fp(healthRoutes, { name: 'redis-suite-health', dependencies: ['redis-suite-config'] })
