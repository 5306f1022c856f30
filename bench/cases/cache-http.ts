// Case 11: cache hits as a deployment pays them, over HTTP, each app in a server process of its own
// (bench/server-process.ts) and the load generator in another; req/s and the server's CPU µs per
// request, both as ratios to the alternative in the same round. In process, 32 calls in flight let
// a tick's GETs leave as one MGET; over HTTP each request is on its own, as in production.
//  - Redis tier (memory tier off), 1,000 keys round-robin, schema checked, against a bare Fastify route
//    doing ioredis GET + JSON.parse + the same schema's compiled TypeBox check;
//  - memory tier, one hot key, against the same app's route returning the object without the cache,
//    and against bentocache (memory + Redis + bus) on a bare Fastify;
//  - the ceiling of the bentocache comparison: a bare Fastify route returning the same object with no
//    cache at all, against bentocache's hit. No cache in front of a route can beat that ratio.
import { commandCalls, commandDelta, startRedis } from '../environment.js'
import { compare, spread, type Settings } from '../harness.js'
import { load } from '../http.js'
import { figureRow, httpRows, type CaseResult } from '../results.js'
import { serverContender, withServers } from '../server-process.js'

export async function cacheHttp (settings: Settings): Promise<CaseResult> {
  const keys = settings.quick ? 200 : 1_000
  const redis = await startRedis()
  return await withServers([
    { app: 'suite-cache', redisUrl: redis.url, keys },
    { app: 'hand-cache', redisUrl: redis.url, keys },
    { app: 'bento-cache', redisUrl: redis.url },
    { app: 'raw', redisUrl: redis.url }
  ], async ([ours, hand, bento, raw]) => {
    if (ours === undefined || hand === undefined || bento === undefined || raw === undefined) throw new Error('a bench server did not start')
    const c = settings.connections
    const vary = { count: keys }
    const redisTier = await compare(settings,
      serverContender('ours getOrSet, Redis tier', ours, { path: '/items/{i}', vary }, c, redis),
      [serverContender('hand-written ioredis GET + parse + check', hand, { path: '/items/{i}', vary }, c, redis)],
      settings.httpRoundMs)
    const memoryTier = await compare(settings,
      serverContender('ours getOrSet, memory tier', ours, { path: '/hot' }, c),
      [
        serverContender('ours, the same object without the cache', ours, { path: '/plain' }, c),
        serverContender('bentocache memory + Redis + bus', bento, { path: '/hot' }, c),
        serverContender('bare Fastify, the same object, no cache', raw, { path: '/plain' }, c)
      ],
      settings.httpRoundMs)
    // The memory hit's own cost: its CPU per request minus the uncached route's, round by round.
    const extra = memoryTier.ours.map((sample, round) => (sample.cpuUs ?? Number.NaN) - (memoryTier.theirs[0]?.[round]?.cpuUs ?? Number.NaN))
    // The most any cache could read against bentocache: a route with no cache and nothing else, round by round.
    const ceiling = (memoryTier.theirs[2] ?? []).map((sample, round) => sample.rate / (memoryTier.theirs[1]?.[round]?.rate ?? Number.NaN))
    // Commands Redis ran per Redis-tier hit over HTTP (the health monitor's PINGs left out).
    const before = await commandCalls(redis)
    const sample = await load({ url: `${ours.url}/items/{i}`, vary }, 500, c)
    const delta = commandDelta(before, await commandCalls(redis))
    const perHit = (delta.total - (delta.byCommand['ping'] ?? 0)) / Math.max(1, sample.requests)
    return {
      id: 11,
      title: 'Cache hits per request over HTTP',
      rows: [
        ...httpRows(redisTier, [{ label: 'Redis tier, 1,000 keys: vs hand-written ioredis GET + JSON.parse + schema check', target: 1.0, cpuTarget: 1.0 }]),
        ...httpRows(memoryTier, [
          { label: 'memory tier, hot key: vs the same route returning the object uncached', target: undefined },
          { label: 'memory tier, hot key: vs bentocache memory + Redis + bus', target: 1.6 },
          { label: 'memory tier, hot key: vs a bare Fastify route returning the object (no cache, no suite)', target: undefined }
        ]),
        figureRow('ceiling of the bentocache comparison: bare Fastify route with no cache / bentocache hit, req/s', ceiling, '×'),
        figureRow('memory-tier hit: server CPU per request above the uncached route', extra, 'µs', { text: '≤ 1', met: (median) => median <= 1 }),
        figureRow('Redis commands per Redis-tier hit, ours', [perHit], 'commands', { text: '≤ 1', met: (median) => median <= 1.01 })
      ],
      notes: [
        `autocannon in its own process, ${c} connections, ~1 KB JSON; each app in a server process of its own, server CPU = that process's user + system time over the requests it answered (process.cpuUsage, all threads). ` +
        `Redis tier: ${keys} warm keys requested round-robin (/items/0 … /items/${keys - 1}, the next index from one counter shared by every connection), both sides check the value against the same TypeBox schema. ` +
        `Memory-tier hit minus uncached route, median ${spread(extra).median.toFixed(2)} µs. ` +
        `A bare Fastify route that returns the object with no cache and no plugin answers ${spread(ceiling).median.toFixed(2)}× bentocache's hit in req/s: the most any cache's hit could read against it.`
      ]
    }
  }, () => redis.stop())
}
