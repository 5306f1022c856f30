// Third security review, item 5: Fastify adds a HEAD route beside every GET, and HEAD runs the GET
// handler. A route's counter (and its ban) is per route, not per method: HEAD and GET of a route
// share one, so a limit on a GET route allows no extra attempts through HEAD.
import t from 'tap'
import { build } from './http-cache-app.js'
import { useRedis } from '../helpers/index.js'
import { authRateLimit } from '../../plugins/rate-limit.js'

for (const backend of ['redis', 'memory'] as const) {
  t.test(`5. HEAD and GET of a route count against one limit and one ban (${backend})`, async (t) => {
    const redis = backend === 'redis' ? await useRedis(t) : undefined
    let runs = 0
    const { app } = await build(t, redis === undefined ? {} : { REDIS_URL: redis.url }, (app) => {
      app.get('/code', { config: { rateLimit: { max: 3, timeWindow: '1m' } } }, async () => ({ run: ++runs }))
      app.get('/otp', { config: { rateLimit: authRateLimit } }, async () => ({ run: ++runs }))
    })
    const send = async (method: 'GET' | 'HEAD', url: string): Promise<number> => (await app.inject({ method, url, remoteAddress: '203.0.113.9' })).statusCode
    t.same([await send('GET', '/code'), await send('HEAD', '/code'), await send('GET', '/code')], [200, 200, 200])
    t.equal(await send('HEAD', '/code'), 429, 'the fourth attempt is refused, whichever the method')
    t.equal(await send('GET', '/code'), 429)
    t.equal(runs, 3, 'the handler ran three times in all')

    const max = app.config.RATE_LIMIT_AUTH_MAX
    const codes: number[] = []
    for (let i = 0; i < max; i++) codes.push(await send(i % 2 === 0 ? 'GET' : 'HEAD', '/otp'))
    t.ok(codes.every((c) => c === 200), `${max} attempts across both methods`)
    t.equal(await send('HEAD', '/otp'), 429, 'the auth preset counts HEAD with GET')
  })
}
