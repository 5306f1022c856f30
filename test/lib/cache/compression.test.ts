// Compressed entries in Redis: what is stored (Redis decides), readers of either setting reading both
// forms (a rolling deploy), the threshold, namespaces choosing, and corrupt entries read as misses.
import t from 'tap'
import { useRedis } from '../../helpers/index.js'
import { zstdAvailable, type CompressionCodec } from '../../../lib/codecs/compression.js'
import { decodeEnvelope } from '../../../lib/cache/entry.js'
import { instance } from './fixtures.js'

const big = { text: 'the same words again and again '.repeat(100), n: 1 } // ~3 KB of JSON
const KEY = 'cache:e:{}default:k'

const codecs: CompressionCodec[] = zstdAvailable ? ['zlib', 'brotli', 'zstd'] : ['zlib', 'brotli']

t.test('each codec: stored compressed, read back by a reader with another codec and one with none', async (t) => {
  const server = await useRedis(t)
  const plainReader = await instance(t, server, { memory: false })
  for (const codec of codecs) {
    const writer = await instance(t, server, { memory: false, compression: { codec } })
    await writer.cache.set('k', big)
    const raw = await server.cli('GET', KEY)
    t.match(raw, new RegExp(`^z${{ zlib: 'd', brotli: 'b', zstd: 's' }[codec]}\\n[A-Za-z0-9+/=]+$`), `${codec}: the marker, then base64`)
    t.ok(raw.length < JSON.stringify(big).length / 2, `${codec}: smaller in Redis`)
    t.same(await writer.cache.get('k'), big, `${codec}: read back by its writer`)
    t.same(await plainReader.cache.get('k'), big, `${codec}: read by a reader without compression`)
    const other = await instance(t, server, { memory: false, compression: { codec: codec === 'zlib' ? 'brotli' : 'zlib' } })
    t.same(await other.cache.get('k'), big, `${codec}: read by a reader with another codec`)
  }
  t.equal(plainReader.cache.stats().namespaces['default']?.redis.hits, codecs.length)
  t.equal(decodeEnvelope(await server.cli('GET', KEY)), undefined, 'a reader of the previous release sees no entry (a miss it refills), never a wrong value')
})

t.test('threshold: shorter entries are stored as they are, and read by a reader with compression', async (t) => {
  const server = await useRedis(t)
  const plainWriter = await instance(t, server, { memory: false })
  const reader = await instance(t, server, { memory: false, compression: { codec: 'zlib', threshold: 2_000 } })
  await plainWriter.cache.set('k', big)
  t.match(await server.cli('GET', KEY), /^2\n/, 'written without compression')
  t.same(await reader.cache.get('k'), big, 'an uncompressed entry read by a reader with compression')
  await reader.cache.set('k', { small: 'x'.repeat(500) })
  t.match(await server.cli('GET', KEY), /^2\n/, 'under the threshold: plain')
  await reader.cache.set('k', big)
  t.match(await server.cli('GET', KEY), /^zd\n/, 'over it: compressed')
  await reader.cache.set('k', { noise: Array.from({ length: 300 }, (_, i) => (i * 2654435761 % 4294967296).toString(36)).join('') })
  t.match(await server.cli('GET', KEY), /^2\n/, 'when compression would not save space: plain')
})

t.test('namespaces choose: their own codec, none, or the cache default', async (t) => {
  const server = await useRedis(t)
  const { cache } = await instance(t, server, { memory: false, compression: { codec: 'zlib', threshold: 0 } })
  await cache.namespace('a').set('k', big)
  await cache.namespace('b', { compression: false }).set('k', big)
  await cache.namespace('c', { compression: { codec: 'brotli', threshold: 100 } }).set('k', big)
  t.match(await server.cli('GET', 'cache:e:{}a:k'), /^zd\n/)
  t.match(await server.cli('GET', 'cache:e:{}b:k'), /^2\n/)
  t.match(await server.cli('GET', 'cache:e:{}c:k'), /^zb\n/)
  t.same(await cache.namespace('b').get('k'), big)
  t.throws(() => cache.namespace('d', { compression: { codec: 'lz4' as CompressionCodec } }), /compression\.codec must be one of zlib, brotli, zstd/)
  t.throws(() => cache.namespace('e', { compression: { codec: 'zlib', threshold: -1 } }), /compression\.threshold/)
})

t.test('a corrupt compressed entry is a miss: counted, logged once, and the loader refills it', async (t) => {
  const server = await useRedis(t)
  const { cache, events, warnings } = await instance(t, server, { memory: false, compression: { codec: 'zlib' } })
  await cache.set('k', big)
  await server.cli('SET', KEY, 'zd\nbm90IGRlZmxhdGUgYXQgYWxs', 'PX', '60000')
  await server.cli('SET', 'cache:e:{}default:k2', 'zq\nAAAA', 'PX', '60000') // a codec this reader does not know
  t.equal(await cache.get('k'), undefined)
  t.same(await cache.getOrSet('k2', () => big), big, 'the loader ran')
  t.same(await cache.get('k2'), big, 'and its value replaced the corrupt entry')
  t.equal(cache.stats().decompressionFailures, 2)
  t.same(events.filter((e) => e.type === 'decompression-failure'), [
    { type: 'decompression-failure', namespace: 'default' }, { type: 'decompression-failure', namespace: 'default' }
  ])
  t.equal(warnings.filter((w) => w.includes('did not decompress')).length, 1, 'logged once')
})
