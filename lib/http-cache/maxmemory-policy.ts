// The Redis eviction policy, read from `INFO memory` (maxmemory_policy): the suite's least-privilege
// ACL user and managed Redis refuse CONFIG GET, but every user that can connect may run INFO (the
// ready check sends it), so the start-up warning about an uncapped cache on noeviction still fires.
import type { Cluster, Redis } from 'ioredis'

/** e.g. 'noeviction'; undefined when the server cannot be asked or does not say. */
export async function readMaxmemoryPolicy (client: Redis | Cluster): Promise<string | undefined> {
  const node = client.isCluster ? (client as Cluster).nodes('master')[0] : client as Redis
  if (node === undefined) return undefined
  try {
    const info = await node.info('memory')
    return /^maxmemory_policy:(\S+)/m.exec(info)?.[1]
  } catch {
    return undefined
  }
}
