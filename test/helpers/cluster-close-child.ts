// The demo app (server.ts) on the Cluster given in CLUSTER_CLOSE_ENV, in a process of its own, for
// test/faults/cluster-close.test.ts: prints {"ready": true}; on a line on stdin, waits until a slots refresh
// started by the Cluster's periodic timer (slotsRefreshInterval) has been running for 300 ms (held by a node
// that does not answer), closes the app then and prints {"closed": {"timerRefresh": …}}. It must then exit
// by itself; until it does, it prints every 2 s what keeps it alive ({"alive": [...]}). Not a test.
import { buildServer } from '../../server.js'

type Callback = (err?: Error) => void
const app = await buildServer({ env: { NODE_ENV: 'test', LOG_LEVEL: 'silent', ...JSON.parse(process.env['CLUSTER_CLOSE_ENV'] ?? '{}') }, processEnv: false })
await app.ready()
// ioredis' timer calls refreshSlotsCache with the callback that arms its next round (the one that outlived
// the close); commands' redirections start refreshes too, which would not show the bug.
const cluster = app.redisConnections.main as unknown as { refreshSlotsCache: (callback?: Callback) => void }
let timerRefreshSince: number | undefined
const refresh = cluster.refreshSlotsCache.bind(cluster)
cluster.refreshSlotsCache = (callback) => {
  if (callback === undefined || !String(callback).includes('nextRound')) { refresh(callback); return }
  timerRefreshSince = Date.now()
  refresh((err) => { timerRefreshSince = undefined; callback(err) })
}
const print = (message: unknown): void => { process.stdout.write(JSON.stringify(message) + '\n') }
print({ ready: true })

async function closeDuringRefresh (): Promise<void> {
  const asked = Date.now()
  const heldFor = (): number => timerRefreshSince === undefined ? 0 : Date.now() - timerRefreshSince
  while (Date.now() - asked < 75_000 && heldFor() < 300) await new Promise((resolve) => setTimeout(resolve, 5))
  const timerRefresh = timerRefreshSince !== undefined
  await app.close()
  print({ closed: { timerRefresh } })
  setInterval(() => { print({ alive: process.getActiveResourcesInfo() }) }, 2_000).unref()
}

process.stdin.once('data', () => {
  process.stdin.destroy()
  closeDuringRefresh().catch((err: unknown) => {
    print({ error: String(err) })
    process.exitCode = 1
  })
})
