// Presence against a real Redis: join/refresh/list/count/leave, expiry by score (pruned with
// ZREMRANGEBYSCORE, the key expiring with its last member), bounded errors, and the memory store.
import t, { type Test } from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { useRedis } from '../../helpers/index.js'
import { MemoryPresenceStore, Presence, RedisPresenceStore, type PresenceStore } from '../../../lib/realtime/presence.js'

const TIMEOUT_MS = 1_000

async function redisStore (t: Test): Promise<{ store: PresenceStore, cli: (...args: string[]) => Promise<string>, kill: () => Promise<void> }> {
  const server = await useRedis(t)
  const client = new Redis({ port: server.port, keyPrefix: 'app:', enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: TIMEOUT_MS, lazyConnect: true, retryStrategy: () => 100 })
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  await client.connect()
  return { store: new RedisPresenceStore(client, TIMEOUT_MS), cli: (...args) => server.cli(...args), kill: () => server.kill() }
}

async function behaves (t: Test, store: PresenceStore): Promise<void> {
  const presence = new Presence({ store })
  const joined = await presence.join('lobby', 'ada', { ttl: '1m' })
  t.match(joined, { joined: true, count: 1 })
  t.ok(Math.abs(joined.expiresAt - (Date.now() + 60_000)) < 2_000, 'expiresAt is an epoch ms')
  t.match(await presence.join('lobby', 'bob', { ttl: '5m' }), { joined: true, count: 2 })
  t.match(await presence.join('lobby', 'bob'), { joined: false, count: 2 }, 'joining again renews')
  t.same((await presence.list('lobby')).map((m) => m.userId), ['ada', 'bob'], 'soonest to expire first')
  t.equal(await presence.count('lobby'), 2)

  t.ok(await presence.refresh('lobby', 'ada', { ttl: 300 }))
  await sleep(400)
  t.same((await presence.list('lobby')).map((m) => m.userId), ['bob'], 'ada expired')
  t.equal(await presence.count('lobby'), 1)
  t.notOk(await presence.refresh('lobby', 'ada'), 'refresh does not bring back an expired member')
  t.equal(await presence.count('lobby'), 1)

  t.ok(await presence.leave('lobby', 'bob'))
  t.notOk(await presence.leave('lobby', 'bob'))
  t.equal(await presence.count('lobby'), 0)
  t.same(await presence.list('empty-room'), [])
  await t.rejects(presence.join('', 'x'), { code: 'FRS_PRESENCE_NAME_INVALID' })
  t.match(presence.stats(), { joins: 2, leaves: 1, failures: 0, sizes: {} })
  await presence.join('kitchen', 'cat')
  t.same(presence.stats().sizes, { kitchen: 1 })
}

t.test('redis: join, refresh, list, count, leave and expiry', async (t) => {
  const { store, cli } = await redisStore(t)
  await behaves(t, store)
  t.equal(await cli('TYPE', 'app:presence:kitchen'), 'zset', 'one sorted set per room, under the app prefix')
  const pttl = Number(await cli('PTTL', 'app:presence:kitchen'))
  t.ok(pttl > 4 * 60_000 && pttl <= 5 * 60_000, `the key expires with its last member (pttl ${pttl})`)
  t.equal(await cli('EXISTS', 'app:presence:lobby'), '0', 'an empty room leaves no key behind')
})

t.test('redis: members expire without any list call (the key\'s own expiry), and scores are Redis time', async (t) => {
  const { store, cli } = await redisStore(t)
  const presence = new Presence({ store })
  await presence.join('r', 'u', { ttl: 1_000 })
  const [score] = (await cli('ZRANGE', 'app:presence:r', '0', '-1', 'WITHSCORES')).split('\n').slice(1)
  const [seconds] = (await cli('TIME')).split('\n')
  t.ok(Math.abs(Number(score) - Number(seconds) * 1000) < 2_000, 'score is an expiry on the Redis clock')
  await sleep(1_200)
  t.equal(await cli('EXISTS', 'app:presence:r'), '0')
})

t.test('redis down: FRS_PRESENCE_UNAVAILABLE at once', async (t) => {
  const { store, kill } = await redisStore(t)
  const presence = new Presence({ store })
  await kill()
  const started = Date.now()
  await t.rejects(presence.join('r', 'u'), { code: 'FRS_PRESENCE_UNAVAILABLE' })
  await t.rejects(presence.count('r'), { code: 'FRS_PRESENCE_UNAVAILABLE' })
  t.ok(Date.now() - started < TIMEOUT_MS)
  t.equal(presence.stats().failures, 2)
})

t.test('memory store: same behaviour', async (t) => {
  await behaves(t, new MemoryPresenceStore())
})
