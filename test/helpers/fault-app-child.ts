// The fault app in a process of its own, for memory figures: measured in-process, RSS would include
// the load generator's sockets and per-request records. Prints {"baseUrl": …} once listening and adds
// GET /__memory: RSS after two full GCs, and the commands ioredis holds. Run with --expose-gc.
import { queuedCommands, startFaultApp } from './fault-app.js'

const teardowns: Array<() => unknown> = []
const { baseUrl } = await startFaultApp({ teardown: (fn) => { teardowns.push(fn) } }, JSON.parse(process.env['FAULT_APP_ENV'] ?? '{}'), {
  routes: (app) => {
    app.get('/__memory', async () => {
      const gc = (globalThis as { gc?: () => void }).gc
      gc?.()
      gc?.()
      return { rss: process.memoryUsage().rss, ...queuedCommands(app.redis) }
    })
  }
})
process.stdout.write(JSON.stringify({ baseUrl }) + '\n')
process.on('SIGTERM', () => {
  Promise.all(teardowns.map((fn) => fn())).finally(() => process.exit(0))
})
