// Session lifecycle events behind app.sessions.on(): created, refreshed, revoked, expired. Each is
// raised by the one instance that did the thing (its write created the key, its delete removed it, its
// claim won the expiry: see the store and expiry-sweep.ts), never from keyspace notifications, so they
// work on Cluster and under the least-privilege ACL user.
//
// Handlers never run inside a request's path: events wait in a bounded queue and are handed over on
// the next turn of the event loop. A handler that throws or rejects is logged (at most one line per
// 10 s) and counted; once 10,000 events wait or have handlers still running (async handlers far slower
// than events arrive), new events are dropped and counted. Neither ever fails a request.
import { SessionEventError } from '../errors/index.js'

export type SessionEventName = 'created' | 'refreshed' | 'revoked' | 'expired'

/** Why each event happened. */
export interface SessionEventReasons {
  /** new: a request saved it for the first time; migrated: moved from the store used before (SESSION_LEGACY_PREFIX). */
  created: 'new' | 'migrated'
  /** activity: its expiry moved at the refresh cadence; change: a request saved changed data. */
  refreshed: 'activity' | 'change'
  /**
   * logout: session.destroy(); regenerated: regenerate() replaced it; revoked: app.sessions.revoke or
   * revokeAll; capped: past SESSION_MAX_PER_USER; invalid: its stored data failed the schema; cleared: store.clear().
   */
  revoked: 'logout' | 'regenerated' | 'revoked' | 'capped' | 'invalid' | 'cleared'
  /**
   * timeout: Redis ended it at its deadline and the sweep noticed; idle, absolute, lifetime: a request
   * found it past that deadline first (its idle timeout, its absolute timeout, its cookie's expiry).
   */
  expired: 'timeout' | 'idle' | 'absolute' | 'lifetime'
}

export interface SessionEvent<E extends SessionEventName = SessionEventName> {
  type: E
  /** The session's public id (app.sessions.idOf): a hash of the session id, never usable as a cookie. */
  id: string
  /** The user the session was indexed under (the store's userKey field), when it had one. */
  userId: string | undefined
  reason: SessionEventReasons[E]
  /** Epoch milliseconds when this instance raised it. */
  at: number
}

export type SessionEventHandler<E extends SessionEventName = SessionEventName> = (event: SessionEvent<E>) => void | Promise<void>

export interface SessionEventStats {
  /** Events handed to handlers. */
  eventsDelivered: number
  /** Events not delivered because 10,000 were already waiting or running (handlers too slow). */
  eventsDropped: number
  /** Handler calls that threw or rejected. */
  eventHandlerErrors: number
}

export interface SessionEventsLogger { warn: (obj: object, msg: string) => void }

/** Events queued plus handler calls still running, past which new events are dropped (memory stays bounded). */
const MAX_PENDING = 10_000
const LOG_EVERY_MS = 10_000

export class SessionEvents {
  readonly #handlers: { [E in SessionEventName]: Array<SessionEventHandler<E>> } = { created: [], refreshed: [], revoked: [], expired: [] }
  readonly #logger: SessionEventsLogger
  readonly #now: () => number
  #queue: SessionEvent[] = []
  /** Handler promises not settled yet: with the queue, what MAX_PENDING bounds. */
  #inFlight = 0
  #scheduled = false
  readonly #stats: SessionEventStats = { eventsDelivered: 0, eventsDropped: 0, eventHandlerErrors: 0 }
  #loggedAt = -Infinity
  #unlogged = 0

  constructor (options: { logger?: SessionEventsLogger, now?: () => number } = {}) {
    this.#logger = options.logger ?? { warn: () => {} }
    this.#now = options.now ?? Date.now
  }

  on<E extends SessionEventName> (type: E, handler: SessionEventHandler<E>): void {
    if (!(type in this.#handlers)) throw new SessionEventError(`app.sessions.on: unknown event ${JSON.stringify(type)}, expected created, refreshed, revoked or expired`)
    if (typeof handler !== 'function') throw new SessionEventError('app.sessions.on: the handler must be a function')
    this.#handlers[type].push(handler)
  }

  off<E extends SessionEventName> (type: E, handler: SessionEventHandler<E>): void {
    const list = this.#handlers[type] as Array<SessionEventHandler<E>>
    const i = list.indexOf(handler)
    if (i !== -1) list.splice(i, 1)
  }

  /** true when some handler listens to `type`: callers skip building events nobody reads. */
  wants (type: SessionEventName): boolean {
    return this.#handlers[type].length > 0
  }

  /** Queues an event for its handlers, on the next turn of the event loop; never throws. */
  emit<E extends SessionEventName> (type: E, id: string, userId: string | undefined, reason: SessionEventReasons[E]): void {
    if (this.#handlers[type].length === 0) return
    if (this.#queue.length + this.#inFlight >= MAX_PENDING) {
      this.#dropped(1)
      return
    }
    this.#queue.push({ type, id, userId, reason, at: this.#now() } as SessionEvent)
    if (!this.#scheduled) {
      this.#scheduled = true
      setImmediate(this.#flush)
    }
  }

  /**
   * Runs the handlers of one event now and resolves once every one has settled (for the expiry sweep,
   * which acknowledges its claim only then: at-least-once). Never rejects.
   */
  async deliver (event: SessionEvent): Promise<void> {
    const pending = this.#run(event)
    if (pending.length > 0) await Promise.all(pending)
  }

  #dropped (n: number): void {
    this.#stats.eventsDropped += n
    this.#complain('session events dropped: 10,000 are waiting for or running in slow handlers')
  }

  stats (): SessionEventStats {
    return { ...this.#stats }
  }

  readonly #flush = (): void => {
    this.#scheduled = false
    const queue = this.#queue
    this.#queue = []
    for (const event of queue) this.#run(event)
  }

  #run (event: SessionEvent): Array<Promise<void>> {
    const pending: Array<Promise<void>> = []
    const handlers = this.#handlers[event.type] as SessionEventHandler[]
    if (handlers.length > 0) this.#stats.eventsDelivered++
    for (const handler of handlers) {
      try {
        const result = handler(event)
        if (result !== undefined && typeof (result as Promise<void>).then === 'function') {
          this.#inFlight++
          pending.push(Promise.resolve(result).then(() => { this.#inFlight-- }, (err: unknown) => {
            this.#inFlight--
            this.#failed(event, err)
          }))
        }
      } catch (err) {
        this.#failed(event, err)
      }
    }
    return pending
  }

  #failed (event: SessionEvent, err: unknown): void {
    this.#stats.eventHandlerErrors++
    const e = err instanceof Error ? { name: err.name, message: err.message } : { message: String(err) }
    this.#complain(`a session ${event.type} event handler failed`, { err: e })
  }

  /** One log line per LOG_EVERY_MS at most, saying how many were not logged since. */
  #complain (msg: string, obj: object = {}): void {
    const now = this.#now()
    if (now - this.#loggedAt < LOG_EVERY_MS) {
      this.#unlogged++
      return
    }
    this.#logger.warn({ ...obj, notLoggedSince: this.#unlogged }, msg)
    this.#loggedAt = now
    this.#unlogged = 0
  }
}
