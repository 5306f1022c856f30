// The entry envelope: what the cache stores in Redis (as JSON) and keeps in memory (as an object).
// It carries everything a reader needs to judge the value without another lookup: when it turns
// stale and when it is gone for good, the versions of its namespace generation and tags at write
// time, and the hash of the schema it was validated with.
import type { CompiledSchema } from './schema.js'

export const ENVELOPE_FORMAT = 2

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
  schemaHash?: string | undefined
}

// The stored form is lean: a few header lines, then the value's JSON, so a read parses only the value.
//
//   2\n<createdAt>\n<expiresAt>\n<staleUntil>\n<generation>\n<schemaHash>\n<tag>\t<version>\t…\n<value JSON>
//
// Numbers are base 36; tags and keys can hold no control character (keys.ts), versions are digits,
// schema hashes base64url, so '\n' and '\t' never occur inside a header field.

const NO_TAGS: Record<string, string> = Object.freeze(Object.create(null) as Record<string, string>)

export function encodeEnvelope (envelope: Envelope, valueJson = JSON.stringify(envelope.value)): string {
  let tags = ''
  for (const tag in envelope.tags) tags += (tags === '' ? '' : '\t') + tag + '\t' + (envelope.tags[tag] ?? '')
  return `2\n${envelope.createdAt.toString(36)}\n${envelope.expiresAt.toString(36)}\n${envelope.staleUntil.toString(36)}\n${envelope.generation}\n${envelope.schemaHash ?? ''}\n${tags}\n${valueJson}`
}

/**
 * Parses an envelope; anything unreadable (another writer, an old format) is simply not an entry.
 * Every Redis-tier hit runs this: the header is read in place (no field array, no slices for the
 * numbers, base 36 read by hand where parseInt takes its generic radix path), so only the value's JSON
 * is parsed.
 */
export function decodeEnvelope (raw: string): Envelope | undefined {
  if (raw.charCodeAt(0) !== 50 || raw.charCodeAt(1) !== 10) return undefined // '2\n'
  const createdEnd = raw.indexOf('\n', 2)
  const expiresEnd = createdEnd === -1 ? -1 : raw.indexOf('\n', createdEnd + 1)
  const staleEnd = expiresEnd === -1 ? -1 : raw.indexOf('\n', expiresEnd + 1)
  const generationEnd = staleEnd === -1 ? -1 : raw.indexOf('\n', staleEnd + 1)
  const hashEnd = generationEnd === -1 ? -1 : raw.indexOf('\n', generationEnd + 1)
  const tagsEnd = hashEnd === -1 ? -1 : raw.indexOf('\n', hashEnd + 1)
  if (tagsEnd === -1) return undefined
  const expiresAt = base36(raw, createdEnd + 1, expiresEnd)
  const staleUntil = base36(raw, expiresEnd + 1, staleEnd)
  if (!Number.isFinite(expiresAt) || !Number.isFinite(staleUntil)) return undefined
  let value: unknown
  try {
    value = JSON.parse(raw.slice(tagsEnd + 1))
  } catch {
    return undefined
  }
  // No prototype: a tag named '__proto__' is a tag like any other. An entry without tags (most) shares
  // one frozen empty object: a prototype-less object is a dictionary, costly to make on every hit.
  let tags = NO_TAGS
  if (tagsEnd > hashEnd + 1) {
    tags = Object.create(null) as Record<string, string>
    const parts = raw.slice(hashEnd + 1, tagsEnd).split('\t')
    for (let i = 0; i + 1 < parts.length; i += 2) tags[parts[i] as string] = parts[i + 1] as string
  }
  return {
    format: ENVELOPE_FORMAT,
    value,
    createdAt: base36(raw, 2, createdEnd),
    expiresAt,
    staleUntil,
    generation: raw.slice(staleEnd + 1, generationEnd),
    tags,
    schemaHash: hashEnd === generationEnd + 1 ? undefined : raw.slice(generationEnd + 1, hashEnd)
  }
}

/** parseInt(raw.slice(from, end), 36) for what encodeEnvelope writes (an optional '-', then digits), without the slice. */
export function base36 (raw: string, from: number, end: number): number {
  const negative = raw.charCodeAt(from) === 45 // '-'
  let i = negative ? from + 1 : from
  let result = 0
  for (; i < end; i++) {
    const code = raw.charCodeAt(i)
    const digit = code >= 48 && code <= 57 ? code - 48 : code >= 97 && code <= 122 ? code - 87 : code >= 65 && code <= 90 ? code - 55 : -1
    if (digit === -1) break // as parseInt: the digits before the first other character
    result = result * 36 + digit
  }
  if (i === (negative ? from + 1 : from)) return Number.NaN
  return negative ? -result : result
}

/** Freezes a value shared by every reader of the memory tier, so no caller can change it for the others. */
export function deepFreeze<T> (value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key])
  }
  return value
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
  for (const tag in envelope.tags) {
    if (versionOf(tagKey(tag)) !== envelope.tags[tag]) return false
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
