// What every case needs: its own redis-server (the test helpers'; never the machine's 6379), our app
// built the way server.ts builds it, plain ioredis clients for the alternatives, and the machine facts
// BENCHMARKS.md records.
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import Fastify, { type FastifyInstance } from 'fastify'
import { Redis, type RedisOptions } from 'ioredis'
import { buildServer } from '../server.js'
import redisSuite from '../index.js'
import { startRedis, type RedisServer } from '../test/helpers/index.js'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

export { startRedis, type RedisServer }
export { payload } from './payload.js'

/** Thrown by a case whose feature is not in this tree: the runner lists it as not run, with the reason. */
export class CaseUnavailableError extends Error {}

/** Environment every instance of our app gets: quiet, and no global rate limit unless a case asks. */
export function appEnv (redis: RedisServer, extra: Record<string, string> = {}): Record<string, string> {
  return {
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    REDIS_URL: redis.url,
    SESSION_SECRET: 'bench-secret-bench-secret-bench-secret-0123',
    RATE_LIMIT_GLOBAL: 'false',
    METRICS_ENABLED: 'true',
    ...extra
  }
}

/**
 * The suite registered into a bare Fastify (no server options, no demo routes), as a user's own app
 * registers it, plus the case's routes; ready. For the cases that compare against a bare Fastify route.
 */
export async function buildSuiteApp (redis: RedisServer, extra: Record<string, string> = {},
  routes?: (app: FastifyInstance) => void): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  await app.register(redisSuite, { env: appEnv(redis, extra), processEnv: false })
  routes?.(app)
  await app.ready()
  return app
}

/** Our app, built exactly as the demo server builds it, plus the case's routes; ready (not listening). */
export async function buildOurApp (redis: RedisServer, extra: Record<string, string> = {},
  routes?: (app: FastifyInstance) => void): Promise<FastifyInstance> {
  const app = await buildServer({ env: appEnv(redis, extra), processEnv: false, logger: false })
  routes?.(app)
  await app.ready()
  return app
}

/** A plain ioredis client as a user would write it for a cache-aside: auto-pipelining on. */
export function plainClient (redis: RedisServer, options: RedisOptions = {}): Redis {
  return new Redis(redis.port, redis.host, { enableAutoPipelining: true, lazyConnect: false, ...options })
}

export async function connected (client: Redis): Promise<Redis> {
  if (client.status !== 'ready') await new Promise((resolve, reject) => { client.once('ready', resolve); client.once('error', reject) })
  return client
}

/** Optional plugin files: a case that needs one is left out (and says so) while it is missing. */
export function hasFile (relative: string): boolean {
  return existsSync(path.join(ROOT, relative))
}

export interface Machine {
  cpus: number
  cpuModel: string
  node: string
  redis: string
  os: string
  date: string
}

export function machine (): Machine {
  let redis = 'unknown'
  try {
    const out = execFileSync('redis-server', ['--version'], { encoding: 'utf8' })
    redis = /v=(\S+)/.exec(out)?.[1] ?? out.trim()
  } catch {}
  let cpuModel = os.cpus()[0]?.model ?? 'unknown'
  try {
    cpuModel = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpuModel
  } catch {}
  return {
    cpus: os.availableParallelism(),
    cpuModel,
    node: process.version,
    redis,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    date: new Date().toISOString().slice(0, 10)
  }
}

/** Redis `INFO commandstats` as command → calls. */
export async function commandCalls (redis: RedisServer): Promise<Map<string, number>> {
  const text = await redis.cli('INFO', 'commandstats')
  const calls = new Map<string, number>()
  for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(match[1] ?? '', Number(match[2]))
  return calls
}

/** Commands run between two commandstats snapshots, excluding the harness's own INFO/CONFIG. */
export function commandDelta (before: Map<string, number>, after: Map<string, number>): { total: number, byCommand: Record<string, number> } {
  const byCommand: Record<string, number> = {}
  let total = 0
  for (const [command, calls] of after) {
    if (command === 'info' || command === 'config|resetstat') continue
    const delta = calls - (before.get(command) ?? 0)
    if (delta > 0) {
      byCommand[command] = delta
      total += delta
    }
  }
  return { total, byCommand }
}

/**
 * Counts the commands clients send (what a round trip carries; commands run inside a Lua script are
 * not sent). PINGs of the health monitor are left out. Returns a reader and an undo.
 */
export function countSentCommands (clients: ReadonlyArray<{ sendCommand: (...args: never[]) => unknown }>): { read: () => Record<string, number>, reset: () => void, restore: () => void } {
  let counts: Record<string, number> = {}
  const originals = clients.map((client) => {
    const original = client.sendCommand
    const patched = (...args: unknown[]): unknown => {
      const name = (args[0] as { name?: string } | undefined)?.name ?? '?'
      if (name !== 'ping') counts[name] = (counts[name] ?? 0) + 1
      return (original as (...a: unknown[]) => unknown).apply(client, args)
    }
    client.sendCommand = patched as never
    return { client, original }
  })
  return {
    read: () => ({ ...counts }),
    reset: () => { counts = {} },
    restore: () => { for (const { client, original } of originals) client.sendCommand = original }
  }
}
