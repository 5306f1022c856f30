// Durations are milliseconds (a number) or a string with a unit: '300ms', '5s', '5m', '2h', '7d',
// '1 minute'. Bare seconds are never accepted: a bare number string is milliseconds, so '30' is 30 ms.
import { DurationError } from '../errors/index.js'

export type Duration = number | string

const UNITS: Array<[RegExp, number]> = [
  [/^(ms|msecs?|milliseconds?)$/, 1],
  [/^(s|secs?|seconds?)$/, 1_000],
  [/^(m|mins?|minutes?)$/, 60_000],
  [/^(h|hrs?|hours?)$/, 3_600_000],
  [/^(d|days?)$/, 86_400_000],
  [/^(w|weeks?)$/, 604_800_000]
]
const UNIT_NAMES = 'ms|msecs?|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|weeks?'

/** The JSON-schema pattern of a duration string; the config schema validates with it. */
export const DURATION_PATTERN = `^\\s*\\d+(\\.\\d+)?\\s*(${UNIT_NAMES})?\\s*$`
const PATTERN = new RegExp(DURATION_PATTERN, 'i')

/** Parse a duration into whole milliseconds; returns undefined when the value is not a duration. */
export function tryParseDuration (value: unknown): number | undefined {
  if (typeof value === 'number') {
    return Number.isFinite(value) && value >= 0 ? Math.round(value) : undefined
  }
  if (typeof value !== 'string' || !PATTERN.test(value)) return undefined
  const [, amount = '', unit = 'ms'] = /^\s*([\d.]+)\s*([a-z]*)\s*$/i.exec(value) ?? []
  const factor = UNITS.find(([names]) => names.test(unit.toLowerCase() || 'ms'))?.[1]
  return factor === undefined ? undefined : Math.round(Number(amount) * factor)
}

/** Parse a duration into milliseconds or throw a DurationError (a TypeError) naming what was expected. */
export function parseDuration (value: Duration, name = 'duration'): number {
  const ms = tryParseDuration(value)
  if (ms === undefined) {
    throw new DurationError(`${name} must be a duration in milliseconds or with a unit such as '300ms', '5m' or '7d', got ${JSON.stringify(value)}`)
  }
  return ms
}
