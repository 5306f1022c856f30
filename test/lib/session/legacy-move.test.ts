// Moving a connect-redis session (SESSION_LEGACY_PREFIX) into the suite's store, on the paths the
// coverage report showed untested (issue 32): what must never come back (an expired session, data that
// breaks the payload schema, a value that is not a session, an id that is not one), and a move whose
// write Redis refuses, which must leave the old session in place rather than sign the user out.
import t from 'tap'
import { useRedis } from '../../helpers/index.js'
import { ConnectRedisSessions } from '../../../lib/session/index.js'
import { SessionUnavailableError } from '../../../lib/errors/index.js'
import { connect, load, makeStore } from './fixtures.js'

const DAY = 86_400_000
const legacyValue = (fields: Record<string, unknown>): string =>
  JSON.stringify({ cookie: { originalMaxAge: DAY, expires: new Date(Date.now() + DAY).toISOString() }, ...fields })

t.test('an expired legacy session is not revived, and a legacy session that breaks the schema is not loaded: both keys are deleted', async (t) => {
  const server = await useRedis(t)
  const client = await connect(t, server)
  const { store } = makeStore(client, { legacy: new ConnectRedisSessions(client, 'sess:') })

  // A fixed expiry (express-session's cookie.expires, no max age) that passed a minute ago.
  const expired = JSON.stringify({ cookie: { originalMaxAge: null, expires: new Date(Date.now() - 60_000).toISOString() }, userId: 'ada' })
  await server.cli('SET', 'sess:expired_0123456789abcdef', expired)
  t.equal(await load(store, 'expired_0123456789abcdef'), null, 'a cookie that expired a minute ago is no session')
  t.equal(await server.cli('EXISTS', 'sess:expired_0123456789abcdef'), '0', 'and its old key is gone')
  // With a max age too (express-session's usual cookie: expires = last touch + max age), a passed
  // expires still ends it: the move must not give it a fresh max age.
  const expiredWithMaxAge = JSON.stringify({ cookie: { originalMaxAge: DAY, expires: new Date(Date.now() - 60_000).toISOString() }, userId: 'ada' })
  await server.cli('SET', 'sess:expiredmax_0123456789abcdef', expiredWithMaxAge)
  t.equal(await load(store, 'expiredmax_0123456789abcdef'), null, 'a max-age cookie past its expires is no session either')
  t.equal(await server.cli('EXISTS', 'sess:expiredmax_0123456789abcdef'), '0', 'and its old key is gone')

  await server.cli('SET', 'sess:badshape_0123456789abcdef', legacyValue({ userId: 42, isAdmin: true }))
  t.equal(await load(store, 'badshape_0123456789abcdef'), null, 'userId must be a string: the session is not loaded')
  t.equal(await server.cli('EXISTS', 'sess:badshape_0123456789abcdef'), '0', 'and its old key is gone')
  t.equal(store.stats().invalid, 1, 'counted as invalid')
  t.equal(store.stats().migrated, 0, 'nothing was moved')
})

t.test('a legacy value that is not a JSON object is no session; an id outside express-session\'s shape never reaches Redis', async (t) => {
  const server = await useRedis(t)
  const client = await connect(t, server)
  const legacy = new ConnectRedisSessions(client, 'sess:')
  for (const [id, raw] of [['notjson_0123456789abcdef', '{"cookie":'], ['array_0123456789abcdef', '[1,2]'], ['null_0123456789abcdef', 'null']] as const) {
    await server.cli('SET', `sess:${id}`, raw)
    t.equal(await legacy.read(id), undefined, `${raw}: no session`)
  }

  // An id that is not [A-Za-z0-9_-]{1,128} is refused before any command: a cookie cannot name another
  // key under the legacy prefix (here the suite's own user index) to read, claim or recreate it.
  const victim = 'sess:user:{ada}'
  await server.cli('SET', victim, legacyValue({ userId: 'ada' }))
  const crafted = 'user:{ada}'
  t.equal(await legacy.read(crafted), undefined, 'read: no session')
  t.equal(await legacy.claim(crafted), false, 'claim: nothing claimed')
  await legacy.remove(crafted)
  await legacy.restore(crafted, { userId: 'mallory' })
  t.match(await server.cli('GET', victim), /"userId":"ada"/, 'untouched: not deleted, not overwritten')
  t.equal(await legacy.claim('a'.repeat(129)), false, 'an id longer than 128 characters is refused too')
})

t.test('a move whose write Redis refuses puts the legacy session back, short-lived, and answers unavailable', async (t) => {
  // The user's session index (sess:user:{ada}) holds a string, put there by something else sharing the
  // keyspace: the move's write fails with WRONGTYPE after the old key was claimed, as any write failing
  // half-way through a move would.
  const server = await useRedis(t)
  const client = await connect(t, server)
  const { store } = makeStore(client, { legacy: new ConnectRedisSessions(client, 'old:') })
  const id = 'moving_0123456789abcdef'
  await server.cli('SET', 'sess:user:{ada}', 'not a sorted set')
  await server.cli('SET', `old:${id}`, legacyValue({ userId: 'ada' }))

  const err = await load(store, id).then(() => undefined, (e: unknown) => e)
  t.type(err, SessionUnavailableError, 'the request is told sessions are unavailable, not handed a fresh session')
  t.match(await server.cli('GET', `old:${id}`), /"userId":"ada"/, 'the legacy session is back: the user is still signed in on the next request')
  const ttl = Number(await server.cli('PTTL', `old:${id}`))
  t.ok(ttl > 0 && ttl <= DAY, `restored with a life of at most a day (${ttl} ms)`)
  t.equal(store.stats().migrated, 0, 'not counted as moved')
})
