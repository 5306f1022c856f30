import t from 'tap'
import { readFileSync } from 'node:fs'
import { parse } from 'yaml'
import { renderEnvExample, renderTable } from '../../../scripts/config-docs.js'
import { ConfigSchema } from '../../../lib/config/schema.js'
import { loadConfig } from '../../../lib/config/load.js'

const STALE = 'stale: run `npm run build && npm run docs:config`'

t.test('.env.example matches the schema', async (t) => {
  t.equal(readFileSync('.env.example', 'utf8'), renderEnvExample(), STALE)
})

t.test("README's configuration table matches the schema", async (t) => {
  t.ok(readFileSync('README.md', 'utf8').includes(renderTable()), STALE)
})

t.test('docker-compose.yml parses and its app variables are valid config', async (t) => {
  const compose = parse(readFileSync('docker-compose.yml', 'utf8'))
  t.same(Object.keys(compose.services).sort(), ['app', 'redis', 'redis-cache'])
  const env = compose.services.app.environment as Record<string, string>
  for (const name of Object.keys(env)) t.ok(name in ConfigSchema.properties, `${name} is a known variable`)
  const substituted = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)
    .replace(/\$\{SESSION_SECRET[^}]*\}/g, 's'.repeat(40))
    .replace(/\$\{REDIS_PASSWORD[^}]*\}/g, 'pw')
    .replace(/\$\{METRICS_TOKEN[^}]*\}/g, 'm'.repeat(20))]))
  const config = loadConfig({ env: substituted, processEnv: false })
  t.equal(config.NODE_ENV, 'production', 'the compose stack passes the production checks')
  t.match(config.REDIS_URL, /@redis:6379/, 'the app reaches Redis by service name')
  t.match(config.REDIS_CACHE_URL, /@redis-cache:6379/)

  const flags = (service: string) => (compose.services[service].command as string[]).join(' ')
  t.match(flags('redis'), /--appendfsync everysec/)
  t.match(flags('redis'), /--maxmemory-policy noeviction/)
  t.match(flags('redis-cache'), /--maxmemory-policy allkeys-lru/)
  for (const service of ['redis', 'redis-cache', 'app']) t.ok(compose.services[service].healthcheck, `${service} has a health check`)
  t.equal(compose.services.app.depends_on.redis.condition, 'service_healthy')
})
