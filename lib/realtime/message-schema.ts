// Decoding and validating messages that arrive over pub/sub or a stream, and logging the ones that
// fail: the first of a burst is logged with its errors, the rest of the burst only counted, so a
// misbehaving publisher cannot flood the logs.
import type { TSchema } from 'typebox'
import { Compile, type Validator } from 'typebox/compile'

const validators = new WeakMap<TSchema, Validator>()

/** A compiled validator per schema object, built once. */
export function validatorFor (schema: TSchema): Validator {
  let validator = validators.get(schema)
  if (validator === undefined) {
    validator = Compile(schema)
    validators.set(schema, validator)
  }
  return validator
}

export type Decoded = { ok: true, value: unknown } | { ok: false, errors: string[] }

/** JSON.parse, then the schema's check when there is one. */
export function decode (text: string, schema: TSchema | undefined): Decoded {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return { ok: false, errors: ['not valid JSON'] }
  }
  return check(value, schema)
}

export function check (value: unknown, schema: TSchema | undefined): Decoded {
  if (schema === undefined) return { ok: true, value }
  const validator = validatorFor(schema)
  if (validator.Check(value)) return { ok: true, value }
  return { ok: false, errors: validator.Errors(value).slice(0, 5).map((e) => `${e.instancePath || '/'} ${e.message}`) }
}

export interface MessageLogger {
  warn: (obj: object, msg?: string) => void
  error: (obj: object, msg?: string) => void
}

/** Once-per-burst logging of dropped messages, keyed by subscription (channel, pattern or stream group). */
export class DropLog {
  readonly #logger: MessageLogger | undefined
  readonly #burstMs: number
  readonly #bursts = new Map<string, { until: number, suppressed: number }>()

  constructor (logger: MessageLogger | undefined, burstMs = 10_000) {
    this.#logger = logger
    this.#burstMs = burstMs
  }

  dropped (key: string, fields: Record<string, unknown>, errors: string[], what: string): void {
    const now = Date.now()
    const burst = this.#bursts.get(key)
    if (burst !== undefined && now < burst.until) {
      burst.suppressed++
      return
    }
    this.#bursts.set(key, { until: now + this.#burstMs, suppressed: 0 })
    this.#logger?.warn({ ...fields, errors, droppedSinceLastLog: burst?.suppressed ?? 0 },
      `${what}: dropped a message that does not match its schema (further drops in the next ${this.#burstMs / 1000}s are only counted)`)
  }

  forget (key: string): void {
    this.#bursts.delete(key)
  }
}
