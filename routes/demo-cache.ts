// Demo of the HTTP response cache: a slow source (200 ms per read) behind cached routes, and writes
// that invalidate them by tag. Try: curl -i localhost:3000/demo/products (twice), then
// curl -X POST -H 'content-type: application/json' -d '{"name":"Lamp"}' localhost:3000/demo/products
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance, FastifyRequest } from 'fastify'

interface Product { id: number, name: string }

const SLOW_SOURCE_MS = 200

export default async function demoCacheRoutes (app: FastifyInstance): Promise<void> {
  // Per app instance: the "database" the cached routes read slowly.
  const products = new Map<number, Product>([[1, { id: 1, name: 'Kettle' }], [2, { id: 2, name: 'Teapot' }]])
  let reads = 0
  const slowRead = async <T>(read: () => T): Promise<T> => {
    reads++
    await sleep(SLOW_SOURCE_MS)
    return read()
  }
  const productTags = (request: FastifyRequest): string[] => ['products', `product:${(request.params as { id: string }).id}`]

  app.get('/demo/products', {
    config: { cache: { ttl: '30s', tags: ['products'], staleWhileRevalidate: '30s', staleIfError: '5m' } }
  }, async () => slowRead(() => ({ products: [...products.values()], reads, at: new Date().toISOString() })))

  app.get('/demo/products/:id', {
    schema: { params: { type: 'object', properties: { id: { type: 'integer' } }, required: ['id'] } },
    config: { cache: { ttl: '30s', tags: productTags } }
  }, async (request, reply) => {
    const product = await slowRead(() => products.get((request.params as { id: number }).id))
    return product ?? reply.code(404).send({ error: 'Not Found', message: 'no such product' })
  })

  // Varies by language: each Accept-Language value is its own entry.
  app.get('/demo/greeting', {
    config: { cache: { ttl: '1m', vary: ['accept-language'] } }
  }, async (request) => slowRead(() => ({
    greeting: /^fr\b/i.test(request.headers['accept-language'] ?? '') ? 'Bonjour' : 'Hello'
  })))

  app.post('/demo/products', {
    schema: { body: { type: 'object', properties: { name: { type: 'string', minLength: 1 } }, required: ['name'] } },
    config: { cache: { invalidates: ['products'] } }
  }, async (request, reply) => {
    const id = Math.max(0, ...products.keys()) + 1
    const product = { id, name: (request.body as { name: string }).name }
    products.set(id, product)
    return reply.code(201).send(product)
  })

  app.delete('/demo/products/:id', {
    schema: { params: { type: 'object', properties: { id: { type: 'integer' } }, required: ['id'] } },
    config: { cache: { invalidates: productTags } }
  }, async (request, reply) => {
    const deleted = products.delete((request.params as { id: number }).id)
    return deleted ? reply.code(204).send() : reply.code(404).send({ error: 'Not Found', message: 'no such product' })
  })
}
