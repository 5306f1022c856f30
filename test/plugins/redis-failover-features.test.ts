// REDIS_FAILOVER_WAIT for locks, pub/sub, streams and presence (issue 19): their commands used to be
// bounded by REDIS_COMMAND_TIMEOUT alone, so a failover shorter than the budget still failed them.
// Now a command issued while the connection is being re-established waits for it like any other
// (up to the budget from the loss), and an outage longer than the budget fails them with their own
// codes. Real redis-server, SIGKILLed and restarted.
import t from 'tap'
import { Type } from 'typebox'
import { useRedis, sleep, waitFor } from '../helpers/index.js'
import { buildTestApp } from '../helper.js'

async function settle (p: Promise<unknown>): Promise<{ ok: boolean, code?: string }> {
  try {
    await p
    return { ok: true }
  } catch (err) {
    return { ok: false, code: (err as { code?: string }).code }
  }
}

t.test('a restart inside the budget: lock, publish, stream add and presence issued in the gap succeed', async (t) => {
  const redis = await useRedis(t)
  // A command timeout far below the gap: before the rule these commands failed at 200 ms.
  const { app } = await buildTestApp(t, { REDIS_URL: `redis://127.0.0.1:${redis.port}`, REDIS_FAILOVER_WAIT: '10s', REDIS_COMMAND_TIMEOUT: '200ms', REDIS_RETRY_MAX_DELAY: '100ms' })
  const events = app.pubsub.stream('failover-events', Type.Object({ n: Type.Number() }))
  await redis.kill()
  await waitFor(() => app.redis.status !== 'ready', { timeoutMs: 5_000, what: 'the client notices the SIGKILL' })
  const pending = {
    lock: settle(app.locks.tryAcquire('job', { ttl: '5s' })),
    publish: settle(app.pubsub.publish('news', { hello: 'world' })),
    stream: settle(events.add({ n: 1 })),
    presence: settle(app.presence.join('room', 'ada'))
  }
  await sleep(600) // three command timeouts
  await redis.restart()
  for (const [feature, outcome] of Object.entries(pending)) t.same(await outcome, { ok: true }, `${feature}: issued during the gap, done once Redis is back`)
  t.equal(await app.presence.count('room'), 1)
})

t.test('an outage longer than the budget: each feature fails with its own code, not a driver error', async (t) => {
  const redis = await useRedis(t)
  const { app } = await buildTestApp(t, { REDIS_URL: `redis://127.0.0.1:${redis.port}`, REDIS_FAILOVER_WAIT: '500ms', REDIS_COMMAND_TIMEOUT: '200ms', REDIS_RETRY_MAX_DELAY: '100ms' })
  const events = app.pubsub.stream('failover-events', Type.Object({ n: Type.Number() }))
  await redis.kill()
  await waitFor(() => app.redis.status !== 'ready', { timeoutMs: 5_000, what: 'the client notices the SIGKILL' })
  const outcomes = await Promise.all([
    settle(app.locks.tryAcquire('job', { ttl: '5s' })),
    settle(app.pubsub.publish('news', { hello: 'world' })),
    settle(events.add({ n: 1 })),
    settle(app.presence.join('room', 'ada'))
  ])
  t.same(outcomes, [
    { ok: false, code: 'FRS_LOCK_UNAVAILABLE' },
    { ok: false, code: 'FRS_PUBSUB_UNAVAILABLE' },
    { ok: false, code: 'FRS_STREAM_UNAVAILABLE' },
    { ok: false, code: 'FRS_PRESENCE_UNAVAILABLE' }
  ])
  t.equal(app.redisConnections.failoverWaitLeft(), 0, 'the budget is spent: later commands fail at once')
})
