// The HTTP response cache core without Fastify: keys, Cache-Control, ETags, route policies, entries.
import t from 'tap'
import {
  buildResponseKey, canonicalUrl, computeEtag, formatCacheControl, freshness, hashIdentity,
  matchesIfNoneMatch, parseCacheControl, readCookie, replayableHeaders, resolveRoutePolicy, storageTtl, tagsFor,
  wantsRevalidation, whyNotStorable
} from '../../../lib/http-cache/index.js'
import { HttpCacheConfigError } from '../../../lib/errors/index.js'

t.test('key: method, path, sorted query, vary values, user', async (t) => {
  t.equal(canonicalUrl('/a?b=2&a=1&a=0'), '/a?a=1&a=0&b=2', 'parameters sorted by name only: values keep their order')
  t.equal(canonicalUrl('/a?b=2&a=1&c=3', new Set(['a', 'b'])), '/a?a=1&b=2', 'only the listed parameters')
  t.equal(canonicalUrl('/a?x=a%20b'), canonicalUrl('/a?x=a+b'), 'one encoding of the same value')
  t.equal(canonicalUrl('/a?'), '/a')
  t.equal(canonicalUrl('/a#frag'), '/a?frag=', '# starts the query, as Fastify reads it')
  t.equal(canonicalUrl('/a#&page=9&x'), canonicalUrl('/a?page=9&x='), 'the handler sees { page, x } either way')
  t.equal(canonicalUrl('/a?q=%FF'), undefined, 'a value that does not decode reaches the handler raw: not keyed')
  t.equal(canonicalUrl('/a?%FE=1'), undefined)
  t.equal(canonicalUrl('/a?q=%EF%BF%BD'), '/a?q=%EF%BF%BD', 'a real U+FFFD is a value like any other')
  t.equal(canonicalUrl('/a?q=%FF&%FE=2&r=1', new Set(['r'])), '/a?r=1', 'a parameter the route ignores may be anything')
  t.equal(canonicalUrl('/a?r=%FF', new Set(['r'])), undefined)
  t.equal(canonicalUrl('/a;b=1?c=2', undefined, true), undefined, '; in the path with useSemicolonDelimiter')
  t.equal(canonicalUrl('/a;b=1?c=2'), '/a;b=1?c=2')
  t.equal(buildResponseKey({ origin: 'http://a', method: 'GET', url: '/users?b=1&a=2' }), 'GET http://a/users?a=2&b=1')
  t.equal(buildResponseKey({ origin: 'http://a', method: 'HEAD', url: '/users' }), buildResponseKey({ origin: 'http://a', method: 'GET', url: '/users' }), 'HEAD shares GET entries')
  const en = buildResponseKey({ origin: 'http://a', method: 'GET', url: '/g', vary: [['accept-language', 'en']] })
  const fr = buildResponseKey({ origin: 'http://a', method: 'GET', url: '/g', vary: [['accept-language', 'fr']] })
  const none = buildResponseKey({ origin: 'http://a', method: 'GET', url: '/g', vary: [['accept-language', undefined]] })
  const empty = buildResponseKey({ origin: 'http://a', method: 'GET', url: '/g', vary: [['accept-language', '']] })
  t.equal(new Set([en, fr, none, empty]).size, 4, 'each vary value, absent and empty included, is its own key')
  t.not(buildResponseKey({ origin: 'http://a', method: 'GET', url: '/me', user: hashIdentity('user:1') }), buildResponseKey({ origin: 'http://a', method: 'GET', url: '/me', user: hashIdentity('user:2') }))
  t.not(hashIdentity('a', 'secret-1'), hashIdentity('a', 'secret-2'), 'keyed by the app secret')
  t.notMatch(hashIdentity('authorization:Bearer token'), /token/, 'never the raw token')
  const long = buildResponseKey({ origin: 'http://a', method: 'GET', url: `/x?q=${'a'.repeat(2000)}` })
  t.ok(long !== undefined && Buffer.byteLength(long) < 100 && long.startsWith('GET #'), 'a long URL is keyed by its hash')
})

t.test('Cache-Control: parse the request, format the response', async (t) => {
  t.same([...parseCacheControl('No-Cache, max-age="0", private=x')], [['no-cache', true], ['max-age', '0'], ['private', 'x']])
  t.ok(wantsRevalidation('no-cache', undefined))
  t.ok(wantsRevalidation('max-age=0', undefined))
  t.ok(wantsRevalidation(undefined, 'no-cache'))
  t.notOk(wantsRevalidation('max-age=60', 'no-cache'), 'Pragma only counts without Cache-Control')
  t.notOk(wantsRevalidation(undefined, undefined))
  const f = { ttlMs: 60_000, maxAgeMs: 60_000, staleWhileRevalidateMs: 30_000, staleIfErrorMs: 0, private: false }
  t.equal(formatCacheControl(f), 'public, max-age=60, s-maxage=60, stale-while-revalidate=30')
  t.equal(formatCacheControl({ ...f, private: true, maxAgeMs: 1_500, staleIfErrorMs: 300_000 }), 'private, max-age=1, stale-while-revalidate=30, stale-if-error=300')
})

t.test('ETag: strong, stable, If-None-Match', async (t) => {
  const etag = computeEtag('{"a":1}')
  t.match(etag, /^"[\w-]{27}"$/)
  t.equal(computeEtag(Buffer.from('{"a":1}')), etag, 'same bytes, same ETag, string or Buffer')
  t.not(computeEtag('{"a":2}'), etag)
  t.ok(matchesIfNoneMatch(etag, etag))
  t.ok(matchesIfNoneMatch(`"x", W/${etag}`, etag), 'weak comparison, lists')
  t.ok(matchesIfNoneMatch('*', etag))
  t.ok(matchesIfNoneMatch('"a,b", ' + etag, etag), 'commas inside an entity tag')
  t.notOk(matchesIfNoneMatch('"other"', etag))
  t.notOk(matchesIfNoneMatch(undefined, etag))
})

t.test('route policy: resolved once, mistakes fail at registration', async (t) => {
  const policy = resolveRoutePolicy({ ttl: '1m', vary: ['Accept-Language', 'accept'], tags: ['users', 'users'] }, ['GET', 'HEAD'], '/users', { ttlMs: 5_000 })
  t.same(policy.cache, { ttlMs: 60_000, maxAgeMs: 60_000, staleWhileRevalidateMs: 0, staleIfErrorMs: 0, private: false, vary: ['accept', 'accept-language'], tags: ['users'], cookies: 'any', query: undefined, clientRevalidation: false, maxEntries: Infinity, maxBytes: Infinity })
  t.equal(resolveRoutePolicy({}, ['GET'], '/x', { ttlMs: 5_000 }).cache?.ttlMs, 5_000, 'default ttl')
  t.same(resolveRoutePolicy({ invalidates: ['users'] }, ['POST'], '/users', { ttlMs: 5_000 }), { cache: undefined, invalidates: ['users'] })
  const fn = (request: { id: string }): string[] => [`user:${request.id}`]
  t.same(tagsFor(resolveRoutePolicy({ tags: fn }, ['GET'], '/u', { ttlMs: 1 }).cache?.tags ?? [], { id: '7' }), ['user:7'])
  t.throws(() => tagsFor(() => [''], {}), { code: 'FRS_CACHE_KEY_INVALID' }, 'a tag function returning a bad tag')
  for (const [options, methods, message] of [
    [{ ttl: '1m' }, ['POST'], /only apply to GET and HEAD/],
    [{ invalidates: ['x'] }, ['GET'], /invalidates applies to POST/],
    [{}, ['DELETE'], /give a write route invalidates/],
    [{ ttl: 'soon' }, ['GET'], /ttl must be a duration/],
    [{ ttl: 0 }, ['GET'], /longer than 0/],
    [{ vary: ['bad header'] }, ['GET'], /vary must list header names/],
    [{ tags: ['ok', ''] }, ['GET'], /tags: /]
  ] as const) {
    t.throws(() => resolveRoutePolicy(options as never, methods, '/r', { ttlMs: 1_000 }), { name: 'HttpCacheConfigError', code: 'FRS_HTTP_CACHE_CONFIG_INVALID', message }, JSON.stringify(options))
  }
  t.ok(new HttpCacheConfigError('x') instanceof TypeError)
})

t.test('entries: what is stored, what is replayed, how long it lives', async (t) => {
  const base = { status: 200, headers: { 'content-type': 'application/json' }, payload: '{}', vary: [], privateRoute: false, maxBodyBytes: 100 }
  t.equal(whyNotStorable(base), undefined)
  t.equal(whyNotStorable({ ...base, payload: Buffer.from('x') }), undefined)
  t.match(whyNotStorable({ ...base, status: 500 }), { bypass: false })
  t.match(whyNotStorable({ ...base, status: 206 }), { bypass: false })
  t.match(whyNotStorable({ ...base, headers: { 'set-cookie': 'a=b' } }), { reason: 'sets a cookie', bypass: true })
  t.match(whyNotStorable({ ...base, payload: { pipe () {} } }), { reason: 'streamed body', bypass: true })
  t.match(whyNotStorable({ ...base, headers: { 'cache-control': 'no-store' } }), { bypass: true })
  t.match(whyNotStorable({ ...base, headers: { 'cache-control': 'private' } }), { bypass: true })
  t.equal(whyNotStorable({ ...base, headers: { 'cache-control': 'private' }, privateRoute: true }), undefined)
  t.match(whyNotStorable({ ...base, headers: { vary: 'Origin' } }), { reason: /varies on origin/ })
  t.equal(whyNotStorable({ ...base, headers: { vary: 'Origin' }, vary: ['origin'] }), undefined)
  t.match(whyNotStorable({ ...base, headers: { 'content-encoding': 'gzip' } }), { bypass: true })
  t.match(whyNotStorable({ ...base, payload: 'x'.repeat(101) }), { bypass: false, reason: /exceeds/ })

  t.same(replayableHeaders({
    'Content-Type': 'text/plain', 'x-custom': 1, 'set-cookie': ['a'], 'content-length': '3', 'x-ratelimit-remaining': '9', ratelimit: 'x', date: 'd', 'x-secret': 's', link: ['<a>', '<b>']
  }, new Set(['x-secret'])), { 'content-type': 'text/plain', 'x-custom': '1', link: ['<a>', '<b>'] })

  const lifetime = { ttlMs: 1_000, staleWhileRevalidateMs: 2_000, staleIfErrorMs: 5_000 }
  t.equal(freshness(0, lifetime, 999), 'fresh')
  t.equal(freshness(0, lifetime, 1_000), 'stale-while-revalidate')
  t.equal(freshness(0, lifetime, 3_000), 'stale-if-error')
  t.equal(freshness(0, lifetime, 6_000), 'expired')
  t.equal(freshness(10_000, lifetime, 0), 'fresh', 'an entry from a clock ahead of ours is fresh, not negative-aged')
  t.equal(storageTtl(lifetime), 6_000)
})

t.test('readCookie', async (t) => {
  t.equal(readCookie('a=1; sid=s%3Aabc.sig; b=2', 'sid'), 's%3Aabc.sig')
  t.equal(readCookie('xsid=1', 'sid'), undefined)
  t.equal(readCookie(undefined, 'sid'), undefined)
})
