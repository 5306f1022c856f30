// Acknowledged-write bookkeeping for failover and durability cases: which writes the app answered 200
// for (Redis acknowledged them), how many failed, how long writes were failing, and which
// acknowledged ones a fresh client can no longer read.
import { request } from 'undici'
import { cookiePair } from './fault-app.js'
import type { LoadResult, LoadRun } from './load.js'

export interface WriteReport {
  acknowledged: LoadResult[]
  failed: LoadResult[]
  /**
   * ms from the start of the first failed write to the end of the last failed one after `fromEpoch`:
   * how long writes were not being accepted. 0 when none failed.
   */
  gapMs: number
  /** Longest time between two consecutive acknowledgements (by completion), ms. */
  longestSilenceMs: number
}

export function analyzeWrites (run: LoadRun, fromEpoch: number): WriteReport {
  const writes = run.results.filter((r) => r.tag === 'write')
  const acknowledged = writes.filter((r) => r.status === 200)
  const failed = writes.filter((r) => r.status !== 200)
  const after = failed.filter((r) => run.t0 + r.startedAt >= fromEpoch - 1_000)
  const first = Math.min(...after.map((r) => r.startedAt))
  const last = Math.max(...after.map((r) => r.endedAt ?? r.startedAt))
  const ends = acknowledged.map((r) => r.endedAt ?? 0).sort((a, b) => a - b)
  let longestSilenceMs = 0
  for (let i = 1; i < ends.length; i++) longestSilenceMs = Math.max(longestSilenceMs, (ends[i] ?? 0) - (ends[i - 1] ?? 0))
  return { acknowledged, failed, gapMs: after.length === 0 ? 0 : last - first, longestSilenceMs }
}

/** The request body the write route stores for write `i`, so a read-back can check the value too. */
export function writeValue (i: number): string {
  return `v${i}`
}

/** Keys of acknowledged writes whose value is not what was written (missing or other). */
export async function lostWrites (acknowledged: readonly LoadResult[], read: (keys: string[]) => Promise<Array<string | null>>): Promise<LoadResult[]> {
  const lost: LoadResult[] = []
  const batch = 200
  for (let start = 0; start < acknowledged.length; start += batch) {
    const chunk = acknowledged.slice(start, start + batch)
    const values = await read(chunk.map((r) => `fault:w${r.i}`))
    chunk.forEach((r, index) => { if (values[index] !== writeValue(r.i)) lost.push(r) })
  }
  return lost
}

/**
 * The acknowledged sign-ins (POST /demo/login with userId `<prefix><i>`) whose session a fresh
 * request with the returned cookie no longer reads as that user: their indexes.
 */
export async function lostSignIns (baseUrl: string, acknowledged: readonly LoadResult[], prefix: string): Promise<number[]> {
  const lost: number[] = []
  for (const r of acknowledged) {
    const res = await request(`${baseUrl}/demo/me`, { headers: { cookie: cookiePair(r.headers['set-cookie']) ?? '' } })
    const body = await res.body.json() as { userId?: string }
    if (body.userId !== `${prefix}${r.i}`) lost.push(r.i)
  }
  return lost
}
