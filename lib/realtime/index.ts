// Realtime messaging: typed pub/sub and its transports, Redis Streams (and their in-process twin), the
// message validation they share, and presence.
export * from './memory-streams.js'
export * from './message-schema.js'
export * from './presence.js'
export * from './pubsub.js'
export * from './streams.js'
export * from './transport.js'
