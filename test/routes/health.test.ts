import t from 'tap'
import { spawn } from 'node:child_process'
import { getFreePort, useRedis } from '../helpers/index.js'
import { buildTestApp, timeUntil } from '../helper.js'

t.test('without Redis (development): memory mode, every health route 200', async (t) => {
  const { app } = await buildTestApp(t, {})
  for (const url of ['/health/live', '/health/ready', '/health', '/health/redis']) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 200, url)
    t.equal(res.headers['cache-control'], 'no-store')
  }
  t.match((await app.inject('/health/redis')).json(), { status: 'connected', mode: 'memory' })
})

t.test('application checks join /health and /health/ready with their own timeout', async (t) => {
  const { app } = await buildTestApp(t, {})
  let queueUp = true
  app.health.addCheck({ name: 'queue', check: async () => queueUp, interval: 50, timeout: 100 })
  app.health.addCheck({ name: 'search', required: false, check: () => new Promise(() => {}), interval: 50, timeout: 50 })
  await timeUntil(() => app.health.snapshot().checks.search?.lastError !== 'not checked yet', 1_000, 'checks ran')
  let body = (await app.inject('/health')).json()
  t.equal(body.status, 'degraded', 'a non-required check that hangs degrades, bounded by its timeout')
  t.match(body.checks.search, { status: 'down', lastError: /timed out after 50ms/ })
  t.equal((await app.inject('/health/ready')).statusCode, 200)
  queueUp = false
  await timeUntil(() => app.health.snapshot().checks.queue?.status === 'down', 1_000, 'queue down')
  body = (await app.inject('/health')).json()
  t.equal(body.status, 'down')
  t.equal((await app.inject('/health')).statusCode, 503)
  t.equal((await app.inject('/health/ready')).statusCode, 503, 'a required check that is down fails readiness')
  t.throws(() => app.health.addCheck({ name: 'queue', check: async () => true }), /already registered/)
})

t.test('SIGTERM with Redis frozen: readiness 503 during the drain, exit within 10 s', async (t) => {
  const redis = await useRedis(t)
  // A port the OS just handed out: a random one collided with the other test files' Redis servers
  // (a CI run's server never answered /health/ready).
  const port = await getFreePort()
  const child = spawn(process.execPath, ['dist/server.js'], {
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', LOG_LEVEL: 'info', PORT: String(port), REDIS_URL: redis.url, SHUTDOWN_DRAIN_DELAY: '2s' }
  })
  let output = ''
  child.stdout.on('data', (chunk) => { output += chunk })
  child.stderr.on('data', (chunk) => { output += chunk })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  t.teardown(() => { child.kill('SIGKILL') })
  const ready = async () => (await fetch(`http://127.0.0.1:${port}/health/ready`).catch(() => undefined))?.status
  // Start-up time is not what this test is about: generous on a loaded machine. A failure shows what the server printed.
  await timeUntil(async () => (await ready()) === 200, 30_000, 'server ready').catch((err: Error) => {
    throw new Error(`${err.message}; the server printed:\n${output.slice(-2_000)}`)
  })

  redis.freeze()
  t.teardown(() => redis.thaw())
  const signalledAt = Date.now()
  child.kill('SIGTERM')
  await timeUntil(async () => (await ready()) === 503, 1_800, 'readiness fails during the drain')
  const live = await fetch(`http://127.0.0.1:${port}/health/live`)
  t.equal(live.status, 200, 'still serving during the drain')
  const code = await exited
  const tookMs = Date.now() - signalledAt
  t.equal(code, 0)
  t.ok(tookMs < 10_000, `exited ${tookMs}ms after SIGTERM with Redis frozen`)
  t.comment(`exit ${tookMs}ms after SIGTERM (drain 2000ms, Redis frozen)`)
  t.match(output, /shutting down: \/health\/ready answers 503/)
})
