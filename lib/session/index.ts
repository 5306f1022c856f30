// The session library: a store for @fastify/session over Redis or process memory, and the per-user
// index behind app.sessions. Free of Fastify: plugins/session.ts wires it in.
export { PayloadCodec, type PayloadCodecOptions, type OpenFailure } from './payload-codec.js'
export { SessionStore, whileRegenerating, type SessionStoreOptions, type SessionLogger, type ClientInfo } from './store.js'
export {
  SessionEvents, type SessionEvent, type SessionEventName, type SessionEventHandler, type SessionEventReasons, type SessionEventStats
} from './events.js'
export { ExpirySweep, type ExpirySweepOptions } from './expiry-sweep.js'
export { UserSessions, type SessionInfo } from './user-sessions.js'
export { RedisSessionBackend, type RedisClient } from './redis-backend.js'
export { MemorySessionBackend } from './memory-backend.js'
export { SessionCookieSigner, type Unsigned } from './signer.js'
export { ConnectRedisSessions, type LegacySessionSource, type LegacySession } from './legacy.js'
export { RequestBudget } from './deadline.js'
export { sessionHandle, sessionKey, userIndexKey, allSessionsKey, ALL_SESSIONS_KEYS, EXPIRY_LEDGER_KEYS, expiryLedgerKeys } from './keys.js'
export type {
  SessionBackend, SessionLike, SessionMeta, SessionStats, SessionWrite, StoredSession, IndexedSession, WriteResult, LoadRefresh, DestroyResult, ExpiredSession
} from './types.js'
