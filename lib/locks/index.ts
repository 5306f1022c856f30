// Distributed locks: the primitive on a bare client (store.ts; the cache's stampede lock uses it too)
// and app.locks with fencing tokens, extension and withLock (locks.ts).
export * from './locks.js'
