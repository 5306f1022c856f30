// Case 10 (issue 18): what the suite costs a route that uses none of its features. Every feature is
// registered (cache, HTTP cache, sessions, rate limits with the global limit off, pub/sub, presence,
// locks, health, metrics) and a plain route returns a small object; the contender is the same route
// on a bare Fastify. The gap is what runs on every request: global hooks and per-request metrics.
import Fastify from 'fastify'
import { buildSuiteApp, startRedis } from '../environment.js'
import { compare, type Settings } from '../harness.js'
import { httpContender, listen } from '../http.js'
import { ratioRows, type CaseResult } from '../results.js'

const BODY = { ok: true, service: 'plain', items: [1, 2, 3] }

export async function suiteOverhead (settings: Settings): Promise<CaseResult> {
  const redis = await startRedis()
  const raw = Fastify({ logger: false })
  raw.get('/plain', async () => BODY)
  const app = await buildSuiteApp(redis, {}, (app) => {
    app.get('/plain', async () => BODY)
  })
  try {
    const ours = await listen(app)
    const theirs = await listen(raw)
    const c = settings.connections
    const comparison = await compare(settings,
      httpContender('ours (whole suite, plain route)', { url: `${ours}/plain` }, c),
      [httpContender('raw Fastify route', { url: `${theirs}/plain` }, c)],
      settings.httpRoundMs)
    return {
      id: 10,
      title: 'The suite on a plain route vs raw Fastify',
      rows: ratioRows(comparison, [{ label: 'vs the same route on a bare Fastify', target: 0.95 }], 'req/s'),
      notes: [`autocannon, ${c} connections; every feature registered, global rate limit off, the route uses none of them.`]
    }
  } finally {
    await app.close()
    await raw.close()
    await redis.stop()
  }
}
