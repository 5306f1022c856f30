// Case 1: a cached route's hits (served in preParsing from the stored bytes) against a raw Fastify
// route returning the same object, both over HTTP with autocannon. A control row, the same route in
// the suite without the cache, separates the hit path from the suite's per-request cost.
import Fastify from 'fastify'
import { buildSuiteApp, CaseUnavailableError, payload, startRedis } from '../environment.js'
import { compare, type Settings } from '../harness.js'
import { httpContender, listen } from '../http.js'
import { ratioRows, type CaseResult } from '../results.js'

export async function routeCache (settings: Settings): Promise<CaseResult> {
  const redis = await startRedis()
  const body = payload(1)
  const raw = Fastify({ logger: false })
  raw.get('/users/1', async () => body)
  const app = await buildSuiteApp(redis, {}, (app) => {
    app.get('/users/1', { config: { cache: { ttl: '1h' } } } as never, async () => body)
    app.get('/uncached/1', async () => body)
  })
  try {
    await app.inject({ url: '/users/1' })
    const second = await app.inject({ url: '/users/1' })
    if (second.headers['x-cache'] !== 'HIT') {
      throw new CaseUnavailableError(`the route cache is not active in this tree (second request: x-cache ${String(second.headers['x-cache'])})`)
    }
    const ours = await listen(app)
    const theirs = await listen(raw)
    const c = settings.connections
    const comparison = await compare(settings,
      httpContender('ours (route cache hit)', { url: `${ours}/users/1` }, c),
      [httpContender('raw Fastify route', { url: `${theirs}/users/1` }, c),
        httpContender('the same route in the suite, uncached', { url: `${ours}/uncached/1` }, c)],
      settings.httpRoundMs)
    return {
      id: 1,
      title: 'Route cache hit vs raw route',
      rows: ratioRows(comparison, [
        { label: 'vs raw Fastify route returning the same object', target: 1.0 },
        { label: 'vs the same route in the suite, uncached (control: the hit path alone)', target: undefined }
      ], 'req/s'),
      notes: [`autocannon, ${c} connections, ~1 KB JSON body; the raw route serialises the object on every request.`]
    }
  } finally {
    await app.close()
    await raw.close()
    await redis.stop()
  }
}
