// Case 10 (issue 18): what the suite costs a route that uses none of its features. Every feature is
// registered (cache, HTTP cache, sessions, rate limits with the global limit off, pub/sub, presence,
// locks, health, metrics) and a plain route returns the ~1 KB object; the contender is the same route
// on a bare Fastify. The gap is what runs on every request: global hooks and per-request metrics.
// Each app in a server process of its own: req/s and the server's CPU µs per request.
import { startRedis } from '../environment.js'
import { compare, type Settings } from '../harness.js'
import { httpRows, type CaseResult } from '../results.js'
import { serverContender, withServers } from '../server-process.js'

export async function suiteOverhead (settings: Settings): Promise<CaseResult> {
  const redis = await startRedis()
  return await withServers([{ app: 'suite', redisUrl: redis.url }, { app: 'raw', redisUrl: redis.url }], async ([ours, raw]) => {
    if (ours === undefined || raw === undefined) throw new Error('a bench server did not start')
    const c = settings.connections
    const comparison = await compare(settings,
      serverContender('ours (whole suite, plain route)', ours, { path: '/plain' }, c),
      [serverContender('raw Fastify route', raw, { path: '/plain' }, c)],
      settings.httpRoundMs)
    return {
      id: 10,
      title: 'The suite on a plain route vs raw Fastify',
      rows: httpRows(comparison, [{ label: 'vs the same route on a bare Fastify', target: 0.95 }]),
      notes: [`autocannon in its own process, ${c} connections; each app in a server process of its own; every feature registered, global rate limit off, the route uses none of them.`]
    }
  }, () => redis.stop())
}
