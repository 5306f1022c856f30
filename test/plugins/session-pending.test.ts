// Third security review, item 4: every cookie-less request to a session route makes a session id,
// and the suite remembers its creator's address and user agent for the session list until the
// session is saved. That memory is bounded at the door (the user agent cut to 512 characters before
// it is kept) and released when the response is sent without a save, 429s from the rate limiter
// included; before, a 15 KB User-Agent stayed in a 10,000-entry map for five minutes.
import t from 'tap'
import { buildTestApp } from '../helper.js'
import { build } from './http-cache-app.js'
import { useRedis } from '../helpers/index.js'

const userAgent = 'x'.repeat(15_000)

t.test('4. nothing is kept for a request that never saves a session, refused ones included', async (t) => {
  const redis = await useRedis(t)
  const { app } = await build(t, { REDIS_URL: redis.url, RATE_LIMIT_GLOBAL: 'true', RATE_LIMIT_MAX: '5' }, (app) => {
    app.get('/browse', { config: { session: true } }, async () => ({ ok: true }))
  })
  let refused = 0
  for (let i = 0; i < 50; i++) {
    const response = await app.inject({ url: '/browse', headers: { 'user-agent': userAgent } })
    if (response.statusCode === 429) refused++
  }
  t.ok(refused > 0, `the rate limiter refused some (${refused}) after the session was loaded`)
  t.equal(app.sessions.stats().pending, 0, 'no creator kept for any of them')
})

t.test('4. a saved session keeps at most 512 characters of the user agent; nothing stays pending', async (t) => {
  const redis = await useRedis(t)
  const { app } = await buildTestApp(t, { REDIS_URL: redis.url })
  const login = await app.inject({ method: 'POST', url: '/demo/login', payload: { userId: 'ada' }, headers: { 'user-agent': userAgent } })
  t.equal(login.statusCode, 200)
  t.equal(app.sessions.stats().pending, 0)
  const [session] = await app.sessions.list('ada')
  t.equal(session?.userAgent?.length, 512)
})
