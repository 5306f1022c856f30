// Key layout. Every Redis key the cache writes starts with `prefix` (default 'cache:'); the client's
// own keyPrefix, if any, is added in front by ioredis.
//
//   <prefix>e:{}<namespace>:<key>      an entry (JSON envelope, see entry.ts)
//   <prefix>lock:{}<namespace>:<key>   the short stampede lock of that entry
//   <prefix>gen:{<namespace>}          the namespace generation, bumped by clear()
//   <prefix>tag:{<tag>}                a tag version, bumped by invalidateTags()
//
// Each kind has its own fixed segment right after the prefix, ended by ':', so no key, tag or
// namespace a caller picks can form a key of another kind (before 0.x entries lived at
// `<prefix><namespace>:<key>` and the key `a:lock` was the lock of the key `a`). Namespace names
// hold no ':', so '<namespace>:<key>' is unambiguous whatever the key holds. The other features'
// prefixes (sess:, rl:, lock:, presence:, stream:) are disjoint from 'cache:' (test/lib/key-isolation.test.ts).
// The empty hash tag `{}` before the caller's text makes Redis Cluster hash the whole key (the first
// '{' opens the tag, and an empty one means "no tag"), so a key or URL holding `{x}` cannot pick the
// slot: a client cannot pile every entry onto one shard.
import { CacheKeyError, CacheNamespaceError } from '../errors/index.js'

export const MAX_KEY_BYTES = 1024
export const ROOT_NAMESPACE = 'default'

// C0 controls, DEL and C1 controls: they break logs, redis-cli and line-based tooling.
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/ // eslint-disable-line no-control-regex
const NAMESPACE_NAME = /^[A-Za-z0-9_-]{1,64}$/

/** Throws a CacheKeyError unless the key can be stored. */
export function assertValidKey (key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0) {
    throw new CacheKeyError(`A cache key must be a non-empty string, got ${typeof key === 'string' ? 'an empty string' : typeof key}`)
  }
  // A UTF-16 unit is at most 3 UTF-8 bytes: short keys need no byte count.
  if (key.length * 3 > MAX_KEY_BYTES && Buffer.byteLength(key) > MAX_KEY_BYTES) {
    throw new CacheKeyError(`A cache key must be at most ${MAX_KEY_BYTES} bytes, got ${Buffer.byteLength(key)} bytes (starting ${JSON.stringify(key.slice(0, 40))}); hash long inputs into the key`)
  }
  if (CONTROL_CHARS.test(key)) {
    throw new CacheKeyError(`A cache key must not contain control characters, got ${JSON.stringify(key.slice(0, 80))}`)
  }
}

/** The full name of a child namespace: 'api' under the root, 'api.v2' under 'api'. */
export function childNamespace (parent: string, name: string): string {
  if (!NAMESPACE_NAME.test(name)) {
    throw new CacheNamespaceError(`A cache namespace name must be 1-64 letters, digits, '_' or '-', got ${JSON.stringify(name)}`)
  }
  return parent === ROOT_NAMESPACE ? name : `${parent}.${name}`
}

export interface KeyLayout {
  entry: (namespace: string, key: string) => string
  lock: (namespace: string, key: string) => string
  generation: (namespace: string) => string
  tag: (tag: string) => string
}

export function keyLayout (prefix: string): KeyLayout {
  return {
    entry: (namespace, key) => `${prefix}e:{}${namespace}:${key}`,
    lock: (namespace, key) => `${prefix}lock:{}${namespace}:${key}`,
    // Braces make each version key its own Cluster hash slot; see redis-tier.ts for why.
    generation: (namespace) => `${prefix}gen:{${namespace}}`,
    tag: (tag) => `${prefix}tag:{${tag}}`
  }
}

/** Tags are free text but end up in keys and messages: same rules as keys. */
export function assertValidTags (tags: readonly string[]): void {
  for (const tag of tags) {
    try {
      assertValidKey(tag)
    } catch (err) {
      throw new CacheKeyError(`Invalid cache tag: ${(err as Error).message.replace('A cache key', 'it')}`)
    }
  }
}
