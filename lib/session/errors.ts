// Errors a caller of the session layer can see. Each carries a stable `code`; the Redis one also
// carries the HTTP status and headers Fastify's error handler applies (503 + Retry-After), so a
// failure inside a handler (regenerate, destroy, save) answers like one in the session hooks.

/** The session backend failed or did not answer in time. The message never holds driver text or ids. */
export class SessionUnavailableError extends Error {
  override name = 'SessionUnavailableError'
  readonly code = 'FRS_SESSION_UNAVAILABLE'
  readonly statusCode = 503
  readonly headers: Record<string, string>

  constructor (retryAfterSeconds: number, options?: ErrorOptions) {
    super('Sessions are temporarily unavailable. Please try again shortly.', options)
    this.headers = { 'retry-after': String(retryAfterSeconds) }
  }
}

/** A handler stored session data that breaks the payload schema: it would be discarded at the next load. */
export class SessionDataError extends TypeError {
  override name = 'SessionDataError'
  readonly code = 'FRS_SESSION_DATA_INVALID'
  constructor (readonly errors: readonly string[]) {
    super(`Session data does not match the session schema (${errors.join('; ')}); fix the handler or the schema`)
  }
}

/** request.session was read on a route that did not opt in with `config: { session: true }`. */
export class SessionNotEnabledError extends Error {
  override name = 'SessionNotEnabledError'
  readonly code = 'FRS_SESSION_NOT_ENABLED'
  constructor (url: string) {
    super(`request.session is only loaded on routes declared with config: { session: true } (route ${url})`)
  }
}

/**
 * A handler changed the session (a sign-in) but its cookie is Secure and the request came over plain
 * HTTP, so no cookie can be sent and nothing is stored: the response says so instead of the handler's
 * success. A deployment problem (HTTPS, or a TLS-terminating proxy missing from TRUST_PROXY), hence 500.
 */
export class SessionNotSetError extends Error {
  override name = 'SessionNotSetError'
  readonly code = 'FRS_SESSION_NOT_SET'
  readonly statusCode = 500
  constructor () {
    super('The session could not be set: session cookies are Secure and this request did not come over HTTPS.')
  }
}

export function isSessionUnavailable (err: unknown): err is SessionUnavailableError {
  return err instanceof SessionUnavailableError
}
