// The runnable demo app: explicit timeouts, the suite, demo routes, graceful close, listen.
// Run: npm start. Without REDIS_URL (development) it runs on in-process stores.
import { pathToFileURL } from 'node:url'
import type { Writable } from 'node:stream'
import Fastify, { type FastifyInstance } from 'fastify'
import closeWithGrace from 'close-with-grace'
import redisSuite, { type RedisSuiteOptions } from './index.js'
import { loadConfig, type Config } from './lib/config/index.js'
import { ConfigError } from './lib/errors/index.js'
import { loggerOptions } from './lib/config/index.js'

export interface BuildServerOptions extends RedisSuiteOptions {
  /** false silences logging; tests pass a stream to read every line (redaction still applies). */
  logger?: false
  logStream?: Writable
}

/** Builds the demo app the way production would, without listening. Tests use the same function. */
export async function buildServer (options: BuildServerOptions = {}): Promise<FastifyInstance> {
  const config: Readonly<Config> = options.config ?? loadConfig(options)
  const app = Fastify({
    logger: options.logger ?? loggerOptions(config.LOG_LEVEL, options.logStream),
    // Bounded everywhere: a slow client or a stuck handler must not hold a socket for ever.
    connectionTimeout: 30_000,
    keepAliveTimeout: 5_000,
    requestTimeout: 30_000,
    bodyLimit: 1_048_576,
    pluginTimeout: config.REDIS_CONNECT_TIMEOUT + 5_000,
    return503OnClosing: true,
    // Only the listed proxies' X-Forwarded-For is believed; a blanket true would let any client
    // pick its own IP and walk around rate limits.
    trustProxy: config.TRUST_PROXY.length > 0 ? [...config.TRUST_PROXY] : false
  })
  try {
    await app.register(redisSuite, { ...options, config })
    await app.register(import('./routes/demo-events.js'))
    await app.register(import('./routes/demo-session.js'))
    await app.register(import('./routes/demo-cache.js'))
    app.get('/', async () => ({ name: 'fastify-redis-suite demo', health: '/health', metrics: '/metrics' }))
  } catch (err) {
    // A plugin that fails after Redis connected must not leave the connection (and the process) open.
    await app.close().catch(() => {})
    throw err
  }
  return app
}

async function main (): Promise<void> {
  let config: Readonly<Config>
  try {
    config = loadConfig()
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const problem of err.problems) console.error(`fastify-redis-suite: ${problem}`)
      process.exit(1)
    }
    throw err
  }
  let app: FastifyInstance
  try {
    app = await buildServer({ config })
  } catch (err) {
    console.error(`fastify-redis-suite: ${(err as Error).message}`)
    process.exit(1)
  }
  // The wiring the README shows: the drain and close are the suite's (routes/health.ts closeGracefully).
  closeWithGrace({ delay: config.SHUTDOWN_DRAIN_DELAY + 10_000 }, async ({ signal, err }) => {
    if (err !== undefined) app.log.error({ err }, 'closing after an error')
    else app.log.info({ signal }, 'closing')
    await app.closeGracefully()
  })
  await app.listen({ host: config.HOST, port: config.PORT })
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main()
}
