// The policies script (config.rateLimit.policies) at the store, against real Redis: atomic on one
// server in one call, per-policy calls with refunds on a Cluster (no cross-slot error, a refused
// request leaves every counter as it was), and reward/penalty on the sliding window.
import t from 'tap'
import { Cluster } from 'ioredis'
import { useCluster, useRedis } from '../../helpers/fixtures.js'
import { connectClient, openStore } from './clients.js'
import { POLICIES_LUA } from '../../../lib/rate-limit/scripts.js'
import type { PolicyDefinition } from '../../../lib/rate-limit/store.js'

const list: PolicyDefinition[] = [
  { max: 2, timeWindow: '10s', scope: 'r#ip' },
  { max: 3, timeWindow: '1d', scope: 'r#user', algorithm: 'sliding' }
]

t.test('one server: one call, atomic, costs', async (t) => {
  const server = await useRedis(t)
  const client = await connectClient(t, server)
  const store = await openStore(t, { redis: client })
  const bound = store.policies(list)
  await client.script('LOAD', POLICIES_LUA)
  await client.config('RESETSTAT')
  const a = await bound.consume(['ip:1', 'user:a'], [1, 2])
  t.same([a.allowed, a.decisions.map((d) => d.remaining)], [true, [1, 1]])
  const b = await bound.consume(['ip:1', 'user:a'], [1, 2])
  t.same([b.allowed, b.refusedBy], [false, 1], 'the user policy (1 left, cost 2) refuses')
  t.equal(await client.get('rl:{r#ip|ip:1}:f'), '1', 'the ip policy was not charged for the refused request')
  const c = await bound.consume(['ip:1', 'user:a'], [1, 1])
  t.same([c.allowed, c.decisions.map((d) => d.remaining)], [true, [0, 0]])
  const calls = /cmdstat_evalsha:calls=(\d+)/.exec(await client.info('commandstats'))?.[1]
  t.equal(calls, '3', 'one script call per request')
})

t.test('Cluster: keys in different slots, no cross-slot error, a refused request refunded everywhere', async (t) => {
  const cluster = await useCluster(t)
  const client = new Cluster(cluster.startupNodes, { redisOptions: { commandTimeout: 2_000 } })
  t.teardown(() => client.disconnect())
  await new Promise((resolve) => client.once('ready', resolve))
  const store = await openStore(t, { redis: client })
  const bound = store.policies(list)
  const first = await bound.consume(['ip:9', 'user:z'], [1, 3])
  t.same([first.allowed, first.decisions.map((d) => d.source)], [true, ['redis', 'redis']])
  const second = await bound.consume(['ip:9', 'user:z'], [1, 1])
  t.same([second.allowed, second.refusedBy], [false, 1])
  t.equal(await client.get('rl:{r#ip|ip:9}:f'), '1', 'the ip charge was given back')
  t.equal(store.stats().redisFailures, 0, 'no cross-slot error')
  const other = await bound.consume(['ip:9', 'user:y'], [1, 1])
  t.equal(other.allowed, true, 'the ip policy still has its second request')
})

t.test('reward and penalty move a sliding window', async (t) => {
  const server = await useRedis(t)
  const store = await openStore(t, { redis: await connectClient(t, server) })
  const limit = store.limit({ max: 2, timeWindow: '1h', algorithm: 'sliding', scope: 'adj' })
  await limit.adjust('u', 2)
  t.equal((await limit.consume('u')).allowed, false, 'a penalty of 2 spends the window')
  await limit.adjust('u', -1)
  t.equal((await limit.consume('u')).allowed, true, 'a reward of 1 lets one pass')
  t.equal((await limit.consume('u')).allowed, false)
})

t.test('in process (no Redis, and the fallback while Redis is down): every policy checked before any is charged', async (t) => {
  const store = await openStore(t, {})
  const bound = store.policies([{ max: 1, timeWindow: '1m', scope: 'm#a' }, { max: 5, timeWindow: '1m', scope: 'm#b' }])
  t.equal((await bound.consume(['a', 'x'], [1, 1])).allowed, true)
  const refused = await bound.consume(['a', 'x'], [1, 1])
  t.same([refused.allowed, refused.refusedBy, refused.decisions[1]?.remaining], [false, 0, 4], 'policy b not charged for the refused request')
  const other = await bound.consume(['b', 'x'], [1, 4])
  t.same([other.allowed, other.decisions[1]?.remaining], [true, 0], 'policy b had 4 left for a cost of 4')
  t.match(store.stats(), { allowed: 2, limited: 1 })
})
