// The name someone most likely meant, for "did you mean …?" in errors and warnings (a misspelt
// variable, a typo in a route's config.cache or config.rateLimit).

/** The closest of `known` to `name` (case and `_` ignored first), or undefined when none is close. */
export function closestName (name: string, known: Iterable<string>): string | undefined {
  const bare = (text: string): string => text.replace(/_/g, '').toLowerCase()
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of known) {
    const distance = bare(candidate) === bare(name) ? 0 : editDistance(candidate.toLowerCase(), name.toLowerCase())
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  return bestDistance <= Math.max(2, Math.floor(name.length / 5)) ? best : undefined
}

/** ": did you mean X?" when a known name is close, else "". */
export function didYouMean (name: string, known: Iterable<string>): string {
  const meant = closestName(name, known)
  return meant === undefined ? '' : `: did you mean ${meant}?`
}

/** Levenshtein distance: insertions, deletions and substitutions. */
export function editDistance (a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    previous = current
  }
  return previous[b.length] ?? 0
}
