// The Redis eviction policy, read from `INFO memory` (maxmemory_policy): the suite's least-privilege
// ACL user and managed Redis refuse CONFIG GET, but every user that can connect may run INFO (the
// ready check sends it), so the start-up warning about an uncapped cache on noeviction still fires.
import type { Cluster, Redis } from 'ioredis'

/** e.g. 'noeviction'; undefined when the server cannot be asked or does not say. */
export async function readMaxmemoryPolicy (client: Redis | Cluster): Promise<string | undefined> {
  return (await readMemory(client))?.policy
}

export interface RedisMemory {
  policy: string | undefined
  /** maxmemory in bytes; 0 is no limit. */
  maxBytes: number
  usedBytes: number
}

/** INFO memory's policy, limit and use (one master's, for a Cluster); undefined when it cannot be read. */
export async function readMemory (client: Redis | Cluster): Promise<RedisMemory | undefined> {
  const node = client.isCluster ? (client as Cluster).nodes('master')[0] : client as Redis
  if (node === undefined) return undefined
  try {
    const info = await node.info('memory')
    const field = (name: string): string | undefined => new RegExp(`^${name}:(\\S+)`, 'm').exec(info)?.[1]
    return { policy: field('maxmemory_policy'), maxBytes: Number(field('maxmemory') ?? 0), usedBytes: Number(field('used_memory') ?? 0) }
  } catch {
    return undefined
  }
}
