// The rate-limit allow list: client addresses and CIDRs (IPv4 and IPv6) that are never limited.
import { BlockList, isIP } from 'node:net'
import { clientIpKey } from './keys.js'
import { AllowListError } from '../errors/index.js'

// One text per address: an IPv4-mapped IPv6 address as its IPv4 form, zone ids dropped.
function canonical (address: string): { text: string, type: 'ipv4' | 'ipv6' } | undefined {
  const text = clientIpKey(address, 128)
  const version = isIP(text)
  return version === 0 ? undefined : { text, type: version === 4 ? 'ipv4' : 'ipv6' }
}

/**
 * A matcher for client addresses from entries such as '10.0.0.7', '10.0.0.0/8', '2001:db8::/32'.
 * Undefined when there are no entries. Throws AllowListError naming `name` for a malformed entry.
 */
export function buildAllowList (entries: readonly string[], name = 'RATE_LIMIT_ALLOW_LIST'): ((ip: string) => boolean) | undefined {
  if (entries.length === 0) return undefined
  const list = new BlockList()
  for (const entry of entries) {
    const [address = '', prefix, extra] = entry.trim().split('/')
    const parsed = canonical(address)
    const invalid = (): AllowListError =>
      new AllowListError(`${name} must list IP addresses or CIDRs such as 10.0.0.0/8 or 2001:db8::/32, got ${JSON.stringify(entry)}`)
    if (parsed === undefined || extra !== undefined) throw invalid()
    if (prefix === undefined) {
      list.addAddress(parsed.text, parsed.type)
      continue
    }
    const bits = Number(prefix)
    // A mapped IPv6 CIDR (::ffff:10.0.0.0/104) becomes the IPv4 one (/8).
    const mappedShift = parsed.type === 'ipv4' && isIP(address.replace(/^\[|\]$/g, '')) === 6 ? 96 : 0
    const maxBits = parsed.type === 'ipv4' ? 32 : 128
    if (!/^\d+$/.test(prefix) || bits - mappedShift < 0 || bits - mappedShift > maxBits) throw invalid()
    list.addSubnet(parsed.text, bits - mappedShift, parsed.type)
  }
  return (ip) => {
    const parsed = canonical(ip)
    return parsed !== undefined && list.check(parsed.text, parsed.type)
  }
}
