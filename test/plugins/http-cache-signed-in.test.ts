// Signed-in users on public cached routes: a route that does not load the session and whose
// ignoreCookies covers the session cookie serves them from the shared entry (its answer cannot depend
// on a session it never reads); a route that loads the session stays personal whatever it ignores.
import t from 'tap'
import { build, count, type Runs } from './http-cache-app.js'
import { useRedis } from '../helpers/index.js'

t.test('signed-in users get public hits where the route ignores the session cookie', async (t) => {
  const redis = await useRedis(t)
  const runs: Runs = {}
  const { app } = await build(t, { REDIS_URL: redis.url }, (app) => {
    const name = app.config.SESSION_COOKIE_NAME
    app.get('/catalog', { config: { cache: { ttl: '1m', ignoreCookies: [name] } } }, async () => ({ run: count(runs, 'catalog') }))
    app.get('/all', { config: { cache: { ttl: '1m', ignoreCookies: true } } }, async () => ({ run: count(runs, 'all') }))
    app.get('/default', { config: { cache: { ttl: '1m' } } }, async () => ({ run: count(runs, 'default') }))
    // Reads the session: personal, whatever it says about cookies.
    app.get('/greeting', { config: { session: true, cache: { ttl: '1m', ignoreCookies: true } } },
      async (request) => ({ hello: request.session.get('userId') ?? 'guest', run: count(runs, 'greeting') }))
  })
  const login = await app.inject({ method: 'POST', url: '/demo/login', payload: { userId: 'ada' } })
  const signedIn = { cookie: String(login.headers['set-cookie']).split(';')[0] ?? '' }

  for (const url of ['/catalog', '/all']) {
    await app.inject(url)
    const verdicts: unknown[] = []
    for (let i = 0; i < 3; i++) verdicts.push((await app.inject({ url, headers: signedIn })).headers['x-cache'])
    t.same(verdicts, ['HIT', 'HIT', 'HIT'], `${url}: signed-in GETs share the public entry`)
    t.equal((await app.inject({ url, headers: { authorization: 'Bearer x' } })).headers['x-cache'], 'BYPASS', `${url}: Authorization still bypasses`)
  }
  t.equal((await app.inject({ url: '/default', headers: signedIn })).headers['x-cache'], 'BYPASS', 'by default the session cookie bypasses')
  await app.inject('/greeting')
  const greeting = await app.inject({ url: '/greeting', headers: signedIn })
  t.equal(greeting.headers['x-cache'], 'BYPASS', 'a route that reads the session never shares')
  t.equal(greeting.json().hello, 'ada')
  t.equal((await app.inject('/greeting')).json().hello, 'guest')
})
