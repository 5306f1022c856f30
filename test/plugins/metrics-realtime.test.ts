// Pub/sub, presence and lock series: read from each feature's stats() at scrape time.
import t from 'tap'
import Type from 'typebox'
import { useRedis } from '../helpers/index.js'
import { buildTestApp, timeUntil } from '../helper.js'
import { promtool, sample } from '../monitoring/prom.js'

t.test('messages, presence and lock contention move the metrics and pass promtool', async (t) => {
  const redis = await useRedis(t)
  const { app } = await buildTestApp(t, { REDIS_URL: redis.url })
  const chat = app.pubsub.channel('chat', Type.Object({ text: Type.String() }))
  let received = 0
  await chat.subscribe(() => { received++ })
  await chat.publish({ text: 'hi' })
  await timeUntil(() => received === 1, 2_000, 'message received')
  await app.presence.join('lobby', 'ada')
  await app.presence.join('lobby', 'grace')
  await app.presence.count('lobby')
  const lock = await app.locks.acquire('report', { ttl: '5s' })
  t.equal(await app.locks.tryAcquire('report'), undefined, 'a second acquire is contention')

  const text = (await app.inject('/metrics')).body
  t.equal(promtool(['check', 'metrics'], text).status, 0, 'promtool check metrics')
  t.equal(sample(text, 'pubsub_events_total', { event: 'messages_published' }), 1)
  t.equal(sample(text, 'pubsub_events_total', { event: 'messages_received' }), 1)
  t.equal(sample(text, 'pubsub_subscriptions'), 1)
  t.equal(sample(text, 'presence_members'), 2)
  t.equal(sample(text, 'lock_events_total', { event: 'acquisitions' }), 1)
  t.ok((sample(text, 'lock_events_total', { event: 'busy' }) ?? 0) + (sample(text, 'lock_events_total', { event: 'contention' }) ?? 0) >= 1, 'contention counted')
  t.equal(sample(text, 'locks_held'), 1)
  await lock.release()
})

t.test('a dead-lettered stream entry moves the series users alert on', async (t) => {
  const redis = await useRedis(t)
  const { app } = await buildTestApp(t, { REDIS_URL: redis.url })
  const orders = app.pubsub.stream('orders', Type.Object({ id: Type.Number() }))
  const consumer = await orders.consume('billing', 'b1', () => { throw new Error('card declined') }, { minIdle: 50, maxDeliveries: 1 })
  const before = (await app.inject('/metrics')).body
  t.equal(sample(before, 'pubsub_stream_dead_letters_total', { stream: 'orders', group: 'billing' }), 0, 'the series exists at 0 before the first dead letter')
  await orders.add({ id: 1 })
  await timeUntil(() => app.pubsub.stats().streamMessagesDeadLettered === 1, 5_000, 'order dead-lettered')
  await consumer.stop()
  const text = (await app.inject('/metrics')).body
  t.equal(promtool(['check', 'metrics'], text).status, 0, 'promtool check metrics')
  t.equal(sample(text, 'pubsub_stream_dead_letters_total', { stream: 'orders', group: 'billing' }), 1)
  t.equal(sample(text, 'pubsub_events_total', { event: 'stream_messages_dead_lettered' }), 1)
})
