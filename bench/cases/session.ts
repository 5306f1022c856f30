// Case 7: a session-authenticated read route (GET /demo/me of the demo app) against @fastify/session
// with a straightforward ioredis store serving the same route. Each side has its own redis-server, so
// `INFO commandstats` deltas count exactly the Redis commands its requests cost.
import autocannon from 'autocannon'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import { buildOurApp, CaseUnavailableError, commandCalls, commandDelta, connected, countSentCommands, hasFile, plainClient, startRedis, type RedisServer } from '../environment.js'
import { compare, type Settings } from '../harness.js'
import { httpContender, listen, load } from '../http.js'
import { NaiveSessionStore } from '../naive-session-store.js'
import { figureRow, ratioRows, type CaseResult } from '../results.js'

const SECRET = 'bench-secret-bench-secret-bench-secret-0123'
const COUNTED_REQUESTS = 500
const Me = { type: 'object', properties: { userId: { type: 'string' } }, required: ['userId'] } as const

async function cookieOf (app: FastifyInstance, url: string): Promise<string> {
  const response = await app.inject({ method: 'POST', url, payload: { userId: 'bench-user' } })
  const header = response.headers['set-cookie']
  const first = Array.isArray(header) ? header[0] : header
  if (response.statusCode !== 200 || first === undefined) throw new Error(`login at ${url} answered ${response.statusCode}`)
  return first.split(';')[0] ?? ''
}

interface Counted { sent: number, executed: number, sentBy: Record<string, number>, executedBy: Record<string, number> }

/**
 * Redis commands per request over COUNTED_REQUESTS GETs of `url` with the cookie: sent by the client
 * (each costs a round trip unless pipelined) and executed by Redis (INFO commandstats, which also
 * counts the commands a Lua script runs). Health PINGs are excluded.
 */
async function countCommands (redis: RedisServer, counter: ReturnType<typeof countSentCommands>, url: string, cookie: string): Promise<Counted> {
  const before = await commandCalls(redis)
  counter.reset()
  const result = await autocannon({ url, connections: 10, amount: COUNTED_REQUESTS, headers: { cookie } })
  const sentBy = counter.read()
  const after = await commandCalls(redis)
  const { byCommand: executedBy } = commandDelta(before, after)
  delete executedBy['ping']
  const requests = Math.max(1, result['2xx'])
  const total = (counts: Record<string, number>): number => Object.values(counts).reduce((a, b) => a + b, 0)
  return { sent: total(sentBy) / requests, executed: total(executedBy) / requests, sentBy, executedBy }
}

export async function session (settings: Settings): Promise<CaseResult> {
  if (!hasFile('plugins/session.ts') || !hasFile('routes/demo-session.ts')) throw new CaseUnavailableError('plugins/session.ts or the demo session routes are not in this tree')
  const oursRedis = await startRedis()
  const theirsRedis = await startRedis()
  const app = await buildOurApp(oursRedis, { SESSION_COOKIE_SECURE: 'false' })
  const client = await connected(plainClient(theirsRedis))
  const theirs = Fastify({ logger: false })
  try {
    await theirs.register(fastifyCookie)
    await theirs.register(fastifySession, { secret: SECRET, cookieName: 'sid', saveUninitialized: false, cookie: { secure: false }, store: new NaiveSessionStore(client) })
    theirs.post<{ Body: { userId: string } }>('/login', async (request) => {
      await request.session.regenerate()
      request.session.userId = request.body.userId
      return { userId: request.body.userId }
    })
    theirs.get('/me', { schema: { response: { 200: Me, 401: { type: 'object', properties: { message: { type: 'string' } } } } } }, async (request, reply) => {
      const userId = request.session.userId
      return userId === undefined ? reply.code(401).send({ message: 'Not signed in' }) : { userId }
    })
    const oursCookie = await cookieOf(app, '/demo/login')
    const theirsCookie = await cookieOf(theirs, '/login')
    const oursUrl = `${await listen(app)}/demo/me`
    const theirsUrl = `${await listen(theirs)}/me`
    const check = await load({ url: oursUrl, headers: { cookie: oursCookie } }, 200, 1)
    if (check.errors > 0) throw new Error(`GET /demo/me with the session cookie failed: ${JSON.stringify(check.statuses)}`)
    const c = settings.connections
    const comparison = await compare(settings,
      httpContender('ours', { url: oursUrl, headers: { cookie: oursCookie } }, c),
      [httpContender('@fastify/session + naive ioredis store', { url: theirsUrl, headers: { cookie: theirsCookie } }, c)],
      settings.httpRoundMs)
    const { main, cache } = app.redisConnections
    const oursClients = [main, cache].filter((c, i, all): c is NonNullable<typeof main> => c !== undefined && all.indexOf(c) === i)
    const oursCounter = countSentCommands(oursClients)
    const theirsCounter = countSentCommands([client])
    const counted = { ours: [] as Counted[], theirs: [] as Counted[] }
    for (let round = 0; round < (settings.quick ? 1 : 3); round++) {
      counted.ours.push(await countCommands(oursRedis, oursCounter, oursUrl, oursCookie))
      counted.theirs.push(await countCommands(theirsRedis, theirsCounter, theirsUrl, theirsCookie))
    }
    oursCounter.restore()
    theirsCounter.restore()
    const first = { ours: counted.ours[0], theirs: counted.theirs[0] }
    const per = (n: number): string => (n / COUNTED_REQUESTS).toFixed(2)
    const describe = (counts: Record<string, number> | undefined): string =>
      Object.entries(counts ?? {}).map(([name, n]) => `${name} ${per(n)}`).join(', ')
    return {
      id: 7,
      title: 'Session-authenticated read route',
      rows: [
        ...ratioRows(comparison, [{ label: '@fastify/session + naive ioredis store', target: 1.3 }], 'req/s'),
        figureRow('commands sent per authenticated read, ours', counted.ours.map((c) => c.sent), 'commands', { text: '= 1', met: (m) => m <= 1.0001 }),
        figureRow('commands sent per authenticated read, @fastify/session + naive store', counted.theirs.map((c) => c.sent), 'commands'),
        figureRow('commands executed by Redis per read not due for refresh (incl. inside scripts), ours', counted.ours.map((c) => c.executed), 'commands', { text: '≤ 2', met: (m) => m <= 2.0001 }),
        figureRow('commands executed by Redis per read, @fastify/session + naive store', counted.theirs.map((c) => c.executed), 'commands')
      ],
      notes: [
        `autocannon, ${c} connections, one signed-in session per side. Theirs: rolling (its default), a SET and a Set-Cookie per request; ours: the expiry, last-seen time and indexes move (and the cookie is re-sent) only at the refresh cadence, min(60 s, SESSION_IDLE_TIMEOUT / 10), inside the read's own script call when due (standalone), so the counted reads are not due; the instance signed the session in, so it knows that and reads with a plain HGETALL.`,
        `Per request over ${COUNTED_REQUESTS} requests (health PINGs excluded), sent by the client — ours: ${describe(first.ours?.sentBy)}; theirs: ${describe(first.theirs?.sentBy)}.`,
        `Executed by Redis (INFO commandstats, script internals included) — ours: ${describe(first.ours?.executedBy)}; theirs: ${describe(first.theirs?.executedBy)}.`
      ]
    }
  } finally {
    await app.close()
    await theirs.close()
    client.disconnect()
    await oursRedis.stop()
    await theirsRedis.stop()
  }
}
