// Graceful shutdown in an app built from the README (its Shutdown block, run as is in a child process
// with only the package import pointed at the source): under keep-alive load on loopback, SIGTERM gives
// 0 failed requests and 0 connection errors, /health/ready answers 503 from the first answer after the
// signal until the port closes, requests keep being served during the drain (each closing its
// connection), and the process exits with code 0 within the drain + 10 s.
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { Agent, request } from 'undici'
import { TS_NODE_ARGS, useRedis } from '../helpers/index.js'
import { extractTsBlocks } from '../readme-blocks.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const DRAIN_MS = 3_000
const WORKERS = 8

/** The README's shutdown example: the block that wires closeGracefully and listens. */
function readmeApp (): string {
  const block = extractTsBlocks(readFileSync(path.join(ROOT, 'README.md'), 'utf8'))
    .find((b) => b.module.includes('closeGracefully()') && b.module.includes("app.get('/'"))
  if (block === undefined) throw new Error('README.md has no shutdown example')
  return block.module.replaceAll("'fastify-redis-suite'", `'${path.join(ROOT, 'index.ts')}'`)
}

t.test('SIGTERM under load: readiness 503 through the drain, no failed request, exit within drain + 10 s', async (t) => {
  const redis = await useRedis(t)
  // Next to the sources, so its bare imports (fastify, close-with-grace) resolve from node_modules.
  const file = path.join(ROOT, 'test', 'e2e', `.readme-shutdown-${process.pid}.mts`)
  writeFileSync(file, readmeApp())
  t.teardown(() => rmSync(file, { force: true }))
  const cwd = mkdtempSync(path.join(tmpdir(), 'frs-shutdown-')) // no .env to pick up
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }))

  const child = spawn(process.execPath, [...TS_NODE_ARGS, file], {
    cwd,
    env: {
      PATH: process.env.PATH ?? '',
      NODE_PATH: path.join(ROOT, 'node_modules'),
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      PORT: '0',
      REDIS_URL: redis.url,
      SESSION_SECRET: 's'.repeat(40),
      SHUTDOWN_DRAIN_DELAY: `${DRAIN_MS}ms`,
      RATE_LIMIT_MAX: '1000000'
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout.on('data', (chunk) => { output += chunk })
  child.stderr.on('data', (chunk) => { output += chunk })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })

  let port: number | undefined
  for (let i = 0; i < 600 && port === undefined; i++) {
    const match = /listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(output)
    if (match !== null) port = Number(match[1])
    else if (child.exitCode !== null) break
    else await sleep(50)
  }
  if (port === undefined) throw new Error(`the README app did not start:\n${output}`)
  const base = `http://127.0.0.1:${port}`

  // The app's traffic: keep-alive connections, each worker one request at a time (bounded load).
  const agent = new Agent({ connections: WORKERS, pipelining: 1, keepAliveTimeout: 30_000 })
  t.teardown(() => agent.close())
  const failures: string[] = []
  let served = 0
  let servedInDrain = 0
  let closedInDrain = 0
  let stopLoad = false
  let firstNotReady: number | undefined
  const worker = async (): Promise<void> => {
    for (;;) {
      if (stopLoad) return
      const sentAfterNotReady = firstNotReady !== undefined
      try {
        const res = await request(`${base}/`, { dispatcher: agent })
        const body = await res.body.text()
        if (res.statusCode !== 200) failures.push(`status ${res.statusCode}: ${body}`)
        else {
          served++
          if (sentAfterNotReady) {
            servedInDrain++
            if (res.headers.connection === 'close') closedInDrain++
          }
        }
      } catch (err) {
        failures.push(`${(err as Error & { code?: string }).code ?? ''} ${(err as Error).message}`)
      }
      await sleep(5)
    }
  }
  const workers = Array.from({ length: WORKERS }, () => worker())

  // The load balancer's probe: its own connections, every 50 ms, from the signal until the port closes.
  const probes: number[] = []
  const probe = async (): Promise<void> => {
    const prober = new Agent({ connections: 1, pipelining: 1 })
    try {
      while (Date.now() < signalledAt + DRAIN_MS + 10_000) {
        let status: number
        try {
          const res = await request(`${base}/health/ready`, { dispatcher: prober })
          await res.body.dump()
          status = res.statusCode
        } catch {
          return // the port closed: the drain is over
        }
        probes.push(status)
        if (status === 503 && firstNotReady === undefined) firstNotReady = Date.now()
        await sleep(50)
      }
    } finally {
      await prober.close()
    }
  }

  const waitFor = async (done: () => boolean): Promise<void> => { while (!done()) await sleep(20) }
  await waitFor(() => served >= 200)
  const signalledAt = Date.now()
  child.kill('SIGTERM')
  const probing = probe()
  // A load balancer stops routing some time after readiness fails: here half the drain.
  // Bounded: an app that never turns unready (or never closes) fails the assertions below, not the timeout.
  const giveUpAt = signalledAt + DRAIN_MS + 10_000
  await waitFor(() => (firstNotReady !== undefined && Date.now() - firstNotReady >= DRAIN_MS / 2) || Date.now() >= giveUpAt)
  stopLoad = true
  await Promise.all(workers)
  await probing
  const code = await Promise.race([exited, sleep(Math.max(0, giveUpAt - Date.now())).then(() => 'still running')])
  const exitMs = Date.now() - signalledAt

  t.same(failures, [], 'no failed request and no connection error')
  t.ok(servedInDrain > 0, `requests were served during the drain (${servedInDrain})`)
  t.equal(closedInDrain, servedInDrain, 'every response during the drain closed its keep-alive connection')
  // Probes sent before the child handled the signal may still answer 200; none after the first 503.
  const drainProbes = probes.slice(probes.indexOf(503))
  t.ok(probes.includes(503) && drainProbes.every((s) => s === 503), `/health/ready answered 503 from the first 503 until the port closed (${probes.join(',')})`)
  t.ok(drainProbes.length >= (DRAIN_MS / 2) / 100, 'the probe saw the drain, not only its end')
  t.equal(code, 0, 'clean exit')
  t.ok(exitMs < DRAIN_MS + 10_000, `exited ${exitMs} ms after SIGTERM (drain ${DRAIN_MS} ms + 10 s allowed)`)
  t.match(output, /shutting down: \/health\/ready answers 503/)
})

t.test('app.close() drains too (preClose): readiness 503 at once, requests served with Connection: close', async (t) => {
  const redis = await useRedis(t)
  const { default: Fastify } = await import('fastify')
  const { default: redisSuite } = await import('../../index.js')
  // return503OnClosing: false, else Fastify itself answers 503 to every request once close() began.
  const app = Fastify({ return503OnClosing: false })
  await app.register(redisSuite, { env: { NODE_ENV: 'test', REDIS_URL: redis.url, SESSION_SECRET: 's'.repeat(40), SHUTDOWN_DRAIN_DELAY: '1s' }, processEnv: false })
  app.get('/', async () => ({ ok: true }))
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  const closed = app.close()
  t.teardown(() => closed)
  const ready = await request(`${address}/health/ready`)
  await ready.body.dump()
  t.equal(ready.statusCode, 503, 'not ready as soon as close() began')
  const served = await request(`${address}/`)
  t.same(await served.body.json(), { ok: true }, 'still served during the drain')
  t.equal(served.headers.connection, 'close', 'and its connection closed after the response')
  await closed
})
