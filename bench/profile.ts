// Where one bench server's CPU goes per request: the server (bench/server-child.ts, the built package)
// runs under --cpu-prof with a fine sampling interval; WARM requests, then N counted ones (autocannon
// in this process); the profile's samples from the counted part only are summed by function (self
// time), and each frame is printed as µs per request. Profile before optimising, and after (issue 29).
//
//   npm run bench:profile -- --app suite-rate-limit --path /limited --env RATE_LIMIT_SYNC=batched
//   npm run bench:profile -- --app suite-cache --keys 1000 --path '/items/{i}' --top 40
//   … --xff (X-Forwarded-For over 1,000 addresses, with trustProxy 127.0.0.1), --cache '{"syncInterval":"1h"}'
//   … --callers nextTick   also: where a frame's self time is spent from (its callers, three frames up)
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { startRedis } from './environment.js'
import type { AppName, ServerSpec } from './server-apps.js'
import type { ServerHello } from './server-child.js'

interface ProfileNode { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, children?: number[] }
interface Profile { nodes: ProfileNode[], samples: number[], timeDeltas: number[], startTime: number }

const { values } = parseArgs({
  options: {
    app: { type: 'string', default: 'suite' },
    path: { type: 'string', default: '/plain' },
    keys: { type: 'string' },
    env: { type: 'string', multiple: true, default: [] },
    cache: { type: 'string' },
    xff: { type: 'boolean', default: false },
    warm: { type: 'string', default: '30000' },
    requests: { type: 'string', default: '100000' },
    top: { type: 'string', default: '30' },
    interval: { type: 'string', default: '50' },
    callers: { type: 'string' }
  }
})

const WARM = Number(values.warm)
const N = Number(values.requests)
const env = Object.fromEntries(values.env.map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]))

async function requests (url: string, amount: number): Promise<number> {
  let i = 0
  const result = await autocannon({
    url,
    connections: 10,
    amount,
    requests: [{
      setupRequest: (request) => {
        const n = i++ % 1_000
        request.path = values.path.replace('{i}', String(n))
        if (values.xff) request.headers = { ...request.headers, 'x-forwarded-for': `10.0.${n >> 8}.${n & 255}` }
        return request
      }
    }]
  })
  return result.non2xx + result.errors
}

const redis = await startRedis()
const dir = mkdtempSync(path.join(os.tmpdir(), 'frs-profile-'))
try {
  const spec: ServerSpec = {
    app: values.app as AppName,
    redisUrl: redis.url,
    ...(Object.keys(env).length === 0 ? {} : { env }),
    ...(values.keys === undefined ? {} : { keys: Number(values.keys) }),
    ...(values.xff ? { trustProxy: ['127.0.0.1'] } : {}),
    ...(values.cache === undefined ? {} : { cache: JSON.parse(values.cache) as Record<string, unknown> })
  }
  const child = spawn(process.execPath, ['--import', 'tsx', '--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', values.interval,
    fileURLToPath(new URL('./server-child.ts', import.meta.url)), JSON.stringify(spec)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const [hello] = await once(child, 'message') as [ServerHello]
  await requests(hello.url, WARM)
  // The counted part's window in the profile's clock (µs since an arbitrary origin): marked by the
  // server's own hrtime, which the profile's timestamps share.
  const mark = async (): Promise<number> => {
    child.send({ id: 0 })
    const [reply] = await once(child, 'message') as [{ hrUs?: number }]
    return reply.hrUs ?? 0
  }
  const from = await mark()
  const failed = await requests(hello.url, N)
  const to = await mark()
  const exited = once(child, 'exit')
  child.disconnect()
  await exited
  const file = readdirSync(dir).find((name) => name.endsWith('.cpuprofile'))
  if (file === undefined) throw new Error('no profile written')
  const profile = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as Profile
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const parentOf = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id)
  const nameOf = (frame: ProfileNode['callFrame']): string => {
    const where = frame.url === '' ? '' : ` ${frame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/main\//, '')}:${frame.lineNumber + 1}`
    return `${frame.functionName === '' ? '(anonymous)' : frame.functionName}${where}`
  }
  const self = new Map<string, number>()
  const callers = new Map<string, number>()
  let t = profile.startTime
  let total = 0
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i]!
    t += delta
    if (t < from || t > to) continue
    const name = nameOf(byId.get(profile.samples[i]!)!.callFrame)
    self.set(name, (self.get(name) ?? 0) + delta)
    if (values.callers !== undefined && name.startsWith(values.callers)) {
      const chain: string[] = []
      for (let id = parentOf.get(profile.samples[i]!); id !== undefined && chain.length < 3; id = parentOf.get(id)) chain.push(nameOf(byId.get(id)!.callFrame))
      const key = chain.join(' < ')
      callers.set(key, (callers.get(key) ?? 0) + delta)
    }
    total += delta
  }
  const idle = self.get('(idle)') ?? 0
  console.log(`${values.app} ${values.path} ${JSON.stringify(env)}: ${N.toLocaleString('en')} requests (${failed} failed) after ${WARM.toLocaleString('en')}; ` +
    `busy ${((total - idle) / N).toFixed(2)} µs/request of ${(total / N).toFixed(2)} sampled; self time per request:`)
  for (const [name, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) {
    console.log(`${(us / N).toFixed(3).padStart(8)}  ${name}`)
  }
  if (values.callers !== undefined) {
    console.log(`\n${values.callers}: self time per request by caller (three frames up)`)
    for (const [chain, us] of [...callers].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) {
      console.log(`${(us / N).toFixed(3).padStart(8)}  ${chain}`)
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
  await redis.stop()
}
