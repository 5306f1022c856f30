// Errors a user of the HTTP response cache can hit: all at route registration, never per request.

/** A route's `config.cache` that cannot work: a bad duration, tag or header name, or the wrong method. */
export class HttpCacheConfigError extends TypeError {
  override name = 'HttpCacheConfigError'
  readonly code = 'FRS_HTTP_CACHE_CONFIG_INVALID'
}
