// The HTTP face of a decision, free of Fastify: the 429 error and the IETF RateLimit header values
// (draft-ietf-httpapi-ratelimit-headers: `RateLimit-Policy: "default";q=100;w=60` and
// `RateLimit: "default";r=99;t=60`, Structured Field lists of a quoted policy name with parameters).

/** A Structured Field string: printable ASCII only, with `\` and `"` escaped. */
function sfString (text: string): string {
  return `"${text.replace(/[^\x20-\x7e]/g, '_').replace(/[\\"]/g, (char) => `\\${char}`)}"`
}

function nonNegativeInteger (value: number): number {
  return Number.isFinite(value) ? Math.max(0, Math.trunc(value)) : 0
}

/** `"name";q=<quota>;w=<window seconds>`; `w` is left out when the window is not known. */
export function formatRateLimitPolicy (policy: string, quota: number, windowMs?: number): string {
  const window = windowMs === undefined ? '' : `;w=${Math.max(1, Math.ceil(windowMs / 1000))}`
  return `${sfString(policy)};q=${nonNegativeInteger(quota)}${window}`
}

/** `"name";r=<remaining>;t=<seconds until the quota is whole, or until a request passes when refused>`. */
export function formatRateLimit (policy: string, remaining: number, resetSeconds: number): string {
  return `${sfString(policy)};r=${nonNegativeInteger(remaining)};t=${nonNegativeInteger(resetSeconds)}`
}

/** `formatRateLimit` for one policy name, quoted once: the per-request part is two numbers. */
export function rateLimitFormatter (policy: string): (remaining: number, resetSeconds: number) => string {
  const head = `${sfString(policy)};r=`
  return (remaining, resetSeconds) => `${head}${nonNegativeInteger(remaining)};t=${nonNegativeInteger(resetSeconds)}`
}
