// The demo app (server.ts) on the Cluster given in CLUSTER_CLOSE_ENV, in a process of its own, for
// test/faults/cluster-close.test.ts: prints {"ready": true}; on a line on stdin, waits until a slots refresh
// started by the Cluster's periodic timer (slotsRefreshInterval) has been running for 300 ms (held by a node
// that does not answer), closes the app then and prints {"closed": {"timerRefresh": …}}. It must then exit
// by itself; until it does, it prints every 2 s what keeps it alive ({"alive": [...]}). Not a test.
// With CLUSTER_CLOSE_OWN_CLIENT=1 the rate limiter counts on a Cluster of the app's own
// (`rateLimit: { client }`), and the refresh watched is that of the copy the limiter opens from it.
import { Cluster } from 'ioredis'
import { stopSlotsRefreshOnClose } from '../../lib/redis/index.js'
import { buildServer } from '../../server.js'

type Callback = (err?: Error) => void
const env = { NODE_ENV: 'test', LOG_LEVEL: 'silent', ...JSON.parse(process.env['CLUSTER_CLOSE_ENV'] ?? '{}') as Record<string, string> }
const own = process.env['CLUSTER_CLOSE_OWN_CLIENT'] === '1' ? ownCluster(env) : undefined
const copies: Cluster[] = []
if (own !== undefined) {
  const duplicate = own.duplicate.bind(own)
  own.duplicate = (...args) => { const copy = duplicate(...args); copies.push(copy); return copy }
}
const app = await buildServer({ env, processEnv: false, ...(own === undefined ? {} : { rateLimit: { client: own } }) })
await app.ready()
// The app's own client is the app's to close; it must not be what keeps the process alive here.
if (own !== undefined) stopSlotsRefreshOnClose(own)
// ioredis' timer calls refreshSlotsCache with the callback that arms its next round (the one that outlived
// the close); commands' redirections start refreshes too, which would not show the bug.
const watched = own === undefined ? app.redisConnections.main : copies[0]
if (watched === undefined) throw new Error('the rate limiter opened no copy of the app\'s Cluster')
const cluster = watched as unknown as { refreshSlotsCache: (callback?: Callback) => void }
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
  while (Date.now() - asked < 150_000 && heldFor() < 300) await new Promise((resolve) => setTimeout(resolve, 5))
  const timerRefresh = timerRefreshSince !== undefined
  await app.close()
  own?.disconnect()
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

/**
 * The app's own Cluster: the suite's nodes, CLUSTER_CLOSE_OWN_NAT_MAP's addresses, refreshing its slots
 * periodically as the suite's does (ioredis 6 refreshes only when asked to: no slotsRefreshInterval, no bug).
 */
function ownCluster (env: Record<string, string>): Cluster {
  const address = (text: string): { host: string, port: number } => ({ host: text.slice(0, text.lastIndexOf(':')), port: Number(text.slice(text.lastIndexOf(':') + 1)) })
  const natMap = Object.fromEntries((process.env['CLUSTER_CLOSE_OWN_NAT_MAP'] ?? '').split(',').filter(Boolean).map((pair) => {
    const [from = '', to = ''] = pair.split('=')
    return [from, address(to)]
  }))
  return new Cluster((env['REDIS_CLUSTER_NODES'] ?? '').split(',').map(address), { natMap, slotsRefreshInterval: 5_000, slotsRefreshTimeout: 2_000 })
}
