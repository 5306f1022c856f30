// Case 3: one hot key served from the memory tier, ours against bentocache with its memory tier,
// Redis and bus (both set up for several instances, which is what the memory tier is for).
import { bento } from '../alternatives.js'
import { buildOurApp, connected, payload, plainClient, startRedis } from '../environment.js'
import { closedLoop, compare, type Settings } from '../harness.js'
import { ratioRows, type CaseResult } from '../results.js'

export async function hotKey (settings: Settings): Promise<CaseResult> {
  const redis = await startRedis()
  const app = await buildOurApp(redis)
  const bentoClient = await connected(plainClient(redis))
  const bentoCache = bento(bentoClient, 'both')
  try {
    const ours = app.cache.namespace('hot', { ttl: '1h' })
    await ours.getOrSet('hot', () => payload(1))
    await bentoCache.getOrSet({ key: 'hot', factory: () => payload(1), ttl: '1h' })
    const miss = (): never => { throw new Error('unexpected miss') }
    const comparison = await compare(settings,
      { name: 'ours', measure: closedLoop(() => ours.getOrSet('hot', miss), settings.concurrency) },
      [{ name: 'bentocache', measure: closedLoop(() => bentoCache.getOrSet({ key: 'hot', factory: miss, ttl: '1h' }), settings.concurrency) }])
    return {
      id: 3,
      title: 'getOrSet hot key, memory + Redis tiers',
      rows: ratioRows(comparison, [{ label: 'vs bentocache (memory + Redis + bus)', target: 1.0 }], 'ops/s'),
      notes: ['One key, always a memory-tier hit on both sides; bentocache with memoryDriver, redisDriver and redisBusDriver.']
    }
  } finally {
    await app.close()
    await bentoCache.disconnect().catch(() => {})
    bentoClient.disconnect()
    await redis.stop()
  }
}
