import t from 'tap'
import { buildAllowList } from '../../../lib/rate-limit/allow-list.js'
import { formatRateLimit, formatRateLimitPolicy } from '../../../lib/rate-limit/http.js'
import { RateLimitExceededError } from '../../../lib/errors/index.js'

t.test('IETF header values (draft-ietf-httpapi-ratelimit-headers): a quoted policy name and integer parameters', async (t) => {
  t.equal(formatRateLimitPolicy('default', 100, 60_000), '"default";q=100;w=60')
  t.equal(formatRateLimitPolicy('default', 100, 400), '"default";q=100;w=1', 'a window under a second rounds up to 1')
  t.equal(formatRateLimitPolicy('route', 5), '"route";q=5', 'w left out when the window is not known')
  t.equal(formatRateLimit('default', 0, 30), '"default";r=0;t=30')
  t.equal(formatRateLimit('auth', -1, Number.NaN), '"auth";r=0;t=0', 'never negative or NaN')
  t.equal(formatRateLimitPolicy('a"b\\c\u00e9', 1), '"a\\"b\\\\c_";q=1', 'escaped, ASCII only')
})

t.test('the 429 error', async (t) => {
  const err = new RateLimitExceededError(29_001)
  t.match(err, { statusCode: 429, code: 'FRS_RATE_LIMITED', retryAfterS: 30, message: 'Rate limit exceeded: retry in 30 s' })
  t.match(new RateLimitExceededError(0), { retryAfterS: 1 }, 'never "retry in 0 s"')
  t.match(new RateLimitExceededError(5000, true), { statusCode: 403, code: 'FRS_RATE_LIMIT_BANNED' })
})

t.test('allow list: addresses and CIDRs, IPv4 and IPv6, mapped addresses', async (t) => {
  t.equal(buildAllowList([]), undefined)
  const allowed = buildAllowList(['10.0.0.0/8', '192.0.2.7', '2001:db8::/32', '::ffff:172.16.0.0/108', 'fe80::1'])
  t.ok(allowed !== undefined)
  const check = allowed ?? (() => false)
  t.ok(check('10.20.30.40'))
  t.ok(check('::ffff:10.1.2.3'), 'an IPv4-mapped client matches the IPv4 CIDR')
  t.ok(check('192.0.2.7'))
  t.notOk(check('192.0.2.8'))
  t.ok(check('2001:db8:ffff::1'))
  t.ok(check('2001:DB8::1'), 'case-insensitive')
  t.notOk(check('2001:db9::1'))
  t.ok(check('172.16.5.5'), 'a mapped IPv6 CIDR is the IPv4 one')
  t.notOk(check('172.32.0.1'))
  t.ok(check('fe80::1%eth0'), 'zone id ignored')
  t.notOk(check('not-an-ip'))
  for (const bad of ['10.0.0.0/33', '2001:db8::/129', 'example.com', '10.0.0.0/8/1', '10.0.0.0/x', '']) {
    t.throws(() => buildAllowList([bad]), { code: 'FRS_RATE_LIMIT_ALLOW_LIST_INVALID', message: /RATE_LIMIT_ALLOW_LIST must list/ }, JSON.stringify(bad))
  }
})
