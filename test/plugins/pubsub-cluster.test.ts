// On Redis Cluster: locks (lock and fence counter in one slot), presence, pub/sub and streams (dead
// letters included: a stream and its dead-letter stream in different slots) work through the suite
// unchanged, with names that hash to different slots.
import t from 'tap'
import Type from 'typebox'
import { useCluster, waitFor } from '../helpers/index.js'
import { buildTestApp } from '../helper.js'

t.test('cluster: locks, presence, pub/sub and a stream consumer', async (t) => {
  const cluster = await useCluster(t)
  const env = { REDIS_CLUSTER_NODES: cluster.startupNodes.map((a) => `${a.host}:${a.port}`).join(','), REDIS_KEY_PREFIX: 'app:' }
  const a = (await buildTestApp(t, env)).app
  const b = (await buildTestApp(t, env)).app

  for (const name of ['alpha', 'beta', 'gamma', 'delta']) {
    const first = await a.locks.acquire(name, { ttl: '5s' })
    t.equal(await b.locks.tryAcquire(name), undefined, `${name}: held`)
    t.ok(await first.release())
    const second = await b.locks.acquire(name, { ttl: '5s' })
    t.ok(second.fencingToken > first.fencingToken, `${name}: fencing token grows (no CROSSSLOT)`)
    await second.release()
  }

  for (const room of ['r1', 'r2', 'r3']) {
    await a.presence.join(room, 'ada')
    await b.presence.join(room, 'bob')
    t.equal(await a.presence.count(room), 2, `presence in ${room}`)
  }

  const Msg = Type.Object({ n: Type.Integer() })
  const got: number[] = []
  await b.pubsub.channel('news', Msg).subscribe((m) => { got.push(m.n) })
  await waitFor(async () => (await a.pubsub.channel('news', Msg).publish({ n: 1 })) > 0, { timeoutMs: 5_000, what: 'a subscriber on the cluster' })
  await waitFor(() => got.includes(1), { timeoutMs: 2_000, what: 'cluster delivery' })

  const handled: number[] = []
  const consumer = await b.pubsub.stream('jobs', Msg).consume('workers', 'w1', (m) => { handled.push(m.n) })
  await a.pubsub.stream('jobs', Msg).add({ n: 7 })
  await waitFor(() => handled.includes(7), { timeoutMs: 3_000, what: 'stream entry on the cluster' })
  await consumer.stop()

  // app:stream:orders is slot 5423, app:stream:orders:dead slot 2772: no command spans both.
  const failing = await b.pubsub.stream('orders', Msg).consume('billing', 'b1', () => { throw new Error('declined') }, { minIdle: 50, maxDeliveries: 2 })
  await a.pubsub.stream('orders', Msg).add({ n: 1 })
  await waitFor(() => b.pubsub.stats().streamMessagesDeadLettered === 1, { timeoutMs: 5_000, what: 'a dead letter on the cluster' })
  await failing.stop()
  const letters: unknown[] = []
  const reader = await a.pubsub.stream('orders', Msg).deadLetters.consume('ops', 'o1', (letter) => { letters.push(letter) }, { from: 'beginning' })
  await waitFor(() => letters.length === 1, { timeoutMs: 3_000, what: 'the dead letter read on the cluster' })
  t.match(letters[0], { group: 'billing', consumer: 'b1', deliveries: 2, error: 'declined', message: { n: 1 } })
  await reader.stop()
})
