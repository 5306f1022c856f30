// Compile-time tests, checked by `npm run typecheck` (tsc -p tsconfig.test.json); never executed.
import Fastify from 'fastify'
import redisSuite, { type Config } from '../../index.js'

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
function assertType<T extends true> (): T | undefined { return undefined }

export async function configTypes (): Promise<void> {
  const app = Fastify()
  await app.register(redisSuite, { env: { REDIS_URL: 'redis://127.0.0.1:6379' } })

  assertType<Equal<typeof app.config.REDIS_PORT, number>>()
  assertType<Equal<typeof app.config.REDIS_COMMAND_TIMEOUT, number>>()
  assertType<Equal<typeof app.config.REDIS_URL, string | undefined>>()
  assertType<Equal<typeof app.config.SESSION_SECRET, string[]>>()
  assertType<Equal<typeof app.config.NODE_ENV, 'development' | 'test' | 'staging' | 'production'>>()
  assertType<Equal<Config['REDIS_TLS'], boolean>>()

  // @ts-expect-error an unknown key is a type error
  app.config.REDIS_PROT.toString()
  // @ts-expect-error config is read-only
  app.config.REDIS_PORT = 1
  // env overrides process.env; processEnv: false ignores process.env and .env
  await app.register(redisSuite, { env: { REDIS_URL: 'redis://127.0.0.1:6379' }, processEnv: false, dotenvPath: false })
  // @ts-expect-error processEnv is a boolean
  await app.register(redisSuite, { processEnv: 'no' })
  // @ts-expect-error env values are strings, numbers or booleans
  await app.register(redisSuite, { env: { REDIS_PORT: {} } })
}
