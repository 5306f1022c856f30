// Session payloads at rest: encrypted (AES-256-GCM, key rotation, tampering refused) and compressed,
// read in every form by readers of any setting. Against real Redis: what is stored is what Redis holds.
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { useRedis } from '../../helpers/index.js'
import { parseEncryptionKeys } from '../../../lib/codecs/index.js'
import { sessionHandle, sessionKey } from '../../../lib/session/index.js'
import { connect, load, makeStore, newSession, save } from './fixtures.js'

const [k1, k2] = parseEncryptionKeys([`k1:${randomBytes(32).toString('base64')}`, `k2:${randomBytes(32).toString('hex')}`])
const key = (id: string): string => sessionKey(sessionHandle(id))
const warnings = (): { logger: { warn: (o: object, m?: string) => void, info: () => void, debug: () => void }, seen: string[] } => {
  const seen: string[] = []
  return { seen, logger: { warn: (_o, m) => { seen.push(m ?? '') }, info: () => {}, debug: () => {} } }
}

t.test('encrypted at rest, read back; plain sessions written before are still read', async (t) => {
  const server = await useRedis(t)
  const client = await connect(t, server)
  const plain = makeStore(client).store
  const sealed = makeStore(client, { codec: { encryptionKeys: [k1!] } }).store
  await save(plain, newSession('old', { userId: 'ada', cart: ['a'] }))
  await save(sealed, newSession('new', { userId: 'bob', cart: ['secret-item'] }))
  const hash = await client.hgetall(key('new'))
  t.match(hash['d:cart'], /^ek1:[A-Za-z0-9+/=]+$/, 'the key id, then base64')
  t.notMatch(JSON.stringify(Object.entries(hash).filter(([f]) => f.startsWith('d:'))), 'secret-item')
  t.match(await load(sealed, 'new'), { userId: 'bob', cart: ['secret-item'] })
  const old = await load(sealed, 'old')
  t.match(old, { userId: 'ada', cart: ['a'] }, 'a plain session read by a reader with a key')
  old!['theme'] = 'dark'
  await save(sealed, old!)
  const oldHash = await client.hgetall(key('old'))
  t.match(oldHash['d:theme'], /^ek1:/, 'a changed field is written encrypted')
  t.equal(oldHash['d:cart'], '["a"]', 'an unchanged one stays as it was')
  t.match(await load(sealed, 'old'), { userId: 'ada', cart: ['a'], theme: 'dark' })
})

t.test('tampered or moved records are no session: counted, logged once, left to expire', async (t) => {
  const server = await useRedis(t)
  const client = await connect(t, server)
  const { seen, logger } = warnings()
  const { store } = makeStore(client, { codec: { encryptionKeys: [k1!] }, logger })
  await save(store, newSession('a', { userId: 'ada', cart: ['x'] }))
  await save(store, newSession('b', { userId: 'bob', cart: ['y'] }))
  const cart = (await client.hget(key('a'), 'd:cart'))!
  const flipped = cart.slice(0, -6) + (cart.at(-6) === 'A' ? 'B' : 'A') + cart.slice(-5)
  await client.hset(key('a'), 'd:cart', flipped)
  t.equal(await load(store, 'a'), null, 'one altered character')
  await client.hset(key('b'), 'd:cart', cart)
  t.equal(await load(store, 'b'), null, 'a field copied from another session')
  t.equal(store.stats().decryptionFailures, 2)
  t.equal(seen.filter((m) => m.includes('did not open')).length, 1, 'logged once')
  t.equal(await client.exists(key('a')), 1, 'not deleted: a wrong key list must not wipe every session')
  const keyless = makeStore(client).store
  await save(store, newSession('c', { cart: ['z'] }))
  t.equal(await load(keyless, 'c'), null, 'a reader without the key reads no session')
})

// Issue 32 (coverage): the two forms a forged or damaged record takes before AES-GCM even runs.
t.test('a record cut short of its IV and tag, or with its key id removed, is no session: counted, never thrown', async (t) => {
  const server = await useRedis(t)
  const client = await connect(t, server)
  const { store } = makeStore(client, { codec: { encryptionKeys: [k1!] } })
  await save(store, newSession('short', { userId: 'ada', cart: ['x'] }))
  await save(store, newSession('noid', { userId: 'bob', cart: ['y'] }))
  const cart = (await client.hget(key('short'), 'd:cart'))!
  await client.hset(key('short'), 'd:cart', `ek1:${Buffer.alloc(20).toString('base64')}`)
  t.equal(await load(store, 'short'), null, '20 bytes: shorter than a 12-byte IV and a 16-byte tag')
  await client.hset(key('noid'), 'd:cart', `e:${cart.slice(cart.indexOf(':') + 1)}`)
  t.equal(await load(store, 'noid'), null, 'a sealed value whose key id was removed does not open with the first key')
  t.equal(store.stats().decryptionFailures, 2)
})

t.test('rotation: the old key still opens, new writes use the new key', async (t) => {
  const server = await useRedis(t)
  const client = await connect(t, server)
  const before = makeStore(client, { codec: { encryptionKeys: [k1!] } }).store
  const after = makeStore(client, { codec: { encryptionKeys: [k2!, k1!] } }).store
  await save(before, newSession('s', { userId: 'ada', cart: ['a'] }))
  const s = await load(after, 's')
  t.match(s, { userId: 'ada', cart: ['a'] }, 'sealed with k1, opened by a reader listing k2 then k1')
  s!['cart'] = ['b']
  await save(after, s!)
  t.match(await client.hget(key('s'), 'd:cart'), /^ek2:/, 'the change is sealed with k2')
  await save(after, newSession('t', { theme: 'dark' }))
  t.match(await client.hget(key('t'), 'd:theme'), /^ek2:/)
  t.match(await load(before, 't'), null, 'an instance not yet given k2 cannot read it (rotate: add the key everywhere, then put it first)')
  t.match(await load(after, 's'), { userId: 'ada', cart: ['b'] })
})

t.test('compressed fields, alone or encrypted; a corrupt one is no session, counted', async (t) => {
  const server = await useRedis(t)
  const client = await connect(t, server)
  const big = Array.from({ length: 200 }, (_, i) => `item-${i % 10}`)
  const zipped = makeStore(client, { codec: { compression: { codec: 'brotli' } } }).store
  const both = makeStore(client, { codec: { compression: { codec: 'zlib', threshold: 100 }, encryptionKeys: [k1!] } }).store
  const plain = makeStore(client).store
  await save(zipped, newSession('z', { cart: big, theme: 'dark' }))
  t.match(await client.hget(key('z'), 'd:cart'), /^zb\n/)
  t.equal(await client.hget(key('z'), 'd:theme'), '"dark"', 'under the threshold: plain')
  t.match(await load(plain, 'z'), { cart: big, theme: 'dark' }, 'read by a reader without compression')
  await save(both, newSession('e', { cart: big }))
  const sealed = (await client.hget(key('e'), 'd:cart'))!
  t.match(sealed, /^ek1:/)
  t.ok(sealed.length < JSON.stringify(big).length / 2, 'compressed before encryption')
  t.match(await load(both, 'e'), { cart: big })
  await client.hset(key('z'), 'd:cart', 'zb\nbm90IGJyb3RsaQ==')
  t.equal(await load(plain, 'z'), null)
  t.equal(plain.stats().decompressionFailures, 1)
})
