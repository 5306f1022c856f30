// The session cookie signer answers exactly as @fastify/cookie's Signer (so existing cookies stay
// valid), including after a signature was remembered, and never remembers a forged one.
import t from 'tap'
import { Signer } from '@fastify/cookie'
import { SessionCookieSigner } from '../../../lib/session/index.js'

const A = 'a'.repeat(32)
const B = 'b'.repeat(32)

t.test('same signatures and verdicts as @fastify/cookie, before and after remembering', async (t) => {
  const ours = new SessionCookieSigner([B, A])
  const theirs = new Signer([B, A])
  const old = new Signer([A])
  const cookies = [
    theirs.sign('id-1'), old.sign('id-2'), theirs.sign(''), 'no-dot', 'trailing.', '.', theirs.sign('id-1').slice(0, -1) + 'x',
    `${theirs.sign('id-1')}é`, `id-1.${'é'.repeat(43)}`, `id-1.${'é'.repeat(22)}`, new Signer(['c'.repeat(32)]).sign('id-3'), 'a.b.c'
  ]
  for (let round = 0; round < 2; round++) {
    for (const cookie of cookies) t.same(ours.unsign(cookie), theirs.unsign(cookie), `round ${round}: ${cookie}`)
    t.equal(ours.sign('id-1'), theirs.sign('id-1'))
    t.equal(ours.sign('fresh'), theirs.sign('fresh'))
  }
})

t.test('a tampered cookie of a remembered id is refused; memory is bounded', async (t) => {
  const ours = new SessionCookieSigner([A], 3)
  const good = new Signer([A]).sign('id')
  t.equal(ours.unsign(good).valid, true)
  const sig = good.slice(good.lastIndexOf('.') + 1)
  const flipped = `id.${sig.slice(0, -1)}${sig.endsWith('A') ? 'B' : 'A'}`
  t.same(ours.unsign(flipped), { valid: false, renew: false, value: null })
  for (let i = 0; i < 10; i++) ours.unsign(new Signer([A]).sign(`other-${i}`))
  t.same(ours.unsign(good), { valid: true, renew: false, value: 'id' }, 'still verified after eviction')
})

// Issue 32 (coverage): a signer never starts without a secret, and a cookie value that is not a string
// (what a malformed Cookie header can turn into further up) is refused, not thrown on.
t.test('no secret is refused at construction; a cookie value that is not a string is invalid', async (t) => {
  t.throws(() => new SessionCookieSigner([]), TypeError)
  const ours = new SessionCookieSigner([A], undefined, { acceptExpressPrefix: true })
  for (const value of [undefined, null, 42, ['id.sig']] as unknown[]) {
    t.same(ours.unsign(value as string), { valid: false, renew: false, value: null }, `${JSON.stringify(value)}: invalid`)
  }
})
