// Compile-time tests of app.cache through the suite's declarations; checked by tsc, never executed.
import Fastify from 'fastify'
import Type from 'typebox'
import redisSuite from '../../index.js'
import { expectType } from './expect-type.js'

export async function appCacheTypes (): Promise<void> {
  const app = Fastify()
  await app.register(redisSuite)
  const User = Type.Object({ id: Type.Number(), name: Type.String() })

  expectType<{ id: number, name: string }>()(await app.cache.getOrSet('user:1', async () => ({ id: 1, name: 'Ada' }), { ttl: '5m', schema: User, tags: ['users'] }))
  expectType<number>()(await app.cache.getOrSet('n', async () => 42))
  expectType<{ id: number, name: string } | undefined>()(await app.cache.get('user:1', { schema: User }))
  expectType<{ id: number, name: string } | undefined>()(await app.cache.namespace('api', { ttl: '5m' }).get('user:1', { schema: User }))
  // @ts-expect-error a wrong expectation does not compile
  expectType<string>()(await app.cache.getOrSet('n', async () => 42))

  // @ts-expect-error the loader must return what the schema describes
  await app.cache.getOrSet('user:1', async () => ({ id: 'one' }), { schema: User })
  // @ts-expect-error set checks the value against the schema's type
  await app.cache.set('user:1', { id: 1 }, { schema: User })
}
