import t from 'tap'
import { buildLimitKeys, clientIpKey, ipRateLimitKey } from '../../../lib/rate-limit/keys.js'

/** The part of a key Redis Cluster hashes: the first {…} with something inside, else the whole key. */
function hashTag (key: string): string {
  const open = key.indexOf('{')
  const close = open === -1 ? -1 : key.indexOf('}', open + 1)
  return close > open + 1 ? key.slice(open + 1, close) : key
}

t.test('IPv6 addresses are grouped by /64', async (t) => {
  t.equal(clientIpKey('2001:db8:1:2:aaaa:bbbb:cccc:dddd'), '2001:db8:1:2::/64')
  t.equal(clientIpKey('2001:0DB8:0001:0002::1'), '2001:db8:1:2::/64', 'upper case and leading zeros')
  t.equal(clientIpKey('2001:db8:1:2::ffff'), clientIpKey('2001:db8:1:2:1:2:3:4'), 'one /64, one key')
  t.not(clientIpKey('2001:db8:1:3::1'), clientIpKey('2001:db8:1:2::1'), 'the next /64 is another client')
  t.equal(clientIpKey('2001:db8::1'), '2001:db8::/64', 'zero groups compressed')
  t.equal(clientIpKey('fe80::1%eth0'), 'fe80::/64', 'zone id dropped')
  t.equal(clientIpKey('::1'), '::/64')
  t.equal(clientIpKey('2001:db8:1:2:3:4:5:6', 128), '2001:db8:1:2:3:4:5:6', '/128 keeps the address')
  t.equal(clientIpKey('2001:db8:1:2:3:4:5:6', 48), '2001:db8:1::/48')
})

t.test('IPv4 and IPv4-mapped IPv6 are the same client', async (t) => {
  t.equal(clientIpKey('203.0.113.7'), '203.0.113.7')
  t.equal(clientIpKey('::ffff:203.0.113.7'), '203.0.113.7')
  t.equal(clientIpKey('::FFFF:cb00:7107'), '203.0.113.7', 'hex form of a mapped address')
  t.equal(clientIpKey('not-an-ip'), 'not-an-ip', 'anything else is returned as is')
})

t.test('limit keys share one hash tag per client and route', async (t) => {
  const keys = buildLimitKeys({ scope: 'POST/login', id: '203.0.113.7' })
  t.same(keys, { counter: 'rl:{POST/login|203.0.113.7}:f', strikes: 'rl:{POST/login|203.0.113.7}:s', ban: 'rl:{POST/login|203.0.113.7}:b' })
  t.equal(buildLimitKeys({ scope: 's', id: 'x', algorithm: 'sliding' }).counter, 'rl:{s|x}:g', 'each algorithm has its own counter')
  const hostile = buildLimitKeys({ namespace: 'app:', scope: 'GET/a', id: 'evil}{id%7B' })
  const tags = new Set([hostile.counter, hostile.strikes, hostile.ban].map(hashTag))
  t.equal(tags.size, 1, 'braces in an id cannot split the keys over slots')
  t.equal([...tags][0], 'GET/a|evil%7D%7Bid%257B')
  t.not(hashTag(buildLimitKeys({ scope: 'r', id: 'a' }).counter), hashTag(buildLimitKeys({ scope: 'r', id: 'b' }).counter),
    'different clients spread over slots')
})

t.test('a client address keys the same from the cache of recent addresses', async (t) => {
  for (const ip of ['203.0.113.7', '::ffff:203.0.113.7', '2001:db8:1:2::1', ' 198.51.100.1 ']) {
    const first = ipRateLimitKey(ip)
    t.equal(ipRateLimitKey(ip), first, `${ip} again`)
    t.equal(first, `ip:${clientIpKey(ip)}`)
  }
  t.equal(ipRateLimitKey('2001:db8:1:2:3:4:5:6', 48), 'ip:2001:db8:1::/48', 'another prefix length is not cached under /64')
  // More addresses than the cache holds: it starts over, and every key stays right.
  const wrong: string[] = []
  for (let i = 0; i < 10_050; i++) {
    const ip = `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`
    if (ipRateLimitKey(ip) !== `ip:${ip}`) wrong.push(ip)
  }
  t.same(wrong, [], 'every key of 10,050 addresses')
})
