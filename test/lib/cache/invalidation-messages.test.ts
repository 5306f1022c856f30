// Third security review, item 3: anyone who may PUBLISH on the invalidation channel (the README's
// least-privilege user may) sends what it likes. Every message is checked against a compiled schema;
// what does not match is dropped and counted, and no message can throw out of the listener (ioredis
// rethrows a listener's error as an uncaught exception, which ended every instance). A forged but
// well-formed message may evict memory copies, never make an entry look fresh: receivers take
// versions from Redis, not from messages.
import t from 'tap'
import { useRedis, waitFor } from '../../helpers/index.js'
import { instance } from './fixtures.js'

const CHANNEL = 'cache:invalidate'

t.test('malformed invalidation messages are dropped and counted; the instance goes on', async (t) => {
  const uncaught: unknown[] = []
  const onUncaught = (err: unknown): void => { uncaught.push(err) }
  process.on('uncaughtException', onUncaught)
  t.teardown(() => { process.off('uncaughtException', onUncaught) })
  const server = await useRedis(t)
  const a = await instance(t, server)
  const b = await instance(t, server)
  const hostile = [
    '{"from":"x","invalidation":{"kind":"keys","keys":5}}',
    '{"from":"x","invalidation":{"kind":"keys","keys":[1,2]}}',
    '{"from":"x","invalidation":{"kind":"tags","tags":"t"}}',
    '{"from":"x","invalidation":{"kind":"tags","tags":[{}]}}',
    '{"from":"x","invalidation":{"kind":"namespace","namespace":7}}',
    '{"from":"x","invalidation":{"kind":"namespace"}}',
    '{"from":"x","invalidation":{"kind":"other"}}',
    '{"from":"x","invalidation":null}',
    '{"from":5,"invalidation":{"kind":"keys","keys":[]}}',
    'null', '[]', '"text"', 'not json', '{"__proto__":{"polluted":1},"from":"x","invalidation":{"kind":"keys"}}'
  ]
  for (const message of hostile) await server.cli('PUBLISH', CHANNEL, message)
  await waitFor(() => b.cache.stats().invalidationsDropped === hostile.length, { what: `${hostile.length} drops counted` })
  t.equal(b.cache.stats().invalidationsReceived, 0, 'none applied')
  t.same(uncaught, [], 'nothing thrown out of the listener')
  t.equal(({} as { polluted?: number }).polluted, undefined, 'no prototype pollution')

  // The bus still works: a real write on a evicts b's memory copy.
  await a.cache.set('k', 1)
  t.equal(await b.cache.get('k'), 1)
  const received = b.cache.stats().invalidationsReceived
  await a.cache.set('k', 2)
  await waitFor(() => b.cache.stats().invalidationsReceived > received, { what: 'the real message' })
  t.equal(await b.cache.get('k'), 2)
})

t.test('a forged version never makes an entry written before a real invalidation look fresh', async (t) => {
  const server = await useRedis(t)
  const a = await instance(t, server)
  const b = await instance(t, server)
  // The tag has never been invalidated (version 0); the forger announces the version the next real
  // invalidation will reach, so entries b writes now would carry it.
  await server.cli('PUBLISH', CHANNEL, '{"from":"x","invalidation":{"kind":"tags","tags":["users"],"versions":["1"]}}')
  await waitFor(() => b.cache.stats().invalidationsReceived + (b.cache.stats().invalidationsDropped ?? 0) > 0, { what: 'the forged message' })
  await b.cache.set('user:1', 'before', { tags: ['users'], ttl: '1m' })
  await a.cache.invalidateTags(['users']) // the real invalidation: Redis's version becomes 1
  t.equal(await server.cli('GET', 'cache:tag:{users}'), '1', 'the real version')
  t.equal(await a.cache.get('user:1'), undefined, 'the entry written before the invalidation is a miss')
  const c = await instance(t, server)
  t.equal(await c.cache.get('user:1'), undefined, 'for a fresh instance too')
})
