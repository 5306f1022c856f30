// Cross-instance invalidation over pub/sub, with two cache instances on their own connections.
import { Redis } from 'ioredis'
import t from 'tap'
import { useRedis, waitFor } from '../../helpers/index.js'
import { createCache } from '../../../lib/cache/index.js'
import { connect, instance } from './fixtures.js'

t.test('set, delete, invalidateTags and clear on one instance evict from the other\'s memory', async (t) => {
  const server = await useRedis(t)
  const a = await instance(t, server)
  const b = await instance(t, server)
  const received = (): number => b.events.filter((e) => e.type === 'invalidation-received').length
  const samples: number[] = []
  const propagation = async (action: () => Promise<void>): Promise<void> => {
    const before = received()
    const started = process.hrtime.bigint()
    await action()
    await waitFor(() => received() > before, { what: 'the invalidation message', intervalMs: 1 })
    samples.push(Number(process.hrtime.bigint() - started) / 1e6)
  }

  await a.cache.set('k', 1, { tags: ['t'] })
  await waitFor(() => received() > 0, { what: 'the first write message' })
  t.equal(await b.cache.get('k'), 1)
  t.equal(await b.cache.get('k'), 1)
  t.equal(b.cache.stats().namespaces['default']?.memory.hits, 1, 'b holds k in memory')

  await propagation(() => a.cache.set('k', 2, { tags: ['t'] }))
  t.equal(await b.cache.get('k'), 2, 'a write is seen by b at once')
  await propagation(() => a.cache.delete('k'))
  t.equal(await b.cache.get('k'), undefined)

  await a.cache.set('k', 3, { tags: ['t'] })
  await b.cache.get('k')
  await propagation(() => a.cache.invalidateTags(['t']))
  t.equal(await b.cache.get('k'), undefined)

  const ns = (c: typeof a): ReturnType<typeof a.cache.namespace> => c.cache.namespace('ns')
  await ns(a).set('k', 4)
  await ns(b).get('k')
  await propagation(() => ns(a).clear())
  t.equal(await ns(b).get('k'), undefined)

  for (let i = 0; i < 20; i++) await propagation(() => a.cache.set(`bulk:${i}`, i))
  samples.sort((x, y) => x - y)
  const median = samples[Math.floor(samples.length / 2)] ?? 0
  t.comment(`propagation (action + message applied on the other instance): n=${samples.length} median=${median.toFixed(2)} ms max=${samples.at(-1)?.toFixed(2)} ms`)
  t.equal(a.events.filter((e) => e.type === 'invalidation-received').length, 0, 'an instance ignores its own messages')
})

t.test('after the subscriber reconnects, the memory tier is flushed (messages may have been missed)', async (t) => {
  const server = await useRedis(t)
  const a = await instance(t, server)
  await a.cache.set('k', 1)
  t.equal(a.cache.stats().memory?.entries, 1)
  await server.cli('CLIENT', 'KILL', 'TYPE', 'pubsub')
  await waitFor(() => a.cache.stats().memory?.entries === 0, { what: 'the flush after resubscribing' })
  t.pass('flushed')
  await a.cache.set('k', 2)
  a.cache.onReconnect()
  t.equal(a.cache.stats().memory?.entries, 0, 'onReconnect() flushes too')
  t.equal(await a.cache.get('k'), 2, 'Redis still has it')
})

t.test('the invalidation subscription warns when a connected server refuses it, and not when it is merely connecting', async (t) => {
  const server = await useRedis(t, { acl: [{ username: 'nochannels', password: 'nochannels-password', rules: '~* +@all' }] })
  // A user without '&…' channel rights: SUBSCRIBE is refused with NOPERM by a connected server.
  const refused = await instance(t, server, {}, { username: 'nochannels', password: 'nochannels-password' })
  t.match(refused.warnings, [/could not subscribe to invalidations/], 'a real refusal is reported')
  // A subscriber still connecting when the cache is built: no warning, and it subscribes once ready.
  const client = await connect(t, server)
  const subscriber = new Redis({ host: server.host, port: server.port, enableOfflineQueue: false, lazyConnect: true })
  subscriber.on('error', () => {})
  t.teardown(() => subscriber.disconnect())
  const warnings: string[] = []
  const cache = createCache({ redis: client, subscriber, logger: { warn: (_obj, msg) => warnings.push(msg ?? ''), debug: () => {} } })
  t.teardown(() => cache.close())
  await subscriber.connect()
  await cache.ready()
  t.same(warnings, [], 'no warning for a subscriber that was not connected yet')
  t.equal(Number((await server.cli('PUBSUB', 'NUMSUB', 'cache:invalidate')).split('\n')[1]), 1, 'subscribed once ready')
})
