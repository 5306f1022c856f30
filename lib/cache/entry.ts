// The entry envelope: what the cache stores in Redis (as JSON) and keeps in memory (as an object).
// It carries everything a reader needs to judge the value without another lookup: when it turns
// stale and when it is gone for good, the versions of its namespace generation and tags at write
// time, and the hash of the schema it was validated with.
import type { CompiledSchema } from './schema.js'

export const ENVELOPE_FORMAT = 1

export interface Envelope {
  format: typeof ENVELOPE_FORMAT
  value: unknown
  /** ms since the epoch, when the value was produced. */
  createdAt: number
  /** Logical expiry: fresh before it. */
  expiresAt: number
  /** Grace expiry: between expiresAt and this the value may be served stale; Redis drops it at this time. */
  staleUntil: number
  /** The namespace generation when written; clear() bumps it so older entries stop matching. */
  generation: string
  /** tag → version when written; invalidateTags() bumps versions so older entries stop matching. */
  tags: Record<string, string>
  schemaHash?: string
}

export function encodeEnvelope (envelope: Envelope): string {
  return JSON.stringify(envelope)
}

/** Parses an envelope; anything unreadable (another writer, an old format) is simply not an entry. */
export function decodeEnvelope (raw: string): Envelope | undefined {
  let parsed: unknown
  try {
    parsed = JSON.parse(raw)
  } catch {
    return undefined
  }
  if (parsed === null || typeof parsed !== 'object') return undefined
  const e = parsed as Partial<Envelope>
  const valid = e.format === ENVELOPE_FORMAT && 'value' in e &&
    typeof e.createdAt === 'number' && typeof e.expiresAt === 'number' && typeof e.staleUntil === 'number' &&
    typeof e.generation === 'string' && e.tags !== null && typeof e.tags === 'object'
  return valid ? e as Envelope : undefined
}

export function isFresh (envelope: Envelope, now = Date.now()): boolean {
  return now < envelope.expiresAt
}

/** Fresh, or stale but still within its grace period. */
export function isUsable (envelope: Envelope, now = Date.now()): boolean {
  return now < envelope.staleUntil
}

/** Current version of a namespace generation or tag key; undefined when it was not read. */
export type VersionOf = (key: string) => string | undefined

/** The tags an envelope carries whose version key was not read along with it. */
export function unreadTags (envelope: Envelope, tagKey: (tag: string) => string, versionOf: VersionOf): string[] {
  return Object.keys(envelope.tags).filter((tag) => versionOf(tagKey(tag)) === undefined)
}

/** True when neither clear() nor invalidateTags() ran since the envelope was written. */
export function versionsMatch (envelope: Envelope, generationKey: string, tagKey: (tag: string) => string, versionOf: VersionOf): boolean {
  if (envelope.generation !== versionOf(generationKey)) return false
  for (const [tag, version] of Object.entries(envelope.tags)) {
    if (versionOf(tagKey(tag)) !== version) return false
  }
  return true
}

export type SchemaVerdict = 'ok' | 'schema-changed' | 'invalid'

/**
 * Judges a value arriving from Redis against the caller's schema. A different schema hash means the
 * shape changed since the write (a deploy): a miss without even looking at the value.
 */
export function checkSchema (envelope: Envelope, schema: CompiledSchema | undefined): SchemaVerdict {
  if (schema === undefined) return 'ok'
  if (envelope.schemaHash !== undefined && envelope.schemaHash !== schema.hash) return 'schema-changed'
  return schema.check(envelope.value) ? 'ok' : 'invalid'
}
