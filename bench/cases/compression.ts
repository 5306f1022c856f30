// Case 13: what compression costs a cache hit. getOrSet hits from Redis (memory tier off) of a ~1 KB
// and a ~64 KB value, each namespace with compression on (zlib; zstd too where Node has it) against
// the same values stored plain. The values are records with varied words and numbers (they compress
// about 3-4x, as JSON API responses do), not repeated characters that compress to nothing.
import { zstdAvailable, type CompressionCodec } from '../../lib/codecs/index.js'
import { buildOurApp, connected, plainClient, startRedis } from '../environment.js'
import { closedLoop, compare, inChunks, type Settings } from '../harness.js'
import { figureRow, ratioRows, type CaseResult, type Row } from '../results.js'

const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet', 'kilo', 'lima', 'mike', 'november', 'oscar', 'papa']

/** A JSON value of about `bytes` characters, different per key. */
function record (key: number, bytes: number): unknown {
  const items: unknown[] = []
  let length = 0
  let seed = key * 7919 + 1
  const rand = (): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed }
  while (length < bytes) {
    const item = {
      id: rand() % 1_000_000,
      name: `${WORDS[rand() % 16]} ${WORDS[rand() % 16]}`,
      price: (rand() % 100_000) / 100,
      sku: rand().toString(36),
      tags: [WORDS[rand() % 16], WORDS[rand() % 16]],
      updatedAt: new Date(1_700_000_000_000 + rand()).toISOString()
    }
    length += JSON.stringify(item).length + 1
    items.push(item)
  }
  return { key, items }
}

export async function compression (settings: Settings): Promise<CaseResult> {
  const KEYS = settings.quick ? 50 : 200
  const redis = await startRedis()
  const app = await buildOurApp(redis)
  const client = await connected(plainClient(redis))
  const codecs: CompressionCodec[] = zstdAvailable ? ['zlib', 'zstd'] : ['zlib']
  const rows: Row[] = []
  try {
    for (const [label, bytes] of [['1 KB', 1_024], ['64 KB', 65_536]] as const) {
      const values = Array.from({ length: KEYS }, (_, i) => record(i, bytes))
      const key = (i: number): string => `k${i % KEYS}`
      const miss = (): never => { throw new Error('unexpected miss') }
      const plain = app.cache.namespace(`plain${bytes}`, { memory: false, ttl: '1h', compression: false })
      await inChunks(KEYS, 50, (i) => plain.set(key(i), values[i]))
      const off = { name: 'off', measure: closedLoop((i) => plain.getOrSet(key(i), miss), settings.concurrency) }
      for (const codec of codecs) {
        const ns = app.cache.namespace(`${codec}${bytes}`, { memory: false, ttl: '1h', compression: { codec, threshold: 512 } })
        await inChunks(KEYS, 50, (i) => ns.set(key(i), values[i]))
        const comparison = await compare(settings, { name: codec, measure: closedLoop((i) => ns.getOrSet(key(i), miss), settings.concurrency) }, [off])
        rows.push(...ratioRows(comparison, [{ label: `${label} hit, ${codec} on vs off (hits/s ratio)`, target: undefined }], 'ops/s'))
        const stored = await client.strlen(`cache:e:{}${codec}${bytes}:k0`)
        const raw = await client.strlen(`cache:e:{}plain${bytes}:k0`)
        rows.push(figureRow(`${label} value stored with ${codec}, share of plain size`, [stored / raw], 'ratio'))
      }
    }
    return {
      id: 13,
      title: 'Cache hit cost with compression on, 1 KB and 64 KB values',
      rows,
      notes: [`${KEYS} warm keys per namespace read round-robin from Redis (memory tier off), ${settings.concurrency} calls in flight; compressed values are base64 text in Redis (threshold 512 characters).`]
    }
  } finally {
    await app.close()
    client.disconnect()
    await redis.stop()
  }
}
