// Schema support: a compiled validator and a stable hash per TypeBox schema, computed once and
// memoised by schema object (schemas are module-level constants in practice, so this stays small).
import { createHash } from 'node:crypto'
import type { TSchema } from 'typebox'
import { Compile, type Validator } from 'typebox/compile'

export interface CompiledSchema {
  /** Stored in every entry written with this schema: a changed shape after a deploy is a miss, not a crash. */
  hash: string
  check: (value: unknown) => boolean
  /** Up to a few readable error lines, for CacheValueError and debug logs. */
  errors: (value: unknown) => string[]
}

const compiled = new WeakMap<TSchema, CompiledSchema>()

export function compileSchema (schema: TSchema): CompiledSchema {
  let entry = compiled.get(schema)
  if (entry === undefined) {
    const validator: Validator = Compile(schema)
    entry = {
      hash: schemaHash(schema),
      check: (value) => validator.Check(value),
      errors: (value) => validator.Errors(value).slice(0, 5).map((e) => `${e.instancePath || '/'} ${e.message}`)
    }
    compiled.set(schema, entry)
  }
  return entry
}

/** SHA-256 of the schema's JSON with sorted keys, shortened: equal shapes hash equal across processes. */
export function schemaHash (schema: TSchema): string {
  return createHash('sha256').update(stableJson(schema)).digest('base64url').slice(0, 16)
}

function stableJson (value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const fields = Object.keys(value).sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`)
    return `{${fields.join(',')}}`
  }
  // RegExp patterns and other non-JSON values still need a stable text form.
  return typeof value === 'function' ? String(value) : JSON.stringify(value) ?? 'null'
}
