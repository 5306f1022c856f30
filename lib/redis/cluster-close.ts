// A closed ioredis Cluster must leave nothing running. ioredis (6.0.0) Cluster refreshes its slot map
// every slotsRefreshInterval with a timer that the refresh it started re-arms when it ends, whatever
// happened meanwhile (resetNodesRefreshInterval's nextRound). disconnect() and quit() clear that timer,
// but when the timer has already fired and its refresh is still running (CLUSTER SLOTS asked of each
// node in turn: milliseconds on a healthy cluster, up to slotsRefreshTimeout per node killed or frozen,
// longer on a busy machine) the refresh ends after the close and arms the next round, which refreshes
// the now empty pool, fails at once and arms the next: a 5 s timer for ever. app.close() returned, and
// the process never exits. The same timer outlives a Cluster that gives up reconnecting ('end' after
// clusterRetryStrategy returns no delay). stopSlotsRefreshOnClose makes every close end it.
import type { Cluster } from 'ioredis'

/** The ioredis Cluster internals this relies on (a Cluster without them is left unchanged; test/faults/cluster-close.test.ts fails if the fix stops working). */
interface SlotsRefreshInternals {
  isRefreshing: boolean
  refreshSlotsCache: (callback?: (err?: Error) => void) => void
  clearNodesRefreshInterval: () => void
}

const CLOSED = new Set(['disconnecting', 'close', 'end'])
const kStopsSlotsRefresh = Symbol('fastify-redis-suite.stopsSlotsRefresh')

/**
 * After `cluster.disconnect()` (not a `disconnect(true)` reconnect), `cluster.quit()` or its 'end', its
 * periodic slots refresh stops, also when a refresh was in flight; a later `connect()` starts it again
 * as usual. Copies made by `cluster.duplicate()` get the same. Returns `cluster`.
 */
export function stopSlotsRefreshOnClose<T extends Cluster> (cluster: T): T {
  const internals = cluster as unknown as SlotsRefreshInternals & { [kStopsSlotsRefresh]?: true }
  if (internals[kStopsSlotsRefresh] === true) return cluster
  // Another ioredis whose internals differ: left as it is rather than a close that throws.
  if (typeof internals.clearNodesRefreshInterval !== 'function' || typeof internals.refreshSlotsCache !== 'function') return cluster
  Object.defineProperty(internals, kStopsSlotsRefresh, { value: true })
  const stop = (): void => {
    if (!CLOSED.has(cluster.status)) return // connected again meanwhile: its refresh runs as usual
    internals.clearNodesRefreshInterval()
    // A refresh still running calls its callbacks in order: the timer's (which re-arms it) first, then this one.
    if (internals.isRefreshing) internals.refreshSlotsCache(stop)
  }
  const { disconnect, quit, duplicate } = cluster
  cluster.disconnect = (reconnect?: boolean): void => {
    disconnect.call(cluster, reconnect)
    if (reconnect !== true) stop()
  }
  cluster.quit = ((...args: Parameters<Cluster['quit']>) => {
    const quitting = quit.apply(cluster, args)
    stop()
    return quitting
  }) as Cluster['quit']
  cluster.duplicate = (...args: Parameters<Cluster['duplicate']>) => stopSlotsRefreshOnClose(duplicate.apply(cluster, args))
  cluster.on('end', stop)
  return cluster
}
