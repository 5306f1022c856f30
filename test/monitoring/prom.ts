// Test utilities for the monitoring tests: read samples out of Prometheus text, run promtool, and run a
// real Prometheus on loopback (always killed by the caller's teardown).
import { spawn, spawnSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { releaseDir, trackChild } from '../helpers/cleanup.js'
import { getFreePort, waitFor } from '../helpers/index.js'

export const PROMTOOL = '/usr/bin/promtool'
export const PROMETHEUS = '/usr/bin/prometheus'

/** The value of the sample `name{labels}` (labels matched as a subset); undefined when absent. */
export function sample (text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let total: number | undefined
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === '') continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (match === null || match[1] !== name) continue
    const found = Object.fromEntries([...(match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]))
    if (Object.entries(labels).every(([key, value]) => found[key] === value)) total = (total ?? 0) + Number(match[3])
  }
  return total
}

/** Names of the metric families declared in the text (# TYPE lines). */
export function families (text: string): Set<string> {
  return new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1] ?? ''))
}

export interface ToolResult { status: number | null, output: string }

export function promtool (args: string[], input?: string): ToolResult {
  const result = spawnSync(PROMTOOL, args, { input, encoding: 'utf8', timeout: 20_000 })
  return { status: result.status, output: `${result.stdout ?? ''}${result.stderr ?? ''}` }
}

export interface RunningPrometheus {
  url: string
  /** Instant query through the HTTP API; the `data.result` array. */
  query: (expr: string) => Promise<Array<{ metric: Record<string, string>, value: [number, string] }>>
  stop: () => Promise<void>
  output: () => string
}

/** Starts Prometheus on a free loopback port with temp storage, scraping `targets` every second. */
export async function startPrometheus (scrape: { targets: string[], bearerToken?: string }, rulesFile?: string): Promise<RunningPrometheus> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'frs-prometheus-'))
  const port = await getFreePort()
  const config = [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 900ms',
    '  evaluation_interval: 1s',
    ...(rulesFile === undefined ? [] : ['rule_files:', `  - ${JSON.stringify(rulesFile)}`]),
    'scrape_configs:',
    '  - job_name: app',
    ...(scrape.bearerToken === undefined ? [] : ['    authorization:', `      credentials: ${JSON.stringify(scrape.bearerToken)}`]),
    '    static_configs:',
    `      - targets: ${JSON.stringify(scrape.targets)}`
  ].join('\n')
  const configFile = path.join(dir, 'prometheus.yml')
  await writeFile(configFile, config + '\n')
  let output = ''
  const child = spawn(PROMETHEUS, [
    `--config.file=${configFile}`,
    `--storage.tsdb.path=${path.join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn'
  ], { stdio: ['ignore', 'pipe', 'pipe'] })
  // Killed by the helpers' exit hook and watchdog too, should this test process die first.
  trackChild(child, dir)
  child.stdout.on('data', (chunk) => { output += String(chunk) })
  child.stderr.on('data', (chunk) => { output += String(chunk) })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exited
    }
    await rm(dir, { recursive: true, force: true })
    releaseDir(dir)
  }
  const url = `http://127.0.0.1:${port}`
  try {
    await waitFor(async () => (await fetch(`${url}/-/ready`).catch(() => undefined))?.status === 200, { timeoutMs: 15_000, what: 'Prometheus ready' })
  } catch (err) {
    await stop()
    throw new Error(`${(err as Error).message}\n${output}`)
  }
  return {
    url,
    output: () => output,
    stop,
    query: async (expr) => {
      const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(expr)}`)
      const body = await res.json() as { status: string, data: { result: Array<{ metric: Record<string, string>, value: [number, string] }> } }
      if (body.status !== 'success') throw new Error(`query ${expr} failed: ${JSON.stringify(body)}`)
      return body.data.result
    }
  }
}

export function hasBinary (file: string): boolean {
  return spawnSync(file, ['--version'], { encoding: 'utf8' }).status === 0
}
