// Compile-time tests of app.cache through the suite's declarations; checked by tsc, never executed.
import Fastify from 'fastify'
import Type from 'typebox'
import redisSuite from '../../index.js'

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
function assertType<T extends true> (): T | undefined { return undefined }

export async function appCacheTypes (): Promise<void> {
  const app = Fastify()
  await app.register(redisSuite)
  const User = Type.Object({ id: Type.Number(), name: Type.String() })

  const fromSchema = await app.cache.getOrSet('user:1', async () => ({ id: 1, name: 'Ada' }), { ttl: '5m', schema: User, tags: ['users'] })
  assertType<Equal<typeof fromSchema, { id: number, name: string }>>()
  const fromLoader = await app.cache.getOrSet('n', async () => 42)
  assertType<Equal<typeof fromLoader, number>>()
  const got = await app.cache.get('user:1', { schema: User })
  assertType<Equal<typeof got, { id: number, name: string } | undefined>>()
  const scoped = await app.cache.namespace('api', { ttl: '5m' }).get('user:1', { schema: User })
  assertType<Equal<typeof scoped, { id: number, name: string } | undefined>>()

  // @ts-expect-error the loader must return what the schema describes
  await app.cache.getOrSet('user:1', async () => ({ id: 'one' }), { schema: User })
  // @ts-expect-error set checks the value against the schema's type
  await app.cache.set('user:1', { id: 1 }, { schema: User })
}
