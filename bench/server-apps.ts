// The apps a bench server process can run (bench/server-process.ts starts one per process): each is
// what a deployment would run, built from a name and a few options so the parent sends plain JSON.
// Every app reads the same ~1 KB payload; the ones that read Redis warm their keys before listening.
import { existsSync } from 'node:fs'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyRateLimit from '@fastify/rate-limit'
import { Redis } from 'ioredis'
import type { Static } from 'typebox'
import { Compile } from 'typebox/compile'
import { bento } from './alternatives.js'
import { Payload, payload } from './payload.js'

// The suite as users run it: the compiled package (dist/). `npm run bench` builds it first (tsc -b);
// run through tsx from the sources, every closure created per request would also pay tsx's keepNames
// helper (__name), which the built code does not have.
const dist = new URL('../dist/index.js', import.meta.url)
if (!existsSync(dist)) throw new Error('bench: dist/ is missing; run `npm run build` first (npm run bench does)')
const { default: redisSuite } = await import(dist.href) as typeof import('../index.js')

export interface ServerSpec {
  app: AppName
  /** redis://host:port of the case's own redis-server. */
  redisUrl: string
  /** Keys the cache apps warm and serve as /items/0 … /items/N-1. */
  keys?: number
  /** Extra suite environment (e.g. RATE_LIMIT_SYNC). */
  env?: Record<string, string>
  /** Fastify's trustProxy list, and the suite's TRUST_PROXY: X-Forwarded-For from the load generator counts. */
  trustProxy?: string[]
  /** Extra options of the suite's cache (e.g. syncInterval). */
  cache?: Record<string, unknown>
}

/** Rate limit high enough that nothing is refused: the cases measure the cost of counting. */
const LIMIT = { max: 1_000_000_000, timeWindow: '1 minute' }

async function suite (spec: ServerSpec, routes: (app: FastifyInstance) => void | Promise<void>): Promise<FastifyInstance> {
  const trustProxy = spec.trustProxy
  const app = Fastify({ logger: false, ...(trustProxy === undefined ? {} : { trustProxy }) })
  await app.register(redisSuite, {
    env: {
      NODE_ENV: 'test',
      LOG_LEVEL: 'silent',
      REDIS_URL: spec.redisUrl,
      SESSION_SECRET: 'bench-secret-bench-secret-bench-secret-0123',
      RATE_LIMIT_GLOBAL: 'false',
      METRICS_ENABLED: 'true',
      ...(trustProxy === undefined ? {} : { TRUST_PROXY: trustProxy.join(',') }),
      ...spec.env
    },
    processEnv: false,
    // As production runs it (NODE_ENV=production turns freezing off; the bench's NODE_ENV is test so
    // that production's settings checks, such as a metrics token, do not apply).
    cache: { freeze: false, ...spec.cache }
  })
  await app.after()
  await routes(app)
  return app
}

function bare (spec: ServerSpec): FastifyInstance {
  const trustProxy = spec.trustProxy
  return Fastify({ logger: false, ...(trustProxy === undefined ? {} : { trustProxy }) })
}

function client (spec: ServerSpec): Redis {
  // A user's own client for a cache-aside or a limiter store: auto-pipelining on, as in the in-process cases.
  return new Redis(spec.redisUrl, { enableAutoPipelining: true })
}

const miss = (): never => { throw new Error('unexpected miss') }

export const apps = {
  /** A bare Fastify route returning the payload (serialised on every request). */
  raw: (spec: ServerSpec) => {
    const app = bare(spec)
    const body = payload(1)
    app.get('/plain', async () => body)
    return app
  },
  /** The whole suite registered; a route that uses none of it, and the same route cached by the HTTP cache. */
  suite: (spec: ServerSpec) => suite(spec, (app) => {
    const body = payload(1)
    app.get('/plain', async () => body)
    app.get('/cached', { config: { cache: { ttl: '1h' } } } as never, async () => body)
  }),
  /**
   * getOrSet with a schema from the Redis tier (memory tier off) at /items/:id over `keys` warm keys;
   * a memory-tier hit of one hot key at /hot; the same object without the cache at /plain.
   */
  'suite-cache': async (spec: ServerSpec) => {
    const app = await suite(spec, () => {})
    const redisTier = app.cache.namespace('bench', { memory: false, ttl: '1h' })
    const memory = app.cache.namespace('hot', { ttl: '1h' })
    const plain = payload(1)
    app.get<{ Params: { id: string } }>('/items/:id', async (request) =>
      redisTier.getOrSet(`k${request.params.id}`, miss, { schema: Payload }))
    app.get('/hot', async () => memory.getOrSet('hot', miss))
    app.get('/plain', async () => plain)
    await app.ready()
    const keys = spec.keys ?? 1_000
    for (let i = 0; i < keys; i++) await redisTier.set(`k${i}`, payload(i) as Static<typeof Payload>, { schema: Payload })
    await memory.set('hot', payload(1))
    return app
  },
  /** Hand-written cache-aside on a bare Fastify: ioredis GET + JSON.parse + the same schema's compiled check. */
  'hand-cache': async (spec: ServerSpec) => {
    const app = bare(spec)
    const redis = client(spec)
    const check = Compile(Payload)
    const keys = spec.keys ?? 1_000
    for (let i = 0; i < keys; i++) await redis.set(`hand:k${i}`, JSON.stringify(payload(i)), 'EX', 3_600)
    app.get<{ Params: { id: string } }>('/items/:id', async (request) => {
      const raw = await redis.get(`hand:k${request.params.id}`)
      if (raw === null) return miss()
      const value: unknown = JSON.parse(raw)
      if (!check.Check(value)) throw new Error('cached value does not match its schema')
      return value
    })
    app.addHook('onClose', async () => { redis.disconnect() })
    return app
  },
  /** bentocache with its memory tier, Redis tier and bus, one hot key. */
  'bento-cache': async (spec: ServerSpec) => {
    const app = bare(spec)
    const redis = client(spec)
    const cache = bento(redis, 'both')
    await cache.getOrSet({ key: 'hot', factory: () => payload(1), ttl: '1h' })
    app.get('/hot', async () => cache.getOrSet({ key: 'hot', factory: miss, ttl: '1h' }))
    app.addHook('onClose', async () => { await cache.disconnect().catch(() => {}); redis.disconnect() })
    return app
  },
  /** The suite's limiter on /limited (RATE_LIMIT_SYNC from env: exact or batched), the same route unlimited, and with its headers by hand. */
  'suite-rate-limit': (spec: ServerSpec) => suite(spec, (app) => {
    const body = payload(1)
    app.get('/limited', { config: { rateLimit: LIMIT } }, async () => body)
    app.get('/unlimited', async () => body)
    // Control for batched mode: the route unlimited, with the same two RateLimit headers (the same
    // lengths, a remaining count that changes per request) set by hand; what batched mode costs
    // beyond this is the limiter's own work, the rest is Node's handling of two more headers.
    let remaining = LIMIT.max
    app.get('/headers', async (_request, reply) => {
      reply.header('ratelimit-policy', '"route";q=1000000000;w=60')
      reply.header('ratelimit', `"route";r=${--remaining};t=60`)
      return body
    })
    // Case 12: the same limit as two policies (per client per minute and per day), and as a list of one.
    app.get('/two-policies', { config: { rateLimit: { policies: [{ name: 'minute', ...LIMIT }, { name: 'day', max: LIMIT.max, timeWindow: '1d' }] } } }, async () => body)
    app.get('/one-policy', { config: { rateLimit: { policies: [{ name: 'minute', ...LIMIT }] } } }, async () => body)
  }),
  /** @fastify/rate-limit with its Redis store on a bare Fastify. */
  'official-rate-limit': async (spec: ServerSpec) => {
    const app = bare(spec)
    const redis = client(spec)
    await app.register(fastifyRateLimit, { global: false, redis })
    const body = payload(1)
    app.get('/limited', { config: { rateLimit: LIMIT } }, async () => body)
    app.addHook('onClose', async () => { redis.disconnect() })
    return app
  }
} satisfies Record<string, (spec: ServerSpec) => unknown>

export type AppName = keyof typeof apps
