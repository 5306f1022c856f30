// REDIS_FAILOVER_WAIT (DESIGN.md §3): a failover is not an outage. While the connection is being
// re-established, and for at most `budgetMs` counted from the moment it was lost, commands wait in
// ioredis' offline queue instead of failing; the queue is sent as soon as the client is ready again.
// When the budget runs out the queue is rejected and the client is back to failing fast (offline
// queue off), so an outage older than the budget costs what it cost before: an immediate error, and
// no memory (the queue holds at most what arrives during one budget).
//
// The switch happens on connection events, once per outage: nothing is added to a command's path
// while connected (STYLE.md point 7). ioredis 6 reads `enableOfflineQueue`, `commandTimeout` and
// `maxRetriesPerRequest` from `client.options` at the moment it needs them, which is what makes a
// per-outage switch possible without wrapping `sendCommand`.
import type { Redis } from 'ioredis'

export interface FailoverWaitOptions {
  /** REDIS_FAILOVER_WAIT in ms; 0 disables the wait (every command fails fast while disconnected). */
  budgetMs: number
  /** Called once per outage when the budget ran out with the connection still down. */
  onExpired?: (lostForMs: number, rejected: number) => void
}

/** The error a waiting command gets when the connection did not come back within the budget. */
export class FailoverWaitExpiredError extends Error {
  override name = 'FailoverWaitExpiredError'
  readonly code = 'FRS_REDIS_FAILOVER_WAIT_EXPIRED'
}

interface InternalQueues {
  offlineQueue: { length: number }
  flushQueue: (error: Error, options: { offlineQueue: boolean, commandQueue: boolean }) => void
}

/**
 * Attaches the bounded failover wait to a standalone or Sentinel client built with the bounded
 * options (offline queue off, `maxRetriesPerRequest: 0`). Returns a function that detaches it.
 * Cluster clients are not handled here: their failover is followed by MOVED redirections and slot
 * refreshes inside one command's retries (lib/redis-options.ts).
 */
export function attachFailoverWait (client: Redis, options: FailoverWaitOptions): () => void {
  const settings = client.options
  const fastFail = {
    enableOfflineQueue: settings.enableOfflineQueue,
    commandTimeout: settings.commandTimeout,
    maxRetriesPerRequest: settings.maxRetriesPerRequest
  }
  let connected = false
  let lostAt: number | undefined
  let timer: NodeJS.Timeout | undefined

  const restore = (): void => {
    if (timer !== undefined) clearTimeout(timer)
    timer = undefined
    settings.enableOfflineQueue = fastFail.enableOfflineQueue
    settings.commandTimeout = fastFail.commandTimeout
    settings.maxRetriesPerRequest = fastFail.maxRetriesPerRequest
  }

  const expire = (): void => {
    const since = lostAt ?? Date.now()
    restore()
    const queues = client as unknown as InternalQueues
    const rejected = queues.offlineQueue.length
    queues.flushQueue(new FailoverWaitExpiredError(`the Redis connection was lost ${Date.now() - since} ms ago and did not come back within REDIS_FAILOVER_WAIT (${options.budgetMs} ms)`),
      { offlineQueue: true, commandQueue: false })
    options.onExpired?.(Date.now() - since, rejected)
  }

  const onReady = (): void => {
    // ioredis emits 'ready' before it sends the offline queue; restoring first is fine: queued
    // commands go out on the now writable stream, and new ones fail fast again on the next loss.
    connected = true
    lostAt = undefined
    restore()
  }

  const onClose = (): void => {
    // A failed reconnect attempt inside the same outage, boot, or the app closing: nothing to wait for.
    if (!connected || client.status === 'end') return
    connected = false
    lostAt = Date.now()
    if (options.budgetMs <= 0) return
    // ioredis emits 'close' on the next tick, after its close handler has rejected the commands in
    // flight (their outcome is unknown: a resent INCR could count twice). With `maxRetriesPerRequest: 0`
    // that handler would also empty the offline queue on every later reconnect attempt: lift it.
    settings.maxRetriesPerRequest = null
    settings.enableOfflineQueue = true
    // A queued command's own timer starts when it is issued; it must outlast the wait for the
    // connection (the budget, enforced by `expire`) plus the usual bound on the reply.
    settings.commandTimeout = options.budgetMs + (fastFail.commandTimeout ?? 0)
    timer = setTimeout(expire, Math.max(0, lostAt + options.budgetMs - Date.now()))
    timer.unref()
  }

  const onEnd = (): void => {
    // No more reconnects (quit, disconnect, or REDIS_MAX_RETRIES spent): ioredis has already rejected
    // everything queued; keep the client failing fast.
    connected = false
    lostAt = undefined
    restore()
  }

  if (client.status === 'ready') connected = true
  client.on('ready', onReady)
  client.on('close', onClose)
  client.on('end', onEnd)
  return () => {
    client.off('ready', onReady)
    client.off('close', onClose)
    client.off('end', onEnd)
    restore()
  }
}
