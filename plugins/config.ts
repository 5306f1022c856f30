// Validates the environment once and exposes it as `app.config`: frozen, typed from the schema,
// redacted whenever it is logged or serialised.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { loadConfig, type Config, type LoadConfigOptions } from '../lib/config.js'

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
  app.decorate('config', config)
  app.log.debug({ config }, 'configuration loaded')
}

export default fp(configPlugin, { name: 'redis-suite-config', fastify: '5.x' })
