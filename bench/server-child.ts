// One bench server: builds the app named in its argument (bench/server-apps.ts), listens on a free
// loopback port and reports its URL; on request it reports the CPU time its process has used (user +
// system, every thread: process.cpuUsage() is the process's rusage), which the parent turns into CPU µs
// per request. It ends when its parent's IPC channel closes.
// Protocol: out { url } once; in { id } → out { id, cpuUs, hrUs }.
import type { AddressInfo } from 'node:net'
import { apps, type ServerSpec } from './server-apps.js'

export interface ServerHello { url: string }
export interface CpuReply { id: number, cpuUs: number, /** The user part of cpuUs (the rest is the kernel's). */ userUs: number, /** process.hrtime in µs (the clock of --cpu-prof's timestamps). */ hrUs: number }

// Listened for first: a parent gone during start-up (a hung Redis connect) still ends this process.
const started: { app?: Awaited<ReturnType<typeof apps[keyof typeof apps]>> } = {}
process.on('disconnect', () => {
  // Closing flushes --cpu-prof's profile (written at exit) and lets the app close its Redis clients;
  // bounded, so a close that hangs still ends the process.
  setTimeout(() => process.exit(1), 5_000).unref()
  if (started.app === undefined) process.exit(1)
  started.app.close().then(() => process.exit(), () => process.exit(1))
})
process.on('message', (message: { id: number }) => {
  const usage = process.cpuUsage()
  process.send?.({ id: message.id, cpuUs: usage.user + usage.system, userUs: usage.user, hrUs: Number(process.hrtime.bigint() / 1000n) } satisfies CpuReply)
})

const spec = JSON.parse(process.argv[2] ?? '{}') as ServerSpec
const app = await apps[spec.app](spec)
started.app = app
await app.listen({ host: '127.0.0.1', port: 0 })
const address = app.server.address() as AddressInfo
process.send?.({ url: `http://127.0.0.1:${address.port}` } satisfies ServerHello)
