// Every feature owns a disjoint key prefix, and no input a user controls (cache keys, tags, namespace
// names, lock names, rooms, stream names, rate-limit scopes and ids, session user ids) can make one
// builder produce a key another builder produces (DESIGN.md §3, issue 14 item 9).
import t from 'tap'
import { keyLayout, ROOT_NAMESPACE } from '../../lib/cache/keys.js'
import { lockKeys } from '../../lib/locks/store.js'
import { presenceKey } from '../../lib/realtime/presence.js'
import { buildLimitKeys } from '../../lib/rate-limit/keys.js'
import { ALL_SESSIONS_KEYS, sessionHandle, sessionKey, userIndexKey } from '../../lib/session/keys.js'
import { streamKey } from '../../lib/realtime/streams.js'
import { createCache } from '../../lib/cache/index.js'
import { useRedis } from '../helpers/index.js'
import { connect } from './cache/fixtures.js'

/** Each builder's fixed prefix: what every key it builds starts with, whatever the input. */
const FEATURE_PREFIXES: Record<string, string> = {
  'cache entry': 'cache:e:',
  'cache lock': 'cache:lock:',
  'cache generation': 'cache:gen:',
  'cache tag': 'cache:tag:',
  session: 'sess:{',
  'session user index': 'sess:user:',
  'session count': 'sess:all:',
  'rate limit': 'rl:',
  lock: 'lock:',
  presence: 'presence:',
  stream: 'stream:'
}

// Input an attacker would try: separators, hash-tag braces, the words the layouts use, and every
// other feature's prefix, alone and combined.
const WORDS = ['', 'a', 'lock', 'fence', 'all', 'user', 'gen', 'tag', 'e', 'default', 'f', 's', 'b', 'g', '%7B']
const SEPARATORS = ['', ':', '{', '}', '|', '}:', ':{', '%']
const ADVERSARIAL = [...new Set([
  ...WORDS.flatMap((w) => SEPARATORS.flatMap((s) => [w + s, s + w, `a${s}${w}`])),
  ...Object.values(FEATURE_PREFIXES).flatMap((p) => [p, `${p}a`, `${p}{a}`, `a:${p}`, `${p}default:a`]),
  '/files/a', '/files/a:lock', 'lock:{a}:fence', 'a}:fence', 'gen:{default}', 'tag:{x}', 'e:default:a',
  'rl:{global|1}:f', 'global|1', 'user:{1}', '{default}', 'default:a:lock'
])].filter((s) => s.length > 0)

const NAMESPACES = [ROOT_NAMESPACE, 'api', 'api.v2', 'gen', 'tag', 'lock', 'e', 'http']

function allKeys (): Map<string, Array<{ builder: string, input: string }>> {
  const cache = keyLayout('cache:')
  const built = new Map<string, Array<{ builder: string, input: string }>>()
  const add = (builder: string, input: string, key: string): void => {
    const list = built.get(key) ?? []
    list.push({ builder, input })
    built.set(key, list)
  }
  for (const input of ADVERSARIAL) {
    for (const namespace of NAMESPACES) {
      add('cache entry', `${namespace} ${input}`, cache.entry(namespace, input))
      add('cache lock', `${namespace} ${input}`, cache.lock(namespace, input))
    }
    add('cache tag', input, cache.tag(input))
    add('session', input, sessionKey(input))
    add('session', sessionHandle(input), sessionKey(sessionHandle(input)))
    add('session user index', input, userIndexKey(input))
    for (const [scope, id] of [[input, '1'], ['global', input], [input, input]] as const) {
      for (const algorithm of ['fixed', 'sliding'] as const) {
        const keys = buildLimitKeys({ scope, id, algorithm })
        add('rate limit', `${scope} ${id} counter ${algorithm}`, keys.counter)
        if (algorithm === 'fixed') {
          add('rate limit', `${scope} ${id} strikes`, keys.strikes)
          add('rate limit', `${scope} ${id} ban`, keys.ban)
        }
      }
    }
    const lock = lockKeys(input)
    add('lock', input, lock.key)
    add('lock', `${input} fence`, lock.fence)
    add('presence', input, presenceKey(input))
    add('stream', input, streamKey(input))
  }
  for (const namespace of NAMESPACES) add('cache generation', namespace, cache.generation(namespace))
  ALL_SESSIONS_KEYS.forEach((key, b) => { add('session count', String(b), key) })
  return built
}

t.test('the feature prefixes are prefix-free: no feature\'s prefix starts another\'s', async (t) => {
  const entries = Object.entries(FEATURE_PREFIXES)
  for (const [a, pa] of entries) {
    for (const [b, pb] of entries) {
      if (a !== b) t.notOk(pb.startsWith(pa), `${a} (${pa}) is not a prefix of ${b} (${pb})`)
    }
  }
})

t.test('every builder keeps to its own prefix whatever the input', async (t) => {
  const built = allKeys()
  const strays: string[] = []
  for (const [key, sources] of built) {
    for (const { builder, input } of sources) {
      if (!key.startsWith(FEATURE_PREFIXES[builder] ?? '\u0000')) strays.push(`${builder}(${JSON.stringify(input)}) = ${key}`)
    }
  }
  t.same(strays, [], 'no key outside its builder\'s prefix')
  t.ok(built.size > 1_000, `${built.size} distinct keys checked`)
})

t.test('no two builders (or two inputs of one builder) produce the same key', async (t) => {
  const collisions = [...allKeys()].flatMap(([key, sources]) => {
    const distinct = new Set(sources.map((s) => `${s.builder}\u0000${s.input}`))
    // The same input reaching a builder twice (e.g. a word that is also a namespace) is no collision.
    return distinct.size > 1 ? [`${key} ← ${[...distinct].join(' / ')}`] : []
  })
  t.same(collisions, [])
})

/** The part of a key Redis Cluster hashes: the first non-empty {tag}, else the whole key. */
function hashedPart (key: string): string {
  const open = key.indexOf('{')
  if (open === -1) return key
  const close = key.indexOf('}', open + 1)
  return close === -1 || close === open + 1 ? key : key.slice(open + 1, close)
}

t.test('a cache key or URL holding {…} cannot choose the Cluster slot of its entry or lock', async (t) => {
  const cache = keyLayout('cache:')
  for (const input of ['/x/{a}', '{a}', 'user:{a}:1', '/search?q={a}']) {
    for (const key of [cache.entry('http', input), cache.lock('http', input), cache.entry(ROOT_NAMESPACE, input)]) {
      t.equal(hashedPart(key), key, `${key} is hashed whole`)
    }
  }
})

t.test('a cached entry named like another key\'s stampede lock does not hold that key\'s misses', async (t) => {
  const server = await useRedis(t)
  const client = await connect(t, server)
  const cache = createCache({ redis: client, memory: false })
  t.teardown(() => cache.close())
  // The route-cache case of the issue: a URL ending in ':lock' stored first.
  await cache.set('/files/a:lock', 'another entry', { ttl: '1h' })
  let loads = 0
  // Before the fix the entry above was the lock of '/files/a': this call waited out the whole lockWait.
  const value = await cache.getOrSet('/files/a', () => { loads++; return 'loaded' }, { lockWait: '1h' })
  t.equal(value, 'loaded')
  t.equal(loads, 1)
  t.equal(await cache.get('/files/a:lock'), 'another entry', 'the other entry is untouched')
})
