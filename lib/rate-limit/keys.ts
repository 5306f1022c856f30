// Pure key helpers: which client a request counts against, and the Redis keys of one limit.
import { isIP } from 'node:net'
import type { LimitKeys, RateLimitAlgorithm } from './types.js'

/** The eight 16-bit groups of an IPv6 address, or undefined when it is not one. */
function ipv6Groups (address: string): number[] | undefined {
  let text = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '')
  if (isIP(text) !== 6) return undefined
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text)
  if (v4 !== null) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number]
    text = text.slice(0, v4.index) + ((a << 8) | b).toString(16) + ':' + ((c << 8) | d).toString(16)
  }
  const [head = '', tail] = text.split('::')
  const parse = (part: string): number[] => part === '' ? [] : part.split(':').map((group) => parseInt(group, 16))
  const left = parse(head)
  if (tail === undefined) return left
  const right = parse(tail)
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right]
}

/** RFC 5952 text: lower-case, no leading zeros, the longest run of two or more zero groups as '::'. */
function formatIpv6 (groups: number[]): string {
  let bestStart = -1
  let bestLength = 1
  for (let i = 0; i < groups.length;) {
    if (groups[i] !== 0) { i++; continue }
    let j = i
    while (j < groups.length && groups[j] === 0) j++
    if (j - i > bestLength) { bestStart = i; bestLength = j - i }
    i = j
  }
  const hex = groups.map((group) => group.toString(16))
  if (bestStart === -1) return hex.join(':')
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`
}

/** A rate-limit key for a client address: `ip:` and its clientIpKey. */
export function ipRateLimitKey (ip: string, ipv6PrefixLength = 64): string {
  if (ipv6PrefixLength !== 64) return `ip:${clientIpKey(ip, ipv6PrefixLength)}`
  // Every request of a limited route asks this for its client: recent addresses answer from a map
  // (cleared when full) instead of a trim, a lower-casing and an address parse per request.
  let key = ipKeys.get(ip)
  if (key === undefined) {
    if (ipKeys.size >= IP_KEY_CACHE_SIZE) ipKeys.clear()
    key = `ip:${clientIpKey(ip, 64)}`
    ipKeys.set(ip, key)
  }
  return key
}

const IP_KEY_CACHE_SIZE = 10_000
const ipKeys = new Map<string, string>()

/**
 * The client a request counts against: an IPv4 address as is (an IPv4-mapped IPv6 address as its
 * IPv4 form), an IPv6 address as its /64 network (e.g. '2001:db8:1:2::/64'), since one host usually
 * holds a whole /64 and could otherwise rotate addresses to dodge the limit.
 * Anything that is not an IP address is returned unchanged (trimmed, lower-cased).
 */
export function clientIpKey (ip: string, ipv6PrefixLength = 64): string {
  const text = ip.trim().toLowerCase()
  if (isIP(text) === 4) return text
  const groups = ipv6Groups(text)
  if (groups === undefined) return text
  const mapped = groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff
  if (mapped) {
    const [hi = 0, lo = 0] = groups.slice(6)
    return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`
  }
  const bits = Math.max(0, Math.min(128, Math.trunc(ipv6PrefixLength)))
  if (bits === 128) return formatIpv6(groups)
  const network = groups.map((group, index) => {
    const keep = Math.max(0, Math.min(16, bits - index * 16))
    return keep === 0 ? 0 : group & (0xffff << (16 - keep)) & 0xffff
  })
  return `${formatIpv6(network)}/${bits}`
}

// Braces would move the Cluster hash tag; '%' is escaped so escaping cannot create collisions.
function escapeTagText (text: string): string {
  return text.replace(/[%{}]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`)
}

export interface LimitKeyOptions {
  /** Prefix of every rate-limit key (after the client's own keyPrefix, if any). Default 'rl:'. */
  namespace?: string
  /** The route or limit this key belongs to, e.g. 'POST/login'. */
  scope: string
  /** Who is counted: a client IP key, a user id, … */
  id: string
  /** Each algorithm keeps its own counter (an integer vs a timestamp), so switching one never misreads the other. */
  algorithm?: RateLimitAlgorithm
}

/**
 * The Redis keys of one limit: `<namespace>{<scope>|<id>}:f` (fixed) or `…:g` (sliding, GCRA),
 * `…:s` (strikes) and `…:b` (ban). The
 * hash tag covers scope and id, so the three land in one Cluster slot while different clients and
 * routes spread over all slots. The client's keyPrefix must not contain '{'.
 */
export function buildLimitKeys ({ namespace = 'rl:', scope, id, algorithm = 'fixed' }: LimitKeyOptions): LimitKeys {
  const base = `${limitKeyPrefix(namespace, scope)}${escapeTagText(id)}}`
  return { counter: `${base}:${algorithm === 'sliding' ? 'g' : 'f'}`, strikes: `${base}:s`, ban: `${base}:b` }
}

/** The part of a limit's keys before the id, `<namespace>{<scope>|`, computed once per limit. */
export function limitKeyPrefix (namespace = 'rl:', scope: string): string {
  return `${namespace}{${escapeTagText(scope)}|`
}
