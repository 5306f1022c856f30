// Sessions in process memory, for development and tests without Redis (production refuses it at
// config time). Same semantics as the Redis backend: per-field writes, expiry, bounded indexes.
import { DATA_PREFIX, META } from './keys.js'
import { parseHash } from './redis-backend.js'
import type { DestroyResult, ExpiredSession, IndexedSession, SessionBackend, SessionWrite, StoredSession, WriteResult } from './types.js'

interface Entry { hash: Map<string, string>, expiresAt: number }

const SWEEP_INTERVAL_MS = 60_000
const MAX_EXPIRED = 10_000

export class MemorySessionBackend implements SessionBackend {
  readonly kind = 'memory'
  readonly #sessions = new Map<string, Entry>()
  readonly #users = new Map<string, Map<string, number>>()
  readonly #all = new Map<string, number>()
  /** Sessions removed because they expired, not yet claimed by claimExpired (bounded). */
  #expired: ExpiredSession[] = []
  readonly #now: () => number
  #lastSweep = 0

  constructor (options: { now?: () => number } = {}) {
    this.#now = options.now ?? Date.now
  }

  async load (handle: string): Promise<StoredSession | undefined> {
    const entry = this.#live(handle)
    return entry === undefined ? undefined : parseHash(Object.fromEntries(entry.hash))
  }

  async write (handle: string, write: SessionWrite): Promise<WriteResult> {
    this.#sweep(write.now)
    let entry = this.#live(handle)
    const created = entry === undefined
    if (entry === undefined) {
      if (write.mode === 'update') return { applied: 0 }
      entry = { hash: new Map(), expiresAt: 0 }
    } else if (write.mode === 'replace') {
      for (const field of [...entry.hash.keys()]) {
        if (field.startsWith(DATA_PREFIX) && !(field in write.set)) entry.hash.delete(field)
      }
    }
    for (const [field, value] of Object.entries(write.set)) entry.hash.set(field, value)
    for (const [field, value] of Object.entries(write.setIfAbsent)) if (!entry.hash.has(field)) entry.hash.set(field, value)
    for (const field of write.del) entry.hash.delete(field)
    const absolute = Number(entry.hash.get(META.absolute))
    const ttl = Number.isFinite(absolute) ? Math.min(write.ttlMs, absolute - write.now) : write.ttlMs
    if (ttl < 1) {
      this.#remove(handle)
      return { applied: 0 }
    }
    entry.expiresAt = write.now + ttl
    entry.hash.set(META.expires, String(entry.expiresAt))
    this.#sessions.set(handle, entry)
    this.#all.set(handle, entry.expiresAt)
    if (write.previousUserId !== undefined && write.previousUserId !== write.userId) this.#users.get(write.previousUserId)?.delete(handle)
    if (write.userId !== undefined) {
      let index = this.#users.get(write.userId)
      if (index === undefined) this.#users.set(write.userId, index = new Map())
      index.set(handle, entry.expiresAt)
      for (const [other, expiresAt] of index) if (expiresAt <= write.now) index.delete(other)
      return { applied: ttl, userSessions: index.size, created }
    }
    return { applied: ttl, created }
  }

  async destroy (handle: string, owner?: string): Promise<DestroyResult> {
    const entry = this.#live(handle)
    const user = entry?.hash.get(META.user)
    if (owner !== undefined && entry !== undefined && user !== owner) return { deleted: false, userId: user }
    if (owner !== undefined) this.#users.get(owner)?.delete(handle)
    this.#remove(handle)
    return { deleted: entry !== undefined, userId: user }
  }

  async claimExpired (now: number): Promise<ExpiredSession[]> {
    for (const [handle, entry] of this.#sessions) if (entry.expiresAt <= now) this.#expire(handle)
    const expired = this.#expired
    this.#expired = []
    return expired
  }

  /** One process, nothing to share: a claim is final. */
  async ackExpired (): Promise<void> {}

  async list (userId: string, now: number): Promise<IndexedSession[]> {
    const index = this.#users.get(userId)
    if (index === undefined) return []
    const live: IndexedSession[] = []
    for (const handle of index.keys()) {
      const stored = await this.load(handle)
      if (stored === undefined || stored.meta.userId !== userId || stored.meta.expiresAt <= now) index.delete(handle)
      else live.push({ handle, meta: stored.meta })
    }
    return live
  }

  async count (userId: string, now: number): Promise<number> {
    return [...(this.#users.get(userId)?.values() ?? [])].filter((expiresAt) => expiresAt > now).length
  }

  async countAll (now: number): Promise<number> {
    return [...this.#all.values()].filter((expiresAt) => expiresAt > now).length
  }

  async handles (now: number): Promise<string[]> {
    return [...this.#all].filter(([, expiresAt]) => expiresAt > now).map(([handle]) => handle)
  }

  #live (handle: string): Entry | undefined {
    const entry = this.#sessions.get(handle)
    if (entry !== undefined && entry.expiresAt <= this.#now()) {
      this.#expire(handle)
      return undefined
    }
    return entry
  }

  #expire (handle: string): void {
    const user = this.#sessions.get(handle)?.hash.get(META.user)
    if (this.#expired.length < MAX_EXPIRED) this.#expired.push({ handle, userId: user })
    this.#remove(handle)
  }

  #remove (handle: string): void {
    const user = this.#sessions.get(handle)?.hash.get(META.user)
    this.#sessions.delete(handle)
    this.#all.delete(handle)
    if (user !== undefined) {
      const index = this.#users.get(user)
      index?.delete(handle)
      if (index?.size === 0) this.#users.delete(user)
    }
  }

  // Expired sessions would otherwise stay until read again; a sweep a minute bounds the memory.
  #sweep (now: number): void {
    if (now - this.#lastSweep < SWEEP_INTERVAL_MS) return
    this.#lastSweep = now
    for (const [handle, entry] of this.#sessions) if (entry.expiresAt <= now) this.#expire(handle)
  }
}
