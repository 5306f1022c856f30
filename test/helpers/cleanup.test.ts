import { execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { trackedPids } from './cleanup.js'
import type { TeardownScope } from './fixtures.js'
import { startRedis } from './redis-server.js'
import { waitFor } from './wait.js'

/** Pids whose command line contains `pattern`, as `pgrep -f` sees them. */
function pgrep (pattern: string): Promise<number[]> {
  return new Promise((resolve, reject) => {
    execFile('pgrep', ['-f', '--', pattern], (err, stdout) => {
      // pgrep exits with 1 when nothing matches
      if (err !== null && err.code !== 1) reject(err)
      else resolve(stdout.split('\n').filter((line) => line !== '').map(Number))
    })
  })
}

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

t.test('the registry tracks a server until stop() ends it', async (t) => {
  const server = await startRedis()
  t.teardown(() => server.stop())
  t.ok(trackedPids().includes(server.pid))
  t.same(await pgrep(server.dir), [server.pid], 'pgrep finds it by its dir')
  await server.stop()
  t.same(await pgrep(server.dir), [])
  t.notOk(trackedPids().includes(server.pid))
})

interface ChildReport {
  pid: number
  dir: string
}

/** Starts cleanup-child.ts under the same loaders as this test, returns its server's pid and dir. */
async function runChild (t: TeardownScope, mode: 'throw' | 'hang', env: NodeJS.ProcessEnv = {}): Promise<{ report: ChildReport, exited: Promise<void>, kill: () => void }> {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'cleanup-child.ts')
  const child = spawn(process.execPath, [...process.execArgv, script, mode], {
    env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: false
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  t.teardown(() => { child.kill('SIGKILL') })
  let stdout = ''
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const report = await new Promise<ChildReport>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk
      const line = stdout.split('\n')[0]
      if (stdout.includes('\n') && line !== undefined) resolve(JSON.parse(line) as ChildReport)
    })
    child.once('exit', (code) => reject(new Error(`child exited (${String(code)}) before reporting: ${stderr}`)))
  })
  t.teardown(() => rm(report.dir, { recursive: true, force: true }))
  return { report, exited, kill: () => child.kill('SIGKILL') }
}

t.test('an uncaught exception in a test process still kills its servers (exit hook)', async (t) => {
  const { report, exited } = await runChild(t, 'throw', { FRS_CLEANUP_WATCHDOG: '0' })
  await exited
  await waitFor(() => !isAlive(report.pid), { what: `redis-server ${report.pid} to die with its parent`, timeoutMs: 5_000 })
  t.same(await pgrep(report.dir), [])
  await waitFor(() => !existsSync(report.dir), { what: `${report.dir} to be removed`, timeoutMs: 5_000 })
})

t.test('a SIGKILLed test process still loses its servers (watchdog)', async (t) => {
  const { report, exited, kill } = await runChild(t, 'hang')
  t.ok(isAlive(report.pid), 'the server runs while its parent lives')
  kill()
  await exited
  await waitFor(() => !isAlive(report.pid), { what: `redis-server ${report.pid} to die with its parent`, timeoutMs: 5_000 })
  t.same(await pgrep(report.dir), [])
  await waitFor(() => !existsSync(report.dir), { what: `${report.dir} to be removed`, timeoutMs: 5_000 })
})

t.test('no server is left running', async (t) => {
  t.same(trackedPids(), [])
})
