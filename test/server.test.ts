import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync, statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
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

// Issue 28 item 6: `npm start` on a built checkout starts the server, it does not compile the project again.
t.test('npm start compiles only what changed: on a built checkout its prestart is an up-to-date check', async (t) => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> }
  t.equal(pkg.scripts.prestart, 'tsc -b tsconfig.json', 'prestart is tsc build mode, which skips an up-to-date project')
  const tsc = fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url))
  // Bring dist up to date (nothing to do after `npm run build`), then ask build mode what npm start would do.
  t.equal(spawnSync(process.execPath, [tsc, '-b', 'tsconfig.json'], { encoding: 'utf8' }).status, 0)
  const before = statSync('dist/server.js').mtimeMs
  const verdict = spawnSync(process.execPath, [tsc, '-b', '--verbose', 'tsconfig.json'], { encoding: 'utf8' })
  t.match(verdict.stdout, /Project 'tsconfig\.json' is up to date/, verdict.stdout)
  t.equal(statSync('dist/server.js').mtimeMs, before, 'nothing was written')
})
