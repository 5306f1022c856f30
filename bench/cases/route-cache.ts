// Case 1: a cached route's hits (served in preParsing from the stored bytes) against a raw Fastify
// route returning the same object; a control row, the same route in the suite without the cache,
// separates the hit path from the suite's per-request cost. Each app in a server process of its own
// (bench/server-process.ts): req/s and the server's CPU µs per request, as ratios in the same round.
import { startRedis } from '../environment.js'
import { compare, type Settings } from '../harness.js'
import { load } from '../http.js'
import { httpRows, type CaseResult } from '../results.js'
import { serverContender, withServers } from '../server-process.js'

export async function routeCache (settings: Settings): Promise<CaseResult> {
  const redis = await startRedis()
  return await withServers([{ app: 'suite', redisUrl: redis.url }, { app: 'raw', redisUrl: redis.url }], async ([ours, raw]) => {
    if (ours === undefined || raw === undefined) throw new Error('a bench server did not start')
    const first = await load({ url: `${ours.url}/cached` }, 200, 1)
    if (first.errors > 0) throw new Error(`the cached route answered errors (${JSON.stringify(first.statuses)})`)
    const c = settings.connections
    const comparison = await compare(settings,
      serverContender('ours (route cache hit)', ours, { path: '/cached' }, c),
      [
        serverContender('raw Fastify route', raw, { path: '/plain' }, c),
        serverContender('the same route in the suite, uncached', ours, { path: '/plain' }, c)
      ],
      settings.httpRoundMs)
    return {
      id: 1,
      title: 'Route cache hit vs raw route',
      rows: httpRows(comparison, [
        { label: 'vs raw Fastify route returning the same object', target: 1.0 },
        { label: 'vs the same route in the suite, uncached (control: the hit path alone)', target: undefined }
      ]),
      notes: [`autocannon in its own process, ${c} connections, ~1 KB JSON body; each app in a server process of its own (server CPU = its user + system time over the requests it answered); the raw route serialises the object on every request.`]
    }
  }, () => redis.stop())
}
