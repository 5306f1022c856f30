// Case 12: several limits on one route (issue 31 item 1). A route with two policies
// (config.rateLimit.policies: per client per minute and per client per day, one atomic script call
// per request) against the same route with one limit (config.rateLimit: { max, timeWindow }, the
// single-policy fast path), in the same app and server process. The target: two policies
// cost at most 10 % more CPU per request than one, i.e. server CPU µs per request of the one-limit
// route over that of the two-policy route ("cpu" row: theirs / ours, ours = two policies) ≥ 0.9.
// Also, for information, against the same route with a list of one policy (the list form's own cost).
import { startRedis } from '../environment.js'
import { compare, type Settings } from '../harness.js'
import { httpRows, type CaseResult } from '../results.js'
import { serverContender, startServer } from '../server-process.js'

const CLIENTS = 1_000
const PROXY = ['127.0.0.1']

export async function rateLimitPolicies (settings: Settings): Promise<CaseResult> {
  const redis = await startRedis()
  const server = await startServer({ app: 'suite-rate-limit', redisUrl: redis.url, trustProxy: PROXY })
  try {
    const c = settings.connections
    const many = { count: CLIENTS, forwardedFor: true }
    const comparison = await compare(settings,
      serverContender(`two policies, ${CLIENTS} clients`, server, { path: '/two-policies', vary: many }, c),
      [
        serverContender(`one limit, ${CLIENTS} clients`, server, { path: '/limited', vary: many }, c),
        serverContender(`a list of one policy, ${CLIENTS} clients`, server, { path: '/one-policy', vary: many }, c)
      ],
      settings.httpRoundMs)
    return {
      id: 12,
      title: 'Two rate-limit policies on a route vs one',
      rows: httpRows(comparison, [
        { label: 'two policies: vs the same route with one limit', target: undefined, cpuTarget: 0.9 },
        { label: 'two policies: vs a list of one policy', target: undefined }
      ]),
      notes: [`One app in its own server process, three routes with the same payload: /limited (config.rateLimit { max, timeWindow }), /two-policies (the same limit and a daily one, both per client), /one-policy (the list form with one). autocannon, ${c} connections, each request with one of ${CLIENTS} X-Forwarded-For addresses; limits of 1,000,000,000 so nothing is refused. CPU row: server CPU µs per request of the alternative over the two-policy route's; ≥ 0.9 means two policies cost at most ~10 % more.`]
    }
  } finally {
    await server.close()
    await redis.stop()
  }
}
