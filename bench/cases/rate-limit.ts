// Case 6: a rate-limited route as a deployment pays it, each app in a server process of its own
// (bench/server-process.ts), req/s and server CPU µs per request as ratios in the same round:
//  - exact mode (one Redis script call per decision; same-turn increments of one key merge) against
//    the same route unlimited and against @fastify/rate-limit with its own Redis store, from one
//    client address (one hot key) and from 1,000 (X-Forwarded-For behind a trusted proxy), as real
//    traffic has;
//  - batched mode (RATE_LIMIT_SYNC=batched: leases of quota, most requests decided locally) against
//    the same route unlimited, and against exact mode in CPU per request; and, as a control, against
//    the route unlimited with the same two RateLimit headers set by hand (what is left beyond that
//    is the limiter's own work; the headers' cost is Node's).
// The limit is high enough that nothing is refused: this measures the cost of counting.
import { startRedis } from '../environment.js'
import { compare, type Settings } from '../harness.js'
import { httpRows, type CaseResult } from '../results.js'
import { serverContender, withServers } from '../server-process.js'

const CLIENTS = 1_000
const PROXY = ['127.0.0.1']

export async function rateLimit (settings: Settings): Promise<CaseResult> {
  const redis = await startRedis()
  return await withServers([
    { app: 'suite-rate-limit', redisUrl: redis.url, trustProxy: PROXY },
    { app: 'suite-rate-limit', redisUrl: redis.url, trustProxy: PROXY, env: { RATE_LIMIT_SYNC: 'batched' } },
    { app: 'official-rate-limit', redisUrl: redis.url, trustProxy: PROXY }
  ], async ([exact, batched, official]) => {
    if (exact === undefined || batched === undefined || official === undefined) throw new Error('a bench server did not start')
    const c = settings.connections
    const many = { count: CLIENTS, forwardedFor: true }
    const oneClient = await compare(settings,
      serverContender('ours exact', exact, { path: '/limited' }, c, redis),
      [
        serverContender('ours unlimited', exact, { path: '/unlimited' }, c, redis),
        serverContender('@fastify/rate-limit Redis store', official, { path: '/limited' }, c, redis)
      ],
      settings.httpRoundMs)
    const manyClients = await compare(settings,
      serverContender(`ours exact, ${CLIENTS} clients`, exact, { path: '/limited', vary: many }, c, redis),
      [serverContender(`@fastify/rate-limit Redis store, ${CLIENTS} clients`, official, { path: '/limited', vary: many }, c, redis)],
      settings.httpRoundMs)
    const batchedComparison = await compare(settings,
      serverContender('ours batched', batched, { path: '/limited' }, c),
      [
        serverContender('ours unlimited (batched app)', batched, { path: '/unlimited' }, c),
        serverContender('ours exact', exact, { path: '/limited' }, c),
        serverContender('ours unlimited with the two RateLimit headers by hand (batched app)', batched, { path: '/headers' }, c)
      ],
      settings.httpRoundMs)
    return {
      id: 6,
      title: 'Rate-limited route',
      rows: [
        ...httpRows(oneClient, [
          { label: 'exact, one client: vs the same route unlimited', target: undefined },
          { label: "exact, one client: vs @fastify/rate-limit's Redis store", target: 1.2 }
        ]),
        ...httpRows(manyClients, [{ label: `exact, ${CLIENTS.toLocaleString('en-US')} clients: vs @fastify/rate-limit's Redis store`, target: 1.2 }]),
        ...httpRows(batchedComparison, [
          { label: 'batched: vs the same route unlimited', target: 0.9 },
          { label: 'batched: vs exact mode', target: undefined, cpuTarget: 1.0 },
          { label: 'batched: vs the route unlimited with the same two RateLimit headers set by hand (control)', target: undefined }
        ])
      ],
      notes: [`autocannon in its own process, ${c} connections; each app in a server process of its own (server CPU = its user + system time over the requests it answered; Redis CPU = redis-server's INFO cpu over the same requests). One client: every request from one address (one counter, a hot key). ${CLIENTS.toLocaleString('en-US')} clients: each request carries the next of ${CLIENTS} X-Forwarded-For addresses (one counter shared by every connection), trusted from 127.0.0.1 by both apps. Limit 1,000,000,000 per minute so nothing is refused.`]
    }
  }, () => redis.stop())
}
