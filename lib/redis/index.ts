// The Redis connection: config → ioredis options, live state, failover waits, start-up diagnostics,
// the least-privilege ACL rule, and the command helpers (scripts by SHA, bounded waits) the features share.
export * from './acl.js'
export * from './command.js'
export * from './diagnostics.js'
export * from './failover.js'
export * from './monitor.js'
export * from './options.js'
export * from './refusals.js'
export * from './sentinel-watch.js'
export * from './bounded-client.js'
export * from './cluster-close.js'
