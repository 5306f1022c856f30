// The policies script (config.rateLimit.policies) at the store, against real Redis: atomic on one
// server in one call, per-policy calls with refunds on a Cluster (no cross-slot error, a refused
// request leaves every counter as it was), and reward/penalty on the sliding window.
import t from 'tap'
import { Cluster } from 'ioredis'
import { useCluster, useRedis } from '../../helpers/fixtures.js'
import { connectClient, openStore } from './clients.js'
import { POLICIES_LUA, POLICIES_MANY_LUA } from '../../../lib/rate-limit/scripts.js'
import type { PolicyDefinition } from '../../../lib/rate-limit/store.js'
import { stopSlotsRefreshOnClose } from '../../../lib/redis/index.js'

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

t.test('one server: the requests of one turn in one call, decided in arrival order as if each were alone', async (t) => {
  const server = await useRedis(t)
  const client = await connectClient(t, server)
  const store = await openStore(t, { redis: client })
  const bound = store.policies(list)
  await client.script('LOAD', POLICIES_MANY_LUA)
  await client.hset('rl:{r#ip|ip:hash}:f', 'a', '1') // a wrong type: INCRBY and GET fail on it
  await client.config('RESETSTAT')
  // Issued in one turn: ip:1 shared by three requests (max 2), user:b (max 3) charged 2 then 2.
  const turn = await Promise.all([
    bound.consume(['ip:1', 'user:a'], [1, 1]),
    bound.consume(['ip:1', 'user:b'], [1, 2]),
    bound.consume(['ip:1', 'user:c'], [1, 1]),
    bound.consume(['ip:2', 'user:b'], [1, 2]),
    bound.consume(['ip:hash', 'user:d'], [1, 1]),
    bound.consume(['ip:3', 'user:e'], [1, 1])
  ])
  t.same(turn.map((d) => d.allowed), [true, true, false, false, true, true], 'each decided after the ones before it (the fifth by the in-process fallback)')
  t.same([turn[2]!.refusedBy, turn[3]!.refusedBy], [0, 1], 'the third request on ip:1 refused by the ip policy, the second 2-unit charge of user:b by the user policy')
  t.equal(await client.get('rl:{r#user|user:c}:g'), null, 'a refused request charged no policy')
  t.equal(await client.get('rl:{r#ip|ip:2}:f'), null, 'nor its other one')
  t.same(turn[4]!.decisions.map((d) => d.source), ['fallback', 'fallback'], 'the request on a broken counter alone goes to the Redis-down mode')
  t.same(turn[5]!.decisions.map((d) => [d.source, d.remaining]), [['redis', 1], ['redis', 2]], 'the request after it is decided in Redis')
  const info = await client.info('commandstats')
  t.equal(/cmdstat_evalsha:calls=(\d+)/.exec(info)?.[1], '1', 'one script call for the turn')
})

t.test('Cluster: keys in different slots, no cross-slot error, a refused request refunded everywhere', async (t) => {
  const cluster = await useCluster(t)
  const client = stopSlotsRefreshOnClose(new Cluster(cluster.startupNodes, { redisOptions: { commandTimeout: 2_000 } })) // lib/redis/cluster-close.ts
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
