// Case 6: a rate-limited route (our store, exact mode: one Redis round trip) against the same route
// unlimited in the same app, and against @fastify/rate-limit with its own Redis store; then the same
// route in batched mode (RATE_LIMIT_SYNC=batched: leases of quota, most requests decided locally)
// against the route unlimited. The limit is high enough that nothing is refused: this measures the
// cost of counting.
import Fastify from 'fastify'
import fastifyRateLimit from '@fastify/rate-limit'
import { buildSuiteApp, connected, hasFile, payload, plainClient, startRedis, CaseUnavailableError } from '../environment.js'
import { compare, type Settings } from '../harness.js'
import { httpContender, listen } from '../http.js'
import { ratioRows, type CaseResult } from '../results.js'

const LIMIT = { max: 1_000_000_000, timeWindow: '1 minute' }

export async function rateLimit (settings: Settings): Promise<CaseResult> {
  if (!hasFile('plugins/rate-limit.ts')) throw new CaseUnavailableError('plugins/rate-limit.ts is not in this tree')
  const redis = await startRedis()
  const body = payload(1)
  const app = await buildSuiteApp(redis, { RATE_LIMIT_GLOBAL: 'false' }, (app) => {
    app.get('/limited', { config: { rateLimit: LIMIT } }, async () => body)
    app.get('/unlimited', async () => body)
  })
  const batched = await buildSuiteApp(redis, { RATE_LIMIT_GLOBAL: 'false', RATE_LIMIT_SYNC: 'batched' }, (app) => {
    app.get('/limited', { config: { rateLimit: LIMIT } }, async () => body)
    app.get('/unlimited', async () => body)
  })
  const client = await connected(plainClient(redis))
  const theirs = Fastify({ logger: false })
  try {
    await theirs.register(fastifyRateLimit, { global: false, redis: client })
    theirs.get('/limited', { config: { rateLimit: LIMIT } }, async () => body)
    const first = await app.inject({ url: '/limited' })
    if (first.headers['ratelimit'] === undefined && first.headers['x-ratelimit-limit'] === undefined) {
      throw new CaseUnavailableError('the suite does not limit routes with config.rateLimit in this tree')
    }
    const ours = await listen(app)
    const oursBatched = await listen(batched)
    const official = await listen(theirs)
    const c = settings.connections
    const comparison = await compare(settings,
      httpContender('ours limited', { url: `${ours}/limited` }, c),
      [
        httpContender('ours unlimited', { url: `${ours}/unlimited` }, c),
        httpContender('@fastify/rate-limit Redis store', { url: `${official}/limited` }, c)
      ],
      settings.httpRoundMs)
    const batchedComparison = await compare(settings,
      httpContender('ours limited, batched', { url: `${oursBatched}/limited` }, c),
      [httpContender('ours unlimited (batched app)', { url: `${oursBatched}/unlimited` }, c)],
      settings.httpRoundMs)
    return {
      id: 6,
      title: 'Rate-limited route',
      rows: [
        ...ratioRows(comparison, [
          { label: 'exact: vs the same route unlimited', target: undefined },
          { label: "exact: vs @fastify/rate-limit's Redis store", target: 1.2 }
        ], 'req/s'),
        ...ratioRows(batchedComparison, [{ label: 'batched: vs the same route unlimited', target: 0.9 }], 'req/s')
      ],
      notes: [`autocannon, ${c} connections from one client address (one counter: a hot key, where same-turn increments merge into one script call); limit ${LIMIT.max} per minute so nothing is refused.`]
    }
  } finally {
    await app.close()
    await batched.close()
    await theirs.close()
    client.disconnect()
    await redis.stop()
  }
}
