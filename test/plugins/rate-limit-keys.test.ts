// Who a request counts against: the key functions on bare requests, the signed-in user through a real
// app with sessions, and the auth preset's key and configured maximum.
import t from 'tap'
import type { FastifyRequest } from 'fastify'
import { useRedis } from '../helpers/index.js'
import { authRateLimit, clientIpRateLimitKey, rateLimitKey, sessionUserId } from '../../plugins/rate-limit.js'
import type { RateLimitDecision } from '../../lib/rate-limit/types.js'
import { buildLimitedApp } from './rate-limit-app.js'

const request = (ip: string, extra: object = {}): FastifyRequest => ({ ip, ...extra }) as unknown as FastifyRequest

t.test('by client IP without a loaded session (IPv6 by /64)', async (t) => {
  t.equal(rateLimitKey(request('203.0.113.5')), 'ip:203.0.113.5')
  t.equal(rateLimitKey(request('2001:db8:1:2:3:4:5:6')), 'ip:2001:db8:1:2::/64')
  t.equal(rateLimitKey(request('2001:db8:1:2:3:4:5:6'), 48), 'ip:2001:db8:1::/48')
  t.equal(sessionUserId(request('203.0.113.5')), undefined)
})

t.test('the default key never reads the throwing request.session getter', async (t) => {
  let reads = 0
  const guarded = request('203.0.113.5')
  Object.defineProperty(guarded, 'session', { get: () => { reads++; throw new Error('FRS_SESSION_NOT_ENABLED') } })
  t.equal(rateLimitKey(guarded), 'ip:203.0.113.5')
  t.equal(reads, 0, 'no getter call, no Error per request')
})

t.test('by the signed-in user on a route with sessions, by IP elsewhere', async (t) => {
  const redis = await useRedis(t)
  const keys: string[] = []
  const { app } = await buildLimitedApp(t, { REDIS_URL: redis.url, RATE_LIMIT_MAX: '100' }, {
    onDecision: (decision: RateLimitDecision) => { keys.push(decision.key) }
  })
  const login = await app.inject({ method: 'POST', url: '/demo/login', payload: { userId: 'ada' }, remoteAddress: '203.0.113.8' })
  t.equal(login.statusCode, 200)
  const cookie = String(login.headers['set-cookie']).split(';')[0] ?? ''
  keys.length = 0
  t.equal((await app.inject({ url: '/demo/me', headers: { cookie }, remoteAddress: '203.0.113.8' })).statusCode, 200)
  t.equal((await app.inject({ url: '/limited', headers: { cookie }, remoteAddress: '203.0.113.8' })).statusCode, 200)
  t.same(keys, ['user:ada', 'ip:203.0.113.8'], 'the session route counts the user; a route without sessions the IP')
})

t.test('the auth preset keys by IP and reads RATE_LIMIT_AUTH_MAX', async (t) => {
  t.equal(authRateLimit.keyGenerator(request('198.51.100.4')), 'ip:198.51.100.4')
  t.equal(clientIpRateLimitKey(request('198.51.100.4')), 'ip:198.51.100.4')
  t.match(authRateLimit, { timeWindow: 60_000, limiter: { algorithm: 'sliding', policy: 'auth', ban: { after: 5, duration: '15m' } } })
  t.equal(authRateLimit.max(request('198.51.100.4', { server: { config: { RATE_LIMIT_AUTH_MAX: 9 } } })), 9)
  t.equal(authRateLimit.max(request('198.51.100.4', { server: {} })), 5, 'without the suite config: 5')
  t.ok(Object.isFrozen(authRateLimit) && Object.isFrozen(authRateLimit.limiter), 'a shared preset cannot be changed by accident')
})
