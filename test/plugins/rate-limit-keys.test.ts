// Who a request counts against, without Redis or a running app: the key functions take a request.
import t from 'tap'
import type { FastifyRequest } from 'fastify'
import { authRateLimit, clientIpRateLimitKey, rateLimitKey, sessionUserId } from '../../plugins/rate-limit.js'

const request = (ip: string, session?: unknown): FastifyRequest => ({ ip, session }) as unknown as FastifyRequest

t.test('by the session user id when there is one, else by client IP (IPv6 by /64)', async (t) => {
  t.equal(rateLimitKey(request('203.0.113.5')), 'ip:203.0.113.5')
  t.equal(rateLimitKey(request('2001:db8:1:2:3:4:5:6')), 'ip:2001:db8:1:2::/64')
  t.equal(rateLimitKey(request('2001:db8:1:2:3:4:5:6'), 48), 'ip:2001:db8:1::/48')
  t.equal(rateLimitKey(request('203.0.113.5', { get: (key: string) => key === 'userId' ? 42 : undefined })), 'user:42')
  t.equal(rateLimitKey(request('203.0.113.5', { get: () => 'u-7' })), 'user:u-7')
  t.equal(rateLimitKey(request('203.0.113.5', { get: () => undefined })), 'ip:203.0.113.5', 'anonymous session')
  t.equal(rateLimitKey(request('203.0.113.5', { get: () => ({ id: 1 }) })), 'ip:203.0.113.5', 'only strings and numbers are ids')
  t.equal(rateLimitKey(request('203.0.113.5', null)), 'ip:203.0.113.5')
  t.equal(rateLimitKey(request('203.0.113.5', {})), 'ip:203.0.113.5', 'something that is not a session')
  t.equal(sessionUserId(request('203.0.113.5', { get: () => { throw new Error('store down') } })), undefined, 'a session that cannot be read is anonymous')
})

t.test('the auth preset keys by IP even for a signed-in session', async (t) => {
  const signedIn = request('198.51.100.4', { get: () => 'u-1' })
  t.equal(authRateLimit.keyGenerator(signedIn), 'ip:198.51.100.4')
  t.equal(clientIpRateLimitKey(signedIn), 'ip:198.51.100.4')
  t.match(authRateLimit, { max: 5, timeWindow: 60_000, limiter: { algorithm: 'sliding', policy: 'auth', ban: { after: 5, duration: '15m' } } })
  t.ok(Object.isFrozen(authRateLimit) && Object.isFrozen(authRateLimit.limiter), 'a shared preset cannot be changed by accident')
})
