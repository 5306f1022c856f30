// Sign-in on a black-holed link (issue 16, RELIABILITY.md finding 1): one request has one time budget
// for all its store calls, so a sign-in answers 503 within one REDIS_COMMAND_TIMEOUT (+ 100 ms and the
// machine's noise), with or without a session cookie, where it used to take two timeouts.
import t from 'tap'
import { useRedis, useFaultProxy } from '../helpers/index.js'
import { DRIVER_TEXT, cookiePair, startFaultApp } from '../helpers/fault-app.js'
import { latencyBound, runLoad, summarize, warmUp, type LoadRequest } from '../helpers/load.js'

const COMMAND_TIMEOUT = 1_000
const login = (cookie?: string): LoadRequest => ({
  path: '/demo/login',
  method: 'POST',
  headers: { 'content-type': 'application/json', ...(cookie === undefined ? {} : { cookie }) },
  body: JSON.stringify({ userId: 'ada' }),
  tag: cookie === undefined ? 'fresh' : 'signed-in'
})

t.test('sign-in on a black-holed link answers within one command timeout', async (t) => {
  const redis = await useRedis(t)
  const proxy = await useFaultProxy(t, { target: redis })
  const { baseUrl } = await startFaultApp(t, {
    REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
    REDIS_COMMAND_TIMEOUT: `${COMMAND_TIMEOUT}ms`,
    SESSION_SECRET: 'fault-suite-session-secret-0123456789abcdef',
    CACHE_MEMORY_MAX_ENTRIES: '0'
  })
  await warmUp(baseUrl, ['/plain'])
  const first = await fetch(`${baseUrl}/demo/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"userId":"ada"}' })
  const cookie = cookiePair(first.headers.getSetCookie())
  if (first.status !== 200 || cookie === undefined) throw new Error(`sign-in before the fault answered ${first.status}`)

  proxy.setMode('blackhole')
  const run = await runLoad({
    baseUrl,
    rate: 10,
    durationMs: 2_000,
    next: (i) => i % 3 === 0 ? { path: '/plain', tag: 'plain' } : login(i % 3 === 1 ? undefined : cookie)
  })
  proxy.setMode('pass')

  const signIns = run.results.filter((r) => r.tag !== 'plain')
  const bound = latencyBound(COMMAND_TIMEOUT + 100, run, run.results.filter((r) => r.tag === 'plain'))
  const slowest = Math.max(...signIns.map((r) => r.latencyMs ?? Infinity))
  for (const tag of ['fresh', 'signed-in', 'plain']) t.comment(`${tag}: ${run.results.filter((r) => r.tag === tag).map((r) => r.latencyMs).join(', ')}`)
  t.comment(`sign-ins ${signIns.length}, slowest ${slowest} ms, bound ${bound} ms; ${JSON.stringify(summarize(signIns))}`)
  t.equal(summarize(run.results).unfinished, 0, 'nothing left unfinished')
  t.ok(signIns.every((r) => r.status === 503), 'every sign-in during the black-hole is a 503')
  t.ok(signIns.some((r) => r.tag === 'fresh') && signIns.some((r) => r.tag === 'signed-in'), 'both kinds measured')
  t.notOk(signIns.some((r) => DRIVER_TEXT.test(r.body)), 'no driver text')
  t.ok(slowest <= bound, `slowest sign-in ${slowest} ms ≤ ${bound} ms (one command timeout + 100 ms + noise)`)
})
