// Compile-time tests of the cache's public types, checked by `npm run typecheck`; never executed.
import Type, { type Static } from 'typebox'
import { createCache } from '../../lib/cache/index.js'
import { expectType } from './expect-type.js'

const UserSchema = Type.Object({ id: Type.Number(), name: Type.String() })
type User = Static<typeof UserSchema>

export async function cacheTypes (): Promise<void> {
  const cache = createCache()

  // getOrSet infers from the schema…
  expectType<User>()(await cache.getOrSet('user:1', async () => ({ id: 1, name: 'Ada' }), { schema: UserSchema, ttl: '5m' }))
  // …and from the loader when there is none.
  expectType<number>()(await cache.getOrSet('n', () => 42))
  expectType<string>()(await cache.getOrSet('s', async ({ signal }) => signal.aborted ? 'a' : 'b'))

  expectType<User | undefined>()(await cache.get('user:1', { schema: UserSchema }))
  expectType<unknown>()(await cache.get('x'))
  expectType<string | undefined>()(await cache.get<string>('x'))

  expectType<Array<User | undefined>>()(await cache.getMany(['a', 'b'], { schema: UserSchema }))
  expectType<Array<User | undefined>>()(await cache.getOrSetMany(['a'], async (keys) => keys.map((id) => ({ id: Number(id), name: id })), { schema: UserSchema }))

  const api = cache.namespace('api', { ttl: '5m', grace: '1m', tags: ['api'] })
  expectType<number[]>()(await api.getOrSet('k', () => [1, 2, 3]))

  await cache.set('user:1', { id: 1, name: 'Ada' }, { schema: UserSchema, tags: ['users'] })

  // @ts-expect-error the loader's value must match the schema
  await cache.getOrSet('user:1', async () => ({ id: '1', name: 'Ada' }), { schema: UserSchema })
  // @ts-expect-error set with a schema checks the value too
  await cache.set('user:1', { id: 1 }, { schema: UserSchema })
  // @ts-expect-error durations are strings with a unit or milliseconds, not objects
  await cache.set('k', 1, { ttl: { minutes: 5 } })
  // @ts-expect-error tags are strings
  await cache.invalidateTags([1])
  const got = await cache.get('user:1', { schema: UserSchema })
  // @ts-expect-error the result of a schema'd get is not any
  got?.missing.toString()
  // @ts-expect-error nor is it defined without a check: a miss is undefined
  got.name.toString()
}
