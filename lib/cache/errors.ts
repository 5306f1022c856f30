// Errors a caller of the cache can see. Redis failures are never among them: the cache turns those
// into misses. These are caller bugs (a bad key, a value that breaks its schema) or loader outcomes.

/** A key that can never be stored: empty, over 1 KB, or holding control characters. */
export class CacheKeyError extends TypeError {
  override name = 'CacheKeyError'
  readonly code = 'FRS_CACHE_KEY_INVALID'
}

/** A namespace name that cannot be used in a key. */
export class CacheNamespaceError extends TypeError {
  override name = 'CacheNamespaceError'
  readonly code = 'FRS_CACHE_NAMESPACE_INVALID'
}

/** A value given to `set` or returned by a loader that does not match the schema passed with it. */
export class CacheValueError extends TypeError {
  override name = 'CacheValueError'
  readonly code = 'FRS_CACHE_VALUE_INVALID'
  constructor (message: string, readonly key: string, readonly errors: readonly string[]) {
    super(message)
  }
}

/** The loader ran past `timeout.hard` and no stale value was left to serve. It keeps running and fills the cache. */
export class CacheTimeoutError extends Error {
  override name = 'CacheTimeoutError'
  readonly code = 'FRS_CACHE_LOADER_TIMEOUT'
  constructor (readonly key: string, readonly timeoutMs: number) {
    super(`The loader for cache key ${JSON.stringify(key)} did not finish within ${timeoutMs} ms (timeout.hard); raise timeout.hard or make the loader faster`)
  }
}
