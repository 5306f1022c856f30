// The trace context a pub/sub message carries, written as JSON whitespace.
//
// A message is JSON; JSON allows whitespace before a value, and every JSON reader skips it. So the
// publisher's W3C traceparent (version 00: 32 hex digits of trace id, 16 of span id, 2 of flags) goes
// in front of the JSON as 2 bits per whitespace character (space, tab, LF, CR) after a two-CR marker:
// 102 characters that any subscriber, of this release or an earlier one, or outside the suite, parses
// away with the message. JSON.stringify never writes leading whitespace, so the marker cannot come
// from a message itself. Written only while a tracing subscriber listens; read only by one.
const SYMBOLS = [' ', '\t', '\n', '\r'] as const
const MARKER = '\r\r'
const HEX_DIGITS = 50
const PREFIX_LENGTH = MARKER.length + HEX_DIGITS * 2
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/** The payload with `traceparent` in front, or the payload unchanged when there is none to carry. */
export function withTraceparent (payload: string, traceparent: string | undefined): string {
  const match = traceparent === undefined ? null : TRACEPARENT.exec(traceparent)
  if (match === null) return payload
  const hex = (match[1] ?? '') + (match[2] ?? '') + (match[3] ?? '')
  let prefix = MARKER
  for (let i = 0; i < hex.length; i++) {
    const digit = parseInt(hex[i] ?? '0', 16)
    prefix += (SYMBOLS[digit >> 2] ?? ' ') + (SYMBOLS[digit & 3] ?? ' ')
  }
  return prefix + payload
}

/** The traceparent a payload carries, or undefined. */
export function traceparentOf (payload: string): string | undefined {
  if (payload.length < PREFIX_LENGTH || !payload.startsWith(MARKER)) return undefined
  let hex = ''
  for (let i = MARKER.length; i < PREFIX_LENGTH; i += 2) {
    const high = SYMBOLS.indexOf(payload[i] as typeof SYMBOLS[number])
    const low = SYMBOLS.indexOf(payload[i + 1] as typeof SYMBOLS[number])
    if (high < 0 || low < 0) return undefined
    hex += ((high << 2) | low).toString(16)
  }
  return `00-${hex.slice(0, 32)}-${hex.slice(32, 48)}-${hex.slice(48)}`
}
