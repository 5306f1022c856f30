// app.locks across two app instances on one Redis: 1,000 acquisitions under contention, each
// checked against a shared critical section (never two holders at once) and against the fencing
// token order (every holder sees a larger token than the holder before it).
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { useRedis } from '../helpers/index.js'
import { buildTestApp } from '../helper.js'

t.test('1,000 attempts across two instances: one holder at a time, tokens strictly increasing', async (t) => {
  const redis = await useRedis(t)
  const env = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'app:' }
  const instances = [(await buildTestApp(t, env)).app, (await buildTestApp(t, env)).app]
  const ATTEMPTS = 1_000
  const WORKERS_PER_INSTANCE = 10
  let inside = 0
  let overlaps = 0
  let lastToken = 0
  let outOfOrder = 0
  let attempts = 0
  let entered = 0
  let busy = 0

  const worker = async (app: typeof instances[number]): Promise<void> => {
    while (attempts < ATTEMPTS) {
      attempts++
      try {
        await app.locks.withLock('counter', async (lock) => {
          inside++
          entered++
          if (inside > 1) overlaps++
          if (lock.fencingToken <= lastToken) outOfOrder++
          lastToken = lock.fencingToken
          // A read-modify-write on Redis that would lose updates if two holders overlapped.
          const value = Number(await app.redis.get('shared') ?? 0)
          if (Math.random() < 0.3) await sleep(1)
          await app.redis.set('shared', String(value + 1))
          inside--
        }, { ttl: '5s', wait: '10s', retryDelay: 5 })
      } catch (err) {
        if ((err as { code?: string }).code !== 'FRS_LOCK_BUSY') throw err
        busy++
      }
    }
  }

  const started = Date.now()
  await Promise.all(instances.flatMap((app) => Array.from({ length: WORKERS_PER_INSTANCE }, () => worker(app))))
  const ms = Date.now() - started
  t.equal(overlaps, 0, 'never two holders at once')
  t.equal(outOfOrder, 0, 'each holder saw a larger fencing token than the last')
  t.equal(entered + busy, attempts)
  t.equal(busy, 0, 'every attempt got the lock within its wait')
  t.equal(await redis.cli('GET', 'app:shared'), String(entered), 'no lost update in the read-modify-write')
  t.equal(await redis.cli('GET', 'app:lock:{counter}:fence'), String(entered), 'one token per acquisition')
  const stats = instances.map((app) => app.locks.stats())
  t.equal(stats.reduce((sum, s) => sum + s.acquisitions, 0), entered)
  t.ok(stats.every((s) => s.contention > 0 && s.held === 0), 'both instances contended; nothing left held')
  t.comment(`${attempts} attempts (${entered} acquisitions) across 2 instances x ${WORKERS_PER_INSTANCE} workers in ${ms} ms; contention ${stats.map((s) => s.contention).join(' + ')}`)
})

t.test('a stale owner cannot release a newer owner\'s lock (across instances)', async (t) => {
  const redis = await useRedis(t)
  const a = (await buildTestApp(t, { REDIS_URL: redis.url })).app
  const b = (await buildTestApp(t, { REDIS_URL: redis.url })).app
  const stale = await a.locks.acquire('report', { ttl: 100 })
  await sleep(150)
  const fresh = await b.locks.acquire('report', { ttl: '10s' })
  t.ok(fresh.fencingToken > stale.fencingToken)
  t.notOk(await stale.release(), 'release by the expired owner does nothing')
  t.notOk(await stale.extend('10s'), 'nor does extend')
  t.equal(await redis.cli('GET', 'lock:{report}'), fresh.owner, 'the newer owner still holds it')
  t.ok(await fresh.release())
})
