// The demo sign-in carries the strict authRateLimit preset: per IP, sliding, policy "auth".
import t from 'tap'
import { useRedis } from '../helpers/index.js'
import { buildTestApp } from '../helper.js'

t.test('the sixth sign-in in a minute from one IP is refused with the auth policy', async (t) => {
  const redis = await useRedis(t)
  const { app } = await buildTestApp(t, { REDIS_URL: redis.url, RATE_LIMIT_AUTH_MAX: '5' })
  const signIn = () => app.inject({ method: 'POST', url: '/demo/login', payload: { userId: 'ada' } })
  for (let i = 1; i <= 5; i++) t.equal((await signIn()).statusCode, 200, `sign-in ${i}`)
  const refused = await signIn()
  t.equal(refused.statusCode, 429)
  t.match(refused.headers['ratelimit-policy'], /"auth";q=5;w=60/)
  t.ok(Number(refused.headers['retry-after']) > 0, 'Retry-After tells when to try again')
  t.match(refused.json(), { code: 'FRS_RATE_LIMITED' })
  t.equal((await app.inject('/demo/me')).statusCode, 401, 'other routes keep their own (global) limit')
})
