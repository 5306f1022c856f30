// Polling helpers: tests wait on real processes, so every wait is bounded and
// says what it was waiting for when it gives up.

export function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Thrown by a probe to stop waiting at once (e.g. the process it waits on has exited). */
export class WaitAbortedError extends Error {
  override name = 'WaitAbortedError'
}

export interface WaitForOptions {
  /** What is awaited, for the timeout message. */
  what: string
  timeoutMs?: number
  intervalMs?: number
}

/**
 * Calls `probe` until it returns something other than `undefined` or `false`, and
 * returns that. A probe that throws counts as "not yet" (its error is reported
 * on timeout), except for WaitAbortedError which is rethrown immediately.
 */
export async function waitFor<T> (
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  { what, timeoutMs = 10_000, intervalMs = 50 }: WaitForOptions
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last = 'the condition was never met'
  for (;;) {
    try {
      const value = await probe()
      if (value !== undefined && value !== false) return value
    } catch (err) {
      if (err instanceof WaitAbortedError) throw err
      last = err instanceof Error ? err.message : String(err)
    }
    if (Date.now() >= deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what} (last: ${last})`)
    }
    await sleep(intervalMs)
  }
}
