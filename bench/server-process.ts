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
  const hello = await new Promise<ServerHello>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`bench server ${spec.app} did not start within ${STARTUP_MS} ms`)) }, STARTUP_MS)
    child.once('message', (message: ServerHello) => { clearTimeout(timer); resolve(message) })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`bench server ${spec.app} exited (code ${String(code)}) before listening`)) })
  })
  let next = 0
  return {
    url: hello.url,
    cpu: () => cpuOf(child, ++next),
    close: async () => {
      if (child.exitCode !== null) return
      const exited = once(child, 'exit')
      child.disconnect()
      await exited
    }
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

/** A contender that loads one path of a server process and reports its rate and the server's CPU µs per request. */
export function serverContender (name: string, server: ServerProcess, target: Omit<HttpTarget, 'url'> & { path: string },
  connections: number): Contender {
  return {
    name,
    measure: async (ms): Promise<Sample> => {
      const before = await server.cpu()
      const sample = await load({ ...target, url: `${server.url}${target.path}` }, ms, connections)
      const used = await server.cpu() - before
      return { ...sample, cpuUs: used / Math.max(1, sample.requests) }
    }
  }
}
