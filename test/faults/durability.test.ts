// Durability (issue 9): with AOF everysec, SIGKILL under session-write load (sign-ins) loses no
// session acknowledged more than 1 s before the kill. Each acknowledged sign-in's cookie is replayed
// after the restart and must still name its user.
import t from 'tap'
import { request } from 'undici'
import { useRedis, sleep } from '../helpers/index.js'
import { cookiePair, startFaultApp, waitUntil } from '../helpers/fault-app.js'
import { describeSummary, runLoad, summarize } from '../helpers/load.js'

t.test('AOF everysec: SIGKILL under sign-in load', async (t) => {
  const redis = await useRedis(t, { appendonly: 'everysec' })
  const { app, baseUrl } = await startFaultApp(t, { REDIS_URL: redis.url, SESSION_SECRET: 'fault-suite-session-secret-0123456789abcdef' })
  let killAt = 0
  const fault = (async () => {
    await sleep(5_000)
    killAt = Date.now()
    await redis.kill()
  })()
  const run = await runLoad({
    baseUrl,
    rate: 50,
    durationMs: 6_000,
    next: (i) => ({ path: '/demo/login', method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId: `d${i}` }), tag: 'login' })
  })
  await fault
  await redis.restart()
  await waitUntil(() => app.redisState.status === 'connected', 10_000, 'reconnected')
  const acknowledged = run.results.filter((r) => r.status === 200)
  const old = acknowledged.filter((r) => run.t0 + (r.endedAt ?? 0) < killAt - 1_000)
  let lostOld = 0
  let lostRecent = 0
  for (const r of acknowledged) {
    const cookie = cookiePair(r.headers['set-cookie']) ?? ''
    const res = await request(`${baseUrl}/demo/me`, { headers: { cookie } })
    const body = await res.body.json() as { userId?: string }
    if (body.userId !== `d${r.i}`) {
      if (old.includes(r)) lostOld++
      else lostRecent++
    }
  }
  t.comment(describeSummary('sign-ins', summarize(run.results)))
  t.comment(`acknowledged ${acknowledged.length} (${old.length} more than 1 s before the kill); lost: ${lostOld} of those, ${lostRecent} of the last second`)
  t.ok(old.length > 100, 'a meaningful number of sessions was written before the window')
  t.equal(lostOld, 0, 'no session acknowledged more than 1 s before the kill was lost')
})
