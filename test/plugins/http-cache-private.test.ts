// Third security review, item 2: a private entry is keyed by the user, which every session and
// token of that user shares, so a hit must never skip the checks the app makes per request. Private
// routes look up after the route's preHandler hooks; public routes still answer in preParsing.
import t from 'tap'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { build, count, type Runs } from './http-cache-app.js'
import { useRedis } from '../helpers/index.js'

declare module 'fastify' {
  interface Session { mfa?: boolean }
}

const cookieOf = (response: { headers: Record<string, unknown> }): string => String(response.headers['set-cookie']).split(';')[0] ?? ''

t.test('2. a session that lacks the second factor is refused on a private hit cached for a session that passed it', async (t) => {
  const redis = await useRedis(t)
  const runs: Runs = {}
  const { app } = await build(t, { REDIS_URL: redis.url }, (app) => {
    // Password alone signs the user in; the second factor is one more flag on the session.
    app.post('/signin', { config: { session: true } }, async (request) => {
      const { mfa } = request.body as { mfa: boolean }
      await request.session.regenerate()
      request.session.set('userId', 'ada')
      request.session.set('mfa', mfa)
      return { ok: true }
    })
    const requireMfa = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
      if (request.session.get('mfa') !== true) await reply.code(401).send({ error: 'second factor required' })
    }
    app.get('/account', { config: { session: true, cache: { ttl: '1m', private: true } }, preHandler: requireMfa },
      async () => ({ balance: 100, run: count(runs, 'account') }))
  })
  const full = cookieOf(await app.inject({ method: 'POST', url: '/signin', payload: { mfa: true } }))
  const half = cookieOf(await app.inject({ method: 'POST', url: '/signin', payload: { mfa: false } }))
  t.not(full, half, 'two sessions of one user')
  t.equal((await app.inject({ url: '/account', headers: { cookie: full } })).headers['x-cache'], 'MISS')
  t.equal((await app.inject({ url: '/account', headers: { cookie: full } })).headers['x-cache'], 'HIT', 'the entry is there')
  const refused = await app.inject({ url: '/account', headers: { cookie: half } })
  t.equal(refused.statusCode, 401, 'the check runs before the private hit')
  t.notOk(String(refused.body).includes('balance'), 'nothing of the cached response')
  t.equal(runs.account, 1)
})

t.test('2. a revoked bearer token gets no cached private response', async (t) => {
  const redis = await useRedis(t)
  const runs: Runs = {}
  const revoked = new Set<string>()
  const { app } = await build(t, { REDIS_URL: redis.url }, (app) => {
    app.get('/orders', {
      config: { cache: { ttl: '1m', private: true } },
      preHandler: async (request, reply) => {
        if (revoked.has(String(request.headers.authorization))) await reply.code(401).send({ error: 'token revoked' })
      }
    }, async () => ({ orders: [1, 2], run: count(runs, 'orders') }))
    // A public route keeps answering hits before the body is parsed.
    app.get('/catalog', { config: { cache: { ttl: '1m' } }, preHandler: async () => { count(runs, 'catalog-check') } },
      async () => ({ items: 3, run: count(runs, 'catalog') }))
  })
  const token = { authorization: 'Bearer t-1' }
  t.equal((await app.inject({ url: '/orders', headers: token })).headers['x-cache'], 'MISS')
  t.equal((await app.inject({ url: '/orders', headers: token })).headers['x-cache'], 'HIT')
  revoked.add('Bearer t-1')
  const afterRevoke = await app.inject({ url: '/orders', headers: token })
  t.equal(afterRevoke.statusCode, 401, 'revoked: refused, though its entry is still fresh')
  t.notOk(String(afterRevoke.body).includes('orders'))
  t.equal(runs.orders, 1)

  await app.inject('/catalog')
  const hit = await app.inject('/catalog')
  t.equal(hit.headers['x-cache'], 'HIT')
  t.equal(runs['catalog-check'], 1, 'a public hit is still answered before preHandler (documented)')
})
