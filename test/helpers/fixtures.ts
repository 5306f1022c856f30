// tap conveniences: start a resource for one test and stop it in that test's teardown,
// so a test cannot forget to clean up (the exit hook in cleanup.ts is the last resort).
import { startCluster, type ClusterOptions, type RedisCluster } from './cluster.js'
import { startFaultProxy, type FaultProxy, type FaultProxyOptions } from './fault-proxy.js'
import { startRedis, type RedisServer, type RedisServerOptions } from './redis-server.js'
import { startSentinelGroup, type SentinelGroup, type SentinelGroupOptions } from './sentinel.js'

/** The part of a tap Test these helpers need. */
export interface TeardownScope {
  teardown: (fn: () => void | Promise<void>) => void
}

export async function useRedis (t: TeardownScope, options?: RedisServerOptions): Promise<RedisServer> {
  const server = await startRedis(options)
  t.teardown(() => server.stop())
  return server
}

export async function useSentinelGroup (t: TeardownScope, options?: SentinelGroupOptions): Promise<SentinelGroup> {
  const group = await startSentinelGroup(options)
  t.teardown(() => group.stop())
  return group
}

export async function useCluster (t: TeardownScope, options?: ClusterOptions): Promise<RedisCluster> {
  const cluster = await startCluster(options)
  t.teardown(() => cluster.stop())
  return cluster
}

export async function useFaultProxy (t: TeardownScope, options: FaultProxyOptions): Promise<FaultProxy> {
  const proxy = await startFaultProxy(options)
  t.teardown(() => proxy.close())
  return proxy
}
