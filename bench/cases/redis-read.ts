// Case 2: getOrSet hits served from Redis (memory tier off) against the hand-written cache-aside,
// bentocache on Redis alone and async-cache-dedupe on Redis. 1,000 warm keys are read in turn, so
// concurrent calls mostly name different keys and no library can collapse them into one read.
// Ours checks every value against its TypeBox schema, and so does the hand-written cache-aside (a
// compiled TypeBox check after JSON.parse), since a cache that hands back unchecked JSON is not what
// we compare with.
import { Compile } from 'typebox/compile'
import { bento, CacheAside, dedupe } from '../alternatives.js'
import { buildOurApp, commandCalls, commandDelta, connected, payload, plainClient, startRedis } from '../environment.js'
import { Payload } from '../payload.js'
import { closedLoop, compare, inChunks, type Settings } from '../harness.js'
import { figureRow, ratioRows, type CaseResult } from '../results.js'

const checkPayload = Compile(Payload)

export async function redisRead (settings: Settings): Promise<CaseResult> {
  const KEYS = settings.quick ? 200 : 1_000
  const redis = await startRedis()
  const app = await buildOurApp(redis)
  const aside = await connected(plainClient(redis))
  const bentoClient = await connected(plainClient(redis))
  const dedupeClient = await connected(plainClient(redis))
  const bentoCache = bento(bentoClient, 'redis')
  try {
    const ours = app.cache.namespace('bench', { memory: false, ttl: '1h' })
    const handWritten = new CacheAside(aside, 3_600_000)
    const loadPayload = async (key: string): Promise<unknown> => payload(Number(key.slice(1)))
    const dedupeCache = dedupe(dedupeClient, loadPayload)
    const key = (i: number): string => `k${i % KEYS}`
    // Warm every contender's keys: the measured calls are all hits.
    await inChunks(KEYS, 50, (i) => Promise.all([
      ours.getOrSet(key(i), () => payload(i) as never, { schema: Payload }),
      handWritten.getOrSet(key(i), () => payload(i)),
      bentoCache.getOrSet({ key: key(i), factory: () => payload(i), ttl: '1h' }),
      dedupeCache.fetch(key(i))
    ]))
    const miss = (): never => { throw new Error('unexpected miss') }
    const checked = (value: unknown): unknown => {
      if (!checkPayload.Check(value)) throw new Error('payload does not match its schema')
      return value
    }
    const comparison = await compare(settings,
      { name: 'ours', measure: closedLoop((i) => ours.getOrSet(key(i), miss, { schema: Payload }), settings.concurrency) },
      [
        { name: 'ioredis cache-aside', measure: closedLoop((i) => handWritten.getOrSet(key(i), miss).then(checked), settings.concurrency) },
        { name: 'bentocache', measure: closedLoop((i) => bentoCache.getOrSet({ key: key(i), factory: miss, ttl: '1h' }), settings.concurrency) },
        { name: 'async-cache-dedupe', measure: closedLoop((i) => dedupeCache.fetch(key(i)), settings.concurrency) }
      ])
    // Commands Redis ran per hit, from INFO commandstats (the health monitor's PINGs left out).
    const HITS = 1_000
    const before = await commandCalls(redis)
    for (let i = 0; i < HITS; i++) await ours.getOrSet(key(i), miss, { schema: Payload })
    const delta = commandDelta(before, await commandCalls(redis))
    const perHit = (delta.total - (delta.byCommand['ping'] ?? 0)) / HITS
    return {
      id: 2,
      title: 'getOrSet hit from Redis (memory tier off)',
      rows: [
        ...ratioRows(comparison, [
          { label: 'vs ioredis GET + JSON.parse + schema check (auto-pipelining)', target: 1.0 },
          { label: 'vs bentocache getOrSet (Redis only)', target: 1.4 },
          { label: 'vs async-cache-dedupe (Redis storage)', target: 1.2 }
        ], 'ops/s'),
        figureRow('Redis commands per hit, ours', [perHit], 'commands', { text: '= 1', met: (median) => median <= 1 })
      ],
      notes: [`${KEYS} warm keys read round-robin, ${settings.concurrency} calls in flight, ~1 KB JSON payload, checked against a TypeBox schema by ours and by the cache-aside.`]
    }
  } finally {
    await app.close()
    await bentoCache.disconnect().catch(() => {})
    aside.disconnect()
    bentoClient.disconnect()
    dedupeClient.disconnect()
    await redis.stop()
  }
}
