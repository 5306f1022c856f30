// Moving a connect-redis session (SESSION_LEGACY_PREFIX) while two requests carry the same legacy
// cookie: only one of them may write the moved session. Before, both read the old JSON and both
// wrote it, so a sign-out made by the first (destroy after its move) was undone by the second's write.
import t from 'tap'
import { useRedis } from '../../helpers/index.js'
import { ConnectRedisSessions, type LegacySessionSource } from '../../../lib/session/index.js'
import { connect, destroy, load, makeStore } from './fixtures.js'

t.test('a sign-out right after the move is not undone by a concurrent request with the same legacy cookie', async (t) => {
  const server = await useRedis(t)
  const client = await connect(t, server)
  const real = new ConnectRedisSessions(client, 'sess:')
  // The second read of the old key is held until the first request has moved and destroyed the session.
  let reads = 0
  let release!: () => void
  const held = new Promise<void>((resolve) => { release = resolve })
  const legacy: LegacySessionSource = {
    read: async (id) => {
      const value = await real.read(id)
      if (++reads === 2) await held
      return value
    },
    remove: (id) => real.remove(id),
    claim: (id) => real.claim(id),
    restore: (id, session) => real.restore(id, session)
  }
  const { store } = makeStore(client, { legacy })
  const id = 'legacyId_0123456789abcdef'
  await server.cli('SET', `sess:${id}`, JSON.stringify({ cookie: { originalMaxAge: 86_400_000, expires: new Date(Date.now() + 86_400_000).toISOString() }, userId: 'ada' }))

  const first = load(store, id)
  const second = load(store, id)
  const signedIn = await first
  t.equal(signedIn?.userId, 'ada', 'moved: still signed in')
  await destroy(store, id) // the first request signs out
  release()
  const late = await second
  t.not(late?.userId, 'ada', 'the late request does not bring the session back')
  t.equal(await load(store, id), null, 'signed out for good')
  t.equal(await server.cli('EXISTS', `sess:${id}`), '0', 'the old key is gone')
})
