// Validates the environment once and exposes it as `app.config`: frozen, typed from the schema,
// redacted whenever it is logged or serialised. Also checks that Fastify's trustProxy matches
// TRUST_PROXY, since only Fastify's setting decides who the client is.
//
// Lifecycle (configPlugin): at registration loads and validates the config (or takes the given one) and
// checks trustProxy; decorates app.config. No hooks, nothing to close.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { configWarnings, loadConfig, suiteLogOptions, trustProxyProblem, type Config, type LoadConfigOptions } from '../lib/config/index.js'
import { ConfigError } from '../lib/errors/index.js'

export { PluginConflictError } from '../lib/errors/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: Readonly<Config>
  }
}

export interface ConfigPluginOptions extends LoadConfigOptions {
  /** An already loaded config (the demo server loads it first to pick its log level and port). */
  config?: Readonly<Config>
}

async function configPlugin (app: FastifyInstance, options: ConfigPluginOptions): Promise<void> {
  const config = options.config ?? loadConfig(options)
  const trustProxy = fastifyOptions(app)
  if (trustProxy === undefined) {
    app.log.warn('could not read the trustProxy Fastify was created with: make sure it lists the TRUST_PROXY addresses')
  } else {
    const problem = trustProxyProblem(config.TRUST_PROXY, trustProxy.trustProxy)
    if (problem !== undefined) throw new ConfigError([problem])
  }
  app.decorate('config', config)
  const log = app.log.child({ plugin: 'config' }, suiteLogOptions(config))
  // An unknown NODE_ENV, a misspelt variable: start, but say so once, naming the variable.
  for (const warning of configWarnings(config)) log.warn(warning)
  log.debug({ config }, 'configuration loaded')
}

/**
 * The options the app passed to Fastify(). `initialConfig` leaves trustProxy out, so this reads the
 * instance's `fastify.options` slot (inherited by every encapsulated child); test/plugins/config.test.ts
 * pins it to the installed Fastify.
 */
function fastifyOptions (app: FastifyInstance): { trustProxy?: unknown } | undefined {
  for (let level: object | null = app; level !== null; level = Object.getPrototypeOf(level) as object | null) {
    const slot = Object.getOwnPropertySymbols(level).find((symbol) => symbol.description === 'fastify.options')
    if (slot !== undefined) return (level as Record<symbol, { trustProxy?: unknown } | undefined>)[slot]
  }
  return undefined
}

export default fp(configPlugin, { name: 'redis-suite-config', fastify: '5.x' })
