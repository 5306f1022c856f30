import t from 'tap'
import { spawn } from 'node:child_process'
import { buildServer } from '../server.js'

t.test('the demo server serves /health/live with no Redis configured', async (t) => {
  const app = await buildServer({ env: { NODE_ENV: 'test' }, logger: false })
  t.teardown(() => app.close())
  const res = await app.inject('/health/live')
  t.equal(res.statusCode, 200)
  t.same(res.json(), { status: 'ok' })
  t.equal(app.config.NODE_ENV, 'test')
})

/** Runs the built server (dist/, built by `npm test` first) and collects its output. */
function runServer (env: Record<string, string>): Promise<{ code: number | null, output: string, ms: number }> {
  const started = Date.now()
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['dist/server.js'], { env: { PATH: process.env.PATH ?? '', ...env } })
    let output = ''
    child.stdout.on('data', (chunk) => { output += chunk })
    child.stderr.on('data', (chunk) => { output += chunk })
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, output, ms: Date.now() - started }) })
  })
}

t.test('a bad variable stops start-up with one line naming it', async (t) => {
  const { code, output } = await runServer({ REDIS_PORT: 'abc' })
  t.not(code, 0)
  const lines = output.trim().split('\n')
  t.equal(lines.length, 1, 'exactly one line')
  t.match(lines[0], /REDIS_PORT must be an integer/)
})

t.test('production with a short secret exits naming SESSION_SECRET and never prints the password', async (t) => {
  const { code, output } = await runServer({ NODE_ENV: 'production', SESSION_SECRET: 'short', REDIS_URL: 'redis://u:hunter2@127.0.0.1:6399' })
  t.not(code, 0)
  t.match(output, /SESSION_SECRET/)
  t.notMatch(output, /hunter2/)
})
