// Configuration: the TypeBox schema (the one source of truth), loading and validation with one line per
// problem, durations, and the logger options that censor secrets.
export * from './did-you-mean.js'
export * from './duration.js'
export * from './load.js'
export * from './logger.js'
export * from './schema.js'
