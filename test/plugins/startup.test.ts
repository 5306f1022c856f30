// Issue 28 item 2: start-up says what it did. One line per feature with the backend it really uses, one
// warning naming the address when Redis does not answer boot, nothing claiming Redis when it is not there,
// and a connect timeout that cannot fit Fastify's pluginTimeout refused with both named.
import { Writable } from 'node:stream'
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import redisSuite from '../../index.js'
import { getFreePort, useRedis } from '../helpers/index.js'

interface Line { level: number, msg: string, plugin?: string }

async function start (t: Test, env: Record<string, string>, fastifyOptions: { pluginTimeout?: number } = {}): Promise<{ app: FastifyInstance, lines: Line[] }> {
  const lines: Line[] = []
  const stream = new Writable({ write (chunk, _encoding, callback) { lines.push(JSON.parse(String(chunk)) as Line); callback() } })
  const app = Fastify({ logger: { level: 'info', stream }, ...fastifyOptions })
  t.teardown(() => app.close())
  await app.register(redisSuite, { env: { NODE_ENV: 'development', SESSION_SECRET: 's'.repeat(32), ...env }, processEnv: false })
  await app.ready()
  return { app, lines }
}

/** The start-up line of each feature (the plugins that use Redis or its in-process stand-in). */
function featureLines (lines: Line[]): Record<string, string[]> {
  const byPlugin: Record<string, string[]> = {}
  for (const line of lines) {
    if (line.plugin === undefined || !['redis', 'cache', 'session', 'rate-limit', 'pubsub', 'locks', 'presence'].includes(line.plugin)) continue
    ;(byPlugin[line.plugin] ??= []).push(line.msg)
  }
  return byPlugin
}

t.test('Redis unreachable at boot (REDIS_WAIT_ON_BOOT=false): one warning naming host and port; no feature claims Redis', async (t) => {
  const port = await getFreePort()
  const { app, lines } = await start(t, { REDIS_URL: `redis://127.0.0.1:${port}`, REDIS_WAIT_ON_BOOT: 'false' })
  t.not(app.redisState.status, 'connected')
  const warnings = lines.filter((line) => line.level === 40 && line.plugin === 'redis')
  t.equal(warnings.length, 1, `one warning: ${JSON.stringify(warnings)}`)
  t.match(warnings[0]?.msg, new RegExp(`Redis at 127\\.0\\.0\\.1:${port} is not reachable \\(.*ECONNREFUSED.*\\): starting degraded`))
  const features = featureLines(lines)
  for (const plugin of ['cache', 'session', 'rate-limit', 'pubsub']) {
    t.equal(features[plugin]?.length, 1, `${plugin}: one line (${JSON.stringify(features[plugin])})`)
    t.match(features[plugin]?.[0], /not reachable yet|once Redis answers/, `${plugin} says Redis is not there yet`)
  }
  t.notOk(lines.some((line) => /counted in Redis;|stored in Redis$|^(pubsub|locks|presence): Redis$/.test(line.msg)), 'nothing claims Redis')
  // The warning is once per boot: the connect timeout passing later adds none.
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal(lines.filter((line) => line.level === 40 && line.plugin === 'redis').length, 1)
})

t.test('Redis connected: each feature says Redis, once', async (t) => {
  const redis = await useRedis(t)
  const { lines } = await start(t, { REDIS_URL: redis.url })
  const features = featureLines(lines)
  t.same(features.redis?.filter((msg) => msg.startsWith('Redis')), [`Redis connected: standalone at 127.0.0.1:${redis.port}`])
  t.match(features.cache, [/^cache: memory tier \(10000 entries, 67108864 bytes\) \+ Redis tier$/])
  t.same(features.session, ['sessions: stored in Redis'])
  t.match(features['rate-limit'], [/^rate limit: counted in Redis; while Redis is down/])
  t.same(features.pubsub, ['pubsub: Redis'])
  t.same(features.locks, ['locks: Redis'])
  t.same(features.presence, ['presence: Redis'])
})

t.test('no Redis configured: in-process stores, and no line says Redis is used', async (t) => {
  const { lines } = await start(t, {})
  const features = featureLines(lines)
  t.match(features.cache, [/no Redis tier \(no Redis configured\)/])
  t.match(features.session, [/process memory/])
  t.match(features.pubsub, [/in process/])
  t.match(features.locks, [/in process/])
  t.match(features.presence, [/in process/])
  t.match(features['rate-limit'], [/no Redis configured/])
})

t.test('a REDIS_CONNECT_TIMEOUT that cannot fit Fastify\'s pluginTimeout is refused, naming both', async (t) => {
  const port = await getFreePort()
  await t.rejects(start(t, { REDIS_URL: `redis://127.0.0.1:${port}`, REDIS_WAIT_ON_BOOT: 'true', REDIS_CONNECT_TIMEOUT: '15s' }), {
    name: 'ConfigError',
    message: /^REDIS_CONNECT_TIMEOUT=15000ms does not fit Fastify's pluginTimeout \(10000ms\).*\{ pluginTimeout: 20000 \}/
  })
  const redis = await useRedis(t)
  const { app } = await start(t, { REDIS_URL: redis.url, REDIS_WAIT_ON_BOOT: 'true', REDIS_CONNECT_TIMEOUT: '15s' }, { pluginTimeout: 20_000 })
  t.equal(app.redisState.status, 'connected', 'with room in pluginTimeout it starts')
})
