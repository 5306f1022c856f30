// The HTTP cache against the findings of the security review of issue 14's fixes, each against a
// real redis-server through real HTTP: app.inject, or a raw socket where inject would normalise
// the URL (a fragment never leaves a browser, but any client can send one).
import net from 'node:net'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, count, type Runs } from './http-cache-app.js'
import { suiteAclRule } from '../../lib/redis/acl.js'
import { serverVersion, useRedis } from '../helpers/index.js'
import { sleep, waitFor } from '../helpers/wait.js'

interface RawResponse { status: number, headers: Record<string, string>, body: string }

/** One GET with the request target written byte for byte (no URL parsing on the way). */
async function rawGet (port: number, target: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  const head = [`GET ${target} HTTP/1.1`, 'host: app.example', 'connection: close',
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`)].join('\r\n')
  const text = await new Promise<string>((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port })
    let received = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => { received += chunk })
    socket.on('end', () => resolve(received))
    socket.on('error', reject)
    socket.write(`${head}\r\n\r\n`)
  })
  const [start = '', ...rest] = text.slice(0, text.indexOf('\r\n\r\n')).split('\r\n')
  const parsed: Record<string, string> = {}
  for (const line of rest) parsed[line.slice(0, line.indexOf(':')).toLowerCase()] = line.slice(line.indexOf(':') + 1).trim()
  return { status: Number(start.split(' ')[1]), headers: parsed, body: text.slice(text.indexOf('\r\n\r\n') + 4) }
}

async function listen (app: FastifyInstance): Promise<number> {
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

t.test('review 1. a # in the URL is where Fastify starts the query: it cannot poison the plain URL', async (t) => {
  const redis = await useRedis(t)
  const runs: Runs = {}
  const { app } = await build(t, { REDIS_URL: redis.url }, (app) => {
    const handler = (name: string) => async (request: { query: unknown }) => ({ query: request.query, run: count(runs, name) })
    app.get('/users', { config: { cache: { ttl: '1m' } } }, handler('users'))
    app.get('/pages', { config: { cache: { ttl: '1m', query: ['page'] } } }, handler('pages'))
  })
  const port = await listen(app)

  const poisoned = await rawGet(port, '/users#&page=99')
  t.equal(poisoned.status, 200)
  t.same(JSON.parse(poisoned.body).query, { page: '99' }, 'the handler read page=99 from after the #')
  const plain = await rawGet(port, '/users')
  t.same(JSON.parse(plain.body).query, {}, 'the plain URL never gets the page=99 response')
  t.equal(plain.headers['x-cache'], 'MISS')
  t.equal((await rawGet(port, '/users?page=99')).headers['x-cache'], 'HIT', 'it was stored as what the handler saw: ?page=99')

  const listed = await rawGet(port, '/pages#page=7')
  t.same(JSON.parse(listed.body).query, { page: '7' })
  const bare = await rawGet(port, '/pages')
  t.same(JSON.parse(bare.body).query, {}, 'query: [...] keys the page the handler read, after the # too')
  t.equal((await rawGet(port, '/pages?page=7&utm=x')).headers['x-cache'], 'HIT')
  t.equal(runs.users, 2)
  t.equal(runs.pages, 2)
})

t.test('review 5. a parameter that does not decode reaches the handler raw: answered without the cache', async (t) => {
  const runs: Runs = {}
  const { app } = await build(t, {}, (app) => {
    app.get('/search', { config: { cache: { ttl: '1m' } } },
      async (request) => ({ q: (request.query as { q?: string }).q, run: count(runs, 'search') }))
    app.get('/list', { config: { cache: { ttl: '1m', query: ['page'] } } },
      async (request) => ({ page: (request.query as { page?: string }).page, run: count(runs, 'list') }))
  })
  const ff = await app.inject('/search?q=%FF')
  t.equal(ff.json().q, '%FF', 'Fastify hands over the raw text')
  t.equal(ff.headers['x-cache'], 'BYPASS')
  const fe = await app.inject('/search?q=%FE')
  t.equal(fe.json().q, '%FE', 'another input is another answer, never the entry of %FF')
  t.equal(fe.headers['x-cache'], 'BYPASS')
  const replacement = await app.inject('/search?q=%EF%BF%BD')
  t.equal(replacement.json().q, '\ufffd')
  t.equal(replacement.headers['x-cache'], 'MISS', 'a real U+FFFD is cached')
  t.equal((await app.inject('/search?q=%FF')).json().q, '%FF', 'and never answers %FF')

  await app.inject('/list?page=2')
  t.equal((await app.inject('/list?page=2&junk=%FF')).headers['x-cache'], 'HIT', 'an ignored parameter may be anything')
  t.equal((await app.inject('/list?page=%FF')).json().page, '%FF')
})

t.test('review 2. a private route never keys on the raw session cookie: a planted cookie reads nothing', async (t) => {
  const redis = await useRedis(t)
  const runs: Runs = {}
  const { app } = await build(t, { REDIS_URL: redis.url }, (app) => {
    // The app authenticates its own way; the victim's browser also carries a cookie the attacker planted.
    app.get('/inbox', { config: { cache: { ttl: '1m', private: true } } },
      async (request) => ({ owner: request.headers['x-api-key'] ?? 'nobody', run: count(runs, 'inbox') }))
    app.get('/mine', { config: { session: true, cache: { ttl: '1m', private: true } } },
      async (request) => ({ owner: request.session.userId ?? 'nobody', run: count(runs, 'mine') }))
  })
  const planted = { cookie: `${app.config.SESSION_COOKIE_NAME}=planted-by-attacker` }
  const victim = await app.inject({ url: '/inbox', headers: { ...planted, 'x-api-key': 'alice' } })
  t.equal(victim.json().owner, 'alice')
  t.equal(victim.headers['x-cache'], 'BYPASS', 'an unverified cookie is no identity')
  const attacker = await app.inject({ url: '/inbox', headers: planted })
  t.equal(attacker.json().owner, 'nobody', "the attacker never reads alice's response")
  t.equal(attacker.headers['x-cache'], 'BYPASS')
  t.equal(await redis.cli('--scan', '--pattern', '*inbox*'), '', 'nothing stored')

  const login = await app.inject({ method: 'POST', url: '/demo/login', payload: { userId: 'ada' } })
  const signedIn = { cookie: String(login.headers['set-cookie']).split(';')[0] ?? '' }
  t.equal((await app.inject({ url: '/mine', headers: signedIn })).headers['x-cache'], 'MISS', 'a loaded session user caches')
  const again = await app.inject({ url: '/mine', headers: signedIn })
  t.equal(again.headers['x-cache'], 'HIT')
  t.equal(again.json().owner, 'ada')
  t.equal((await app.inject({ url: '/mine', headers: planted })).headers['x-cache'], 'BYPASS', 'a session without a user: bypass')
  const key = await redis.cli('--scan', '--pattern', '*mine*')
  t.notMatch(key, /ada|planted/, 'the key holds a hash of the identity')
})

t.test('review 3. a stale-while-revalidate refresh fills the entry the client read, behind a TLS-terminating proxy', async (t) => {
  const redis = await useRedis(t)
  const runs: Runs = {}
  const seen: string[] = []
  const { app } = await build(t, { REDIS_URL: redis.url, TRUST_PROXY: '127.0.0.1' }, (app) => {
    app.get('/news', {
      config: { cache: { ttl: '300ms', staleWhileRevalidate: '1m' } },
      // What an app's onRequest hook (or a request log) sees of the refresh's marker.
      onRequest: async (request) => {
        const marker = request.headers['x-redis-suite-refresh']
        if (typeof marker === 'string') seen.push(marker)
      }
    }, async (request) => ({ self: `${request.protocol}://${request.host}`, run: count(runs, 'news') }))
  })
  // The proxy terminates TLS and forwards the client's address.
  const proxied = { host: 'internal:3000', 'x-forwarded-host': 'app.example', 'x-forwarded-proto': 'https', 'x-forwarded-for': '203.0.113.5' }
  const first = await app.inject({ url: '/news', headers: proxied })
  t.equal(first.json().self, 'https://app.example')
  await sleep(400)
  const stale = await app.inject({ url: '/news', headers: proxied })
  t.equal(stale.headers['x-cache'], 'STALE')
  t.equal(stale.json().run, 1)
  await waitFor(() => runs.news === 2, { what: 'the background refresh to run the handler' })
  const refreshed = await waitFor(async () => {
    const response = await app.inject({ url: '/news', headers: proxied })
    return response.headers['x-cache'] === 'HIT' && response
  }, { what: 'a hit on the refreshed entry', timeoutMs: 3_000 })
  t.equal(refreshed.json().run, 2, 'the https entry holds the refreshed response')
  t.equal(refreshed.json().self, 'https://app.example', 'computed for the same origin')
  t.equal(runs.news, 2, 'one refresh, not one per request')
  t.equal(await redis.cli('--scan', '--pattern', '*http://*news*'), '', 'no entry under the plain-HTTP key')

  t.equal(seen.length, 1, 'the refresh carried a marker')
  const replay = await app.inject({ url: '/news', headers: { ...proxied, 'x-redis-suite-refresh': seen[0] ?? '' } })
  t.equal(replay.headers['x-cache'], 'HIT', 'a marker seen in a hook or a log cannot make the handler run')
  t.equal(runs.news, 2)
})

t.test('review 4. the noeviction warning fires for the least-privilege ACL user, which may not run CONFIG', async (t) => {
  const password = 'acl-password-review-4-0123'
  const redis = await useRedis(t, { acl: [{ username: 'app', password, rules: suiteAclRule('app:', { serverVersion: serverVersion() }) }] })
  t.match(await redis.cli('--user', 'app', '--pass', password, '--no-auth-warning', 'config', 'get', 'maxmemory-policy'), /NOPERM/,
    'CONFIG GET is refused to this user')
  const { logs } = await build(t, {
    REDIS_URL: `redis://app:${password}@127.0.0.1:${redis.port}`,
    REDIS_KEY_PREFIX: 'app:',
    SESSION_SECRET: 'review-4-session-secret-0123456789abcdef'
  }, (app) => {
    app.get('/open', { config: { cache: { ttl: '1m', maxEntries: false, maxBytes: false } } }, async () => ({ ok: true }))
  })
  const warned = logs().filter((l) => /noeviction/.test(l.msg ?? '') && /GET \/open/.test(l.msg ?? ''))
  t.equal(warned.length, 1, 'warned once, naming the route (the policy read from INFO memory)')
})

t.test('review 6. the caps count what is stored: a binary body as base64, with its headers', async (t) => {
  const redis = await useRedis(t)
  const { app } = await build(t, { REDIS_URL: redis.url }, (app) => {
    app.get('/blob', { config: { cache: { ttl: '1m', maxBytes: 2_000 } } },
      async (_request, reply) => reply.type('application/octet-stream').send(Buffer.alloc(900, 7)))
  })
  for (let i = 0; i < 3; i++) t.equal((await app.inject(`/blob?r=${i}`)).rawPayload.length, 900)
  const stored = (await redis.cli('--scan', '--pattern', 'cache:e:*blob*')).split('\n').filter((k) => k !== '')
  t.equal(stored.length, 1, 'two 900-byte bodies are 2 × 1200 bytes of base64: one entry fits in 2000')
})

t.test('review 6. maxBytesTotal caps what all routes together keep written', async (t) => {
  const redis = await useRedis(t)
  const { app, logs } = await build(t, { REDIS_URL: redis.url }, (app) => {
    for (const name of ['a', 'b']) {
      app.get(`/${name}`, { config: { cache: { ttl: '1m', maxBytes: false, maxEntries: false } } }, async (request) => ({ q: request.query, pad: 'x'.repeat(900) }))
    }
  }, { maxBytesTotal: 2_600 })
  for (const name of ['a', 'b']) for (let i = 0; i < 2; i++) await app.inject(`/${name}?r=${i}`)
  const stored = (await redis.cli('--scan', '--pattern', 'cache:e:*GET*')).split('\n').filter((k) => k !== '')
  t.equal(stored.length, 2, 'two ~1.1 KB entries in 2600 bytes, whichever the route')
  t.equal(app.httpCache.stats().capped, 2)
  t.equal(logs().filter((l) => /noeviction/.test(l.msg ?? '')).length, 0, 'a plugin-wide cap is a cap: no noeviction warning')
})

t.test('review 7. a hit whose client leaves while an async onSend holds the response never runs the handler', async (t) => {
  const redis = await useRedis(t)
  // Memory tier on: the synchronous hit path; off: every hit is read from Redis (the asynchronous path).
  for (const memoryEntries of ['10000', '0']) {
    const runs: Runs = {}
    const { app } = await build(t, { REDIS_URL: redis.url, CACHE_MEMORY_MAX_ENTRIES: memoryEntries }, (app) => {
      app.addHook('onSend', async (request, _reply, payload) => {
        if (request.headers['x-slow'] !== undefined) await sleep(300)
        return payload
      })
      app.get(`/held-${memoryEntries}`, { config: { cache: { ttl: '1m' } } }, async () => ({ run: count(runs, 'held') }))
    })
    const port = await listen(app)
    const url = `/held-${memoryEntries}`
    const host = { host: 'app.example' } // the authority is in the key
    t.equal((await app.inject({ url, headers: host })).headers['x-cache'], 'MISS')
    t.equal((await app.inject({ url, headers: host })).headers['x-cache'], 'HIT')
    // The client goes away while the hit waits in the app's slow onSend: the response never ends.
    const socket = net.connect({ host: '127.0.0.1', port })
    socket.on('error', () => {})
    socket.write(`GET ${url} HTTP/1.1\r\nhost: app.example\r\nx-slow: 1\r\n\r\n`)
    await sleep(60)
    socket.destroy()
    await sleep(400)
    t.equal(runs.held, 1, `memory tier ${memoryEntries === '0' ? 'off' : 'on'}: the handler ran once, for the miss`)
  }
})
