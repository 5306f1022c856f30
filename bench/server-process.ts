// Bench servers in processes of their own (bench/server-child.ts), one app per process, as a deployment
// runs them: the load generator (another process) drives one at a time, and the server's CPU time over
// the requests it answered gives what a deployment pays per request, which a closed loop in one process
// hides behind batching. BENCH_CPU_PROF=dir starts each server with --cpu-prof into that folder.
import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import type { Contender, Sample } from './harness.js'
import { load, type HttpTarget } from './http.js'
import type { CpuReply, ServerHello } from './server-child.js'
import type { ServerSpec } from './server-apps.js'
import type { RedisServer } from './environment.js'

export interface ServerProcess {
  url: string
  /** CPU time the server process has used so far, µs. */
  cpu: () => Promise<number>
  close: () => Promise<void>
}

const STARTUP_MS = 30_000

export async function startServer (spec: ServerSpec): Promise<ServerProcess> {
  const profile = process.env['BENCH_CPU_PROF']
  const child = fork(fileURLToPath(new URL('./server-child.ts', import.meta.url)), [JSON.stringify(spec)], {
    execArgv: ['--import', 'tsx', ...(profile === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profile, '--cpu-prof-name', `${spec.app}-${Date.now()}.cpuprofile`])],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  child.on('error', () => {}) // a failed send is reported by its callback; exit by 'exit'
  let hello: ServerHello
  try {
    hello = await new Promise<ServerHello>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`bench server ${spec.app} did not start within ${STARTUP_MS} ms`)) }, STARTUP_MS)
      child.once('message', (message: ServerHello) => { clearTimeout(timer); resolve(message) })
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`bench server ${spec.app} exited (code ${String(code)}) before listening`)) })
    })
  } catch (err) {
    await stop(child)
    throw err
  }
  let next = 0
  return { url: hello.url, cpu: () => cpuOf(child, ++next), close: () => stop(child) }
}

const STOP_MS = 5_000

/** Ends a server process: its IPC channel closed (it closes its app), SIGKILL if it has not exited within STOP_MS. */
async function stop (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  if (child.connected) child.disconnect()
  else child.kill('SIGKILL')
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_MS)
  await exited
  clearTimeout(timer)
}

/**
 * Starts the servers a case needs, runs the case, and always stops them all (and the case's Redis
 * after them), whatever failed.
 */
export async function withServers<T> (specs: readonly ServerSpec[], run: (servers: ServerProcess[]) => Promise<T>,
  after: () => Promise<void>): Promise<T> {
  const servers: ServerProcess[] = []
  try {
    for (const spec of specs) servers.push(await startServer(spec))
    return await run(servers)
  } finally {
    await Promise.allSettled(servers.map((server) => server.close()))
    await after()
  }
}

function cpuOf (child: ChildProcess, id: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: CpuReply): void => {
      if (message.id !== id) return
      child.off('message', onMessage)
      resolve(message.cpuUs)
    }
    child.on('message', onMessage)
    child.send({ id }, (err) => { if (err !== null) { child.off('message', onMessage); reject(err) } })
  })
}

/** CPU time redis-server has used so far, µs (INFO cpu: used_cpu_user + used_cpu_sys, every thread). */
export async function redisCpu (redis: RedisServer): Promise<number> {
  const info = await redis.cli('INFO', 'cpu')
  const seconds = (name: string): number => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)?.[1] ?? Number.NaN)
  return (seconds('used_cpu_user') + seconds('used_cpu_sys')) * 1e6
}

/**
 * A contender that loads one path of a server process and reports its rate, the server's CPU µs per
 * request and, given the case's Redis, redis-server's CPU µs per request (work moved into a Lua script
 * is not free: it is Redis's CPU).
 */
export function serverContender (name: string, server: ServerProcess, target: Omit<HttpTarget, 'url'> & { path: string },
  connections: number, redis?: RedisServer): Contender {
  return {
    name,
    measure: async (ms): Promise<Sample> => {
      const [before, redisBefore] = await Promise.all([server.cpu(), redis === undefined ? 0 : redisCpu(redis)])
      const sample = await load({ ...target, url: `${server.url}${target.path}` }, ms, connections)
      const [after, redisAfter] = await Promise.all([server.cpu(), redis === undefined ? 0 : redisCpu(redis)])
      const requests = Math.max(1, sample.requests)
      return {
        ...sample,
        cpuUs: (after - before) / requests,
        ...(redis === undefined ? {} : { redisCpuUs: (redisAfter - redisBefore) / requests })
      }
    }
  }
}
