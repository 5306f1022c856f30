// Per-call options resolved against the namespace defaults, durations parsed once into milliseconds.
// Resolved options are shared between calls: never mutate one.
import type { TSchema } from 'typebox'
import { resolveCompression, type Compression } from '../codecs/index.js'
import { parseDuration, type Duration } from '../config/index.js'
import { assertValidTags } from './keys.js'
import { compileSchema, type CompiledSchema } from './schema.js'
import type { CacheDefaults, GetOrSetOptions } from './types.js'
import { DurationError } from '../errors/index.js'

export const DEFAULT_TTL_MS = 5 * 60_000
const DEFAULT_LOCK_TTL_MS = 10_000
const DEFAULT_LOCK_WAIT_MS = 5_000

export interface ResolvedOptions {
  ttl: number
  grace: number
  tags: string[]
  schema: CompiledSchema | undefined
  memory: boolean
  redis: boolean
  softTimeout: number
  hardTimeout: number | undefined
  lockTtl: number
  lockWait: number
  /** How entries are compressed in Redis; undefined: stored as they are. */
  compression: Compression | undefined
}

/** Namespace defaults with durations already parsed, so a call without options parses nothing. */
export type ResolvedDefaults = Omit<ResolvedOptions, 'schema'>

export function resolveDefaults (defaults: CacheDefaults, parent?: ResolvedDefaults): ResolvedDefaults {
  const tags = [...new Set([...parent?.tags ?? [], ...defaults.tags ?? []])]
  assertValidTags(tags)
  const hardTimeout = optionalMs(defaults.timeout?.hard, 'timeout.hard') ?? parent?.hardTimeout
  return {
    ttl: positiveMs(defaults.ttl, 'ttl') ?? parent?.ttl ?? DEFAULT_TTL_MS,
    grace: optionalMs(defaults.grace, 'grace') ?? parent?.grace ?? 0,
    tags,
    memory: defaults.memory ?? parent?.memory ?? true,
    redis: defaults.redis ?? parent?.redis ?? true,
    softTimeout: optionalMs(defaults.timeout?.soft, 'timeout.soft') ?? parent?.softTimeout ?? 0,
    hardTimeout,
    lockTtl: positiveMs(defaults.lockTtl, 'lockTtl') ?? parent?.lockTtl ?? hardTimeout ?? DEFAULT_LOCK_TTL_MS,
    lockWait: optionalMs(defaults.lockWait, 'lockWait') ?? parent?.lockWait ?? hardTimeout ?? DEFAULT_LOCK_WAIT_MS,
    // false turns off a compression the parent namespace has.
    compression: defaults.compression === undefined ? parent?.compression : resolveCompression(defaults.compression)
  }
}

// A call without options, or with a schema alone (the common shapes), gets one object resolved once per
// namespace (and schema) and shared by every such call: nothing is parsed, copied or allocated.
const plain = new WeakMap<ResolvedDefaults, ResolvedOptions>()
const withSchema = new WeakMap<ResolvedDefaults, WeakMap<TSchema, ResolvedOptions>>()

export function resolveOptions (defaults: ResolvedDefaults, options: GetOrSetOptions<TSchema | undefined> | undefined): ResolvedOptions {
  if (options === undefined) return plainOptions(defaults)
  const { ttl, grace, tags, timeout, lockTtl, lockWait, schema } = options
  if (ttl === undefined && grace === undefined && tags === undefined && timeout === undefined &&
    lockTtl === undefined && lockWait === undefined) {
    return schema === undefined ? plainOptions(defaults) : schemaOptions(defaults, schema)
  }
  const resolved: ResolvedOptions = { ...defaults, schema: schema === undefined ? undefined : compileSchema(schema) }
  if (ttl !== undefined) resolved.ttl = positiveMs(ttl, 'ttl') ?? defaults.ttl
  if (grace !== undefined) resolved.grace = ms(grace, 'grace')
  if (tags !== undefined && tags.length > 0) {
    assertValidTags(tags)
    resolved.tags = [...new Set([...defaults.tags, ...tags])]
  }
  if (timeout?.soft !== undefined) resolved.softTimeout = ms(timeout.soft, 'timeout.soft')
  if (timeout?.hard !== undefined) resolved.hardTimeout = ms(timeout.hard, 'timeout.hard')
  if (lockTtl !== undefined) resolved.lockTtl = positiveMs(lockTtl, 'lockTtl') ?? defaults.lockTtl
  if (lockWait !== undefined) resolved.lockWait = ms(lockWait, 'lockWait')
  return resolved
}

let lastPlainDefaults: ResolvedDefaults | undefined
let lastPlain: ResolvedOptions | undefined

function plainOptions (defaults: ResolvedDefaults): ResolvedOptions {
  if (defaults === lastPlainDefaults) return lastPlain!
  let resolved = plain.get(defaults)
  if (resolved === undefined) {
    resolved = Object.freeze({ ...defaults, schema: undefined }) as ResolvedOptions
    plain.set(defaults, resolved)
  }
  lastPlainDefaults = defaults
  lastPlain = resolved
  return resolved
}

// The last schema options resolved: a route calling with the same defaults and schema again (the usual
// hot loop) skips both WeakMap lookups.
let lastDefaults: ResolvedDefaults | undefined
let lastSchema: TSchema | undefined
let lastResolved: ResolvedOptions | undefined

function schemaOptions (defaults: ResolvedDefaults, schema: TSchema): ResolvedOptions {
  if (schema === lastSchema && defaults === lastDefaults) return lastResolved!
  const resolved = schemaOptionsOf(defaults, schema)
  lastDefaults = defaults
  lastSchema = schema
  lastResolved = resolved
  return resolved
}

function schemaOptionsOf (defaults: ResolvedDefaults, schema: TSchema): ResolvedOptions {
  let bySchema = withSchema.get(defaults)
  if (bySchema === undefined) {
    bySchema = new WeakMap()
    withSchema.set(defaults, bySchema)
  }
  let resolved = bySchema.get(schema)
  if (resolved === undefined) {
    resolved = Object.freeze({ ...defaults, schema: compileSchema(schema) }) as ResolvedOptions
    bySchema.set(schema, resolved)
  }
  return resolved
}

// Duration strings in calls are literals of the code ('5m'), so their values are remembered.
const parsed = new Map<string, number>()

function ms (value: Duration, name: string): number {
  if (typeof value !== 'string') return parseDuration(value, name)
  let result = parsed.get(value)
  if (result === undefined) {
    result = parseDuration(value, name)
    if (parsed.size < 1_000) parsed.set(value, result)
  }
  return result
}

function optionalMs (value: Duration | undefined, name: string): number | undefined {
  return value === undefined ? undefined : ms(value, name)
}

function positiveMs (value: Duration | undefined, name: string): number | undefined {
  const ms = optionalMs(value, name)
  if (ms === 0) throw new DurationError(`${name} must be longer than 0 ms`)
  return ms
}
