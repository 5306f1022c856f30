// Per-call options resolved against the namespace defaults, durations parsed once into milliseconds.
import type { TSchema } from 'typebox'
import { parseDuration, type Duration } from '../duration.js'
import { assertValidTags } from './keys.js'
import { compileSchema, type CompiledSchema } from './schema.js'
import type { CacheDefaults, GetOrSetOptions } from './types.js'

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
    lockWait: optionalMs(defaults.lockWait, 'lockWait') ?? parent?.lockWait ?? hardTimeout ?? DEFAULT_LOCK_WAIT_MS
  }
}

export function resolveOptions (defaults: ResolvedDefaults, options: GetOrSetOptions<TSchema | undefined> | undefined): ResolvedOptions {
  const schema = options?.schema === undefined ? undefined : compileSchema(options.schema)
  if (options === undefined) return { ...defaults, schema }
  const { ttl, grace, tags, timeout, lockTtl, lockWait } = options
  const resolved = { ...defaults, schema }
  if (ttl !== undefined) resolved.ttl = positiveMs(ttl, 'ttl') ?? defaults.ttl
  if (grace !== undefined) resolved.grace = parseDuration(grace, 'grace')
  if (tags !== undefined && tags.length > 0) {
    assertValidTags(tags)
    resolved.tags = [...new Set([...defaults.tags, ...tags])]
  }
  if (timeout?.soft !== undefined) resolved.softTimeout = parseDuration(timeout.soft, 'timeout.soft')
  if (timeout?.hard !== undefined) resolved.hardTimeout = parseDuration(timeout.hard, 'timeout.hard')
  if (lockTtl !== undefined) resolved.lockTtl = positiveMs(lockTtl, 'lockTtl') ?? defaults.lockTtl
  if (lockWait !== undefined) resolved.lockWait = parseDuration(lockWait, 'lockWait')
  return resolved
}

function optionalMs (value: Duration | undefined, name: string): number | undefined {
  return value === undefined ? undefined : parseDuration(value, name)
}

function positiveMs (value: Duration | undefined, name: string): number | undefined {
  const ms = optionalMs(value, name)
  if (ms === 0) throw new TypeError(`${name} must be longer than 0 ms`)
  return ms
}
