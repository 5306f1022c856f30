// Shared setup for the session store tests: a client configured the way the app configures it, a
// store over it (or over process memory), and the hand-off @fastify/session does (get, then adopt).
import { Redis } from 'ioredis'
import Type from 'typebox'
import type { RedisServer, TeardownScope } from '../../helpers/index.js'
import { MemorySessionBackend, RedisSessionBackend, SessionStore, UserSessions, type SessionLike, type SessionStoreOptions } from '../../../lib/session/index.js'

export const Payload = Type.Object({
  userId: Type.Optional(Type.String()),
  cart: Type.Optional(Type.Array(Type.String())),
  theme: Type.Optional(Type.String())
})

export async function connect (t: TeardownScope, server: RedisServer, keyPrefix?: string, commandTimeout = 1_000): Promise<Redis> {
  const client = new Redis({
    host: server.host,
    port: server.port,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout,
    retryStrategy: () => 100,
    lazyConnect: true,
    ...(keyPrefix === undefined ? {} : { keyPrefix })
  })
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  await client.connect()
  return client
}

export interface Clock { now: () => number, advance: (ms: number) => void }
export function clock (): Clock {
  let offset = 0
  return { now: () => Date.now() + offset, advance: (ms) => { offset += ms } }
}

export function makeStore (backend: 'memory' | Redis, options: Partial<SessionStoreOptions> = {}): { store: SessionStore, sessions: UserSessions } {
  const store = new SessionStore({
    backend: backend === 'memory' ? new MemorySessionBackend(options.now === undefined ? {} : { now: options.now }) : new RedisSessionBackend(backend),
    ttl: 7 * 86_400_000,
    idleTimeout: 86_400_000,
    absoluteTimeout: 30 * 86_400_000,
    schema: Payload,
    ...options
  })
  return { store, sessions: new UserSessions(store, options.now === undefined ? {} : { now: options.now }) }
}

/** A stand-in for @fastify/session's Session: payload fields, a cookie, and its id. */
export type TestSession = SessionLike & { sessionId: string }

export function newSession (sessionId: string, fields: Record<string, unknown> = {}): TestSession {
  return { sessionId, cookie: { originalMaxAge: 7 * 86_400_000, path: '/', httpOnly: true, secure: false, sameSite: 'lax' }, ...fields }
}

/** get() then adopt() within the callback, as the plugin does; null when there is no session. */
export function load (store: SessionStore, sessionId: string): Promise<TestSession | null> {
  return new Promise((resolve, reject) => {
    store.get(sessionId, (err, stored) => {
      if (err !== null && err !== undefined) { reject(err); return }
      if (stored === null || stored === undefined) { resolve(null); return }
      const session = { ...stored, sessionId }
      store.adopt(session)
      resolve(session)
    })
  })
}

export function save (store: SessionStore, session: TestSession): Promise<void> {
  return new Promise((resolve, reject) => store.set(session.sessionId, session, (err) => { if (err === undefined || err === null) resolve(); else reject(err) }))
}

export function destroy (store: SessionStore, sessionId: string): Promise<void> {
  return new Promise((resolve, reject) => store.destroy(sessionId, (err) => { if (err === undefined || err === null) resolve(); else reject(err) }))
}
