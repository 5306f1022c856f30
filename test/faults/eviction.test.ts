// Eviction (issue 9): with the recommended two instances (REDIS_URL noeviction for sessions,
// REDIS_CACHE_URL allkeys-lru for the cache), filling the cache instance evicts 0 sessions; with one
// allkeys-lru instance the start-up warning fires.
import t from 'tap'
import { request } from 'undici'
import { useRedis, parseInfo } from '../helpers/index.js'
import { cookiePair, startFaultApp } from '../helpers/fault-app.js'
import { timeUntil } from '../helper.js'

const SECRET = 'fault-suite-session-secret-0123456789abcdef'

t.test('two instances: filling the cache evicts no session', async (t) => {
  const main = await useRedis(t, { maxmemoryPolicy: 'noeviction' })
  const cacheRedis = await useRedis(t, { maxmemory: '4mb', maxmemoryPolicy: 'allkeys-lru' })
  const { app, baseUrl, rawLogs } = await startFaultApp(t, { REDIS_URL: main.url, REDIS_CACHE_URL: cacheRedis.url, SESSION_SECRET: SECRET, CACHE_MEMORY_MAX_ENTRIES: '0' })
  const cookies: Array<{ cookie: string, userId: string }> = []
  for (let i = 0; i < 100; i++) {
    const res = await request(`${baseUrl}/demo/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId: `e${i}` }) })
    await res.body.dump()
    cookies.push({ cookie: cookiePair(res.headers['set-cookie']) ?? '', userId: `e${i}` })
  }
  // 3,000 entries of 4 KB: three times what the cache instance may hold.
  const value = 'x'.repeat(4_096)
  for (let i = 0; i < 3_000; i++) await app.cache.set(`fill:${i}`, { i, value }, { ttl: '10m' })
  const evicted = Number(parseInfo(await cacheRedis.cli('INFO', 'stats')).get('evicted_keys'))
  let alive = 0
  for (const { cookie, userId } of cookies) {
    const res = await request(`${baseUrl}/demo/me`, { headers: { cookie } })
    const body = await res.body.json() as { userId?: string }
    if (body.userId === userId) alive++
  }
  t.comment(`cache instance evicted ${evicted} keys; sessions alive ${alive}/${cookies.length}`)
  t.ok(evicted > 0, 'the cache instance did evict')
  t.equal(alive, cookies.length, '0 sessions evicted')
  t.notMatch(rawLogs(), /maxmemory-policy is allkeys-lru/, 'no eviction warning for the main instance')
})

t.test('one allkeys-lru instance: the start-up warning fires', async (t) => {
  const redis = await useRedis(t, { maxmemory: '16mb', maxmemoryPolicy: 'allkeys-lru' })
  const { rawLogs } = await startFaultApp(t, { REDIS_URL: redis.url })
  const ms = await timeUntil(() => /maxmemory-policy is allkeys-lru/.test(rawLogs()), 5_000, 'eviction warning')
  t.comment(`warning logged ${ms} ms after listen`)
  t.pass('warned: maxmemory-policy is allkeys-lru')
})
