// Runs redis-cli against one of our servers. Used for readiness checks and by tests,
// so it works the same way for plain, password, ACL and TLS servers.
import { spawn } from 'node:child_process'

export interface Address {
  host: string
  port: number
}

export interface TlsClientFiles {
  /** CA used to verify the server certificate. */
  caFile: string
  /** Client certificate and key, for servers with tls-auth-clients yes/optional. */
  certFile?: string
  keyFile?: string
}

/** How to reach and authenticate to a server. */
export interface RedisEndpoint extends Address {
  username?: string
  password?: string
  tls?: TlsClientFiles
}

export interface RedisCliOptions {
  /** redis-cli is killed after this long (a frozen server would hang it forever). Default 5000. */
  timeoutMs?: number
  /** Add --json (RESP3 replies as JSON). */
  json?: boolean
}

export const REDIS_CLI_BIN = process.env['REDIS_CLI_BIN'] ?? 'redis-cli'

/**
 * Resolves with redis-cli's output (without the final newline). A Redis error reply is
 * output too (e.g. "NOPERM ..."), so tests can assert on it; the promise rejects only when
 * redis-cli could not talk to the server (refused, TLS failure, timeout).
 */
export function runRedisCli (endpoint: RedisEndpoint, args: readonly string[], options: RedisCliOptions = {}): Promise<string> {
  const { timeoutMs = 5_000, json = false } = options
  const cliArgs = ['-h', endpoint.host, '-p', String(endpoint.port)]
  if (endpoint.username !== undefined) cliArgs.push('--user', endpoint.username)
  if (endpoint.tls !== undefined) {
    cliArgs.push('--tls', '--cacert', endpoint.tls.caFile)
    if (endpoint.tls.certFile !== undefined) cliArgs.push('--cert', endpoint.tls.certFile)
    if (endpoint.tls.keyFile !== undefined) cliArgs.push('--key', endpoint.tls.keyFile)
  }
  if (json) cliArgs.push('--json')
  cliArgs.push(...args)

  // The password goes through the environment, not argv, so it never shows in `ps`.
  const env = { ...process.env }
  delete env['REDISCLI_AUTH']
  if (endpoint.password !== undefined) env['REDISCLI_AUTH'] = endpoint.password

  return new Promise((resolve, reject) => {
    const child = spawn(REDIS_CLI_BIN, cliArgs, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: false })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, timeoutMs)
    const command = args.join(' ')
    child.once('error', (err) => {
      clearTimeout(timer)
      reject(new Error(`could not run ${REDIS_CLI_BIN}: ${err.message}`))
    })
    child.once('close', (code) => {
      clearTimeout(timer)
      if (timedOut) {
        reject(new Error(`redis-cli ${command} against ${endpoint.host}:${endpoint.port} got no answer within ${timeoutMs} ms`))
      } else if (code !== 0) {
        const detail = (stderr.trim() || stdout.trim() || `exit code ${String(code)}`)
        reject(new Error(`redis-cli ${command} against ${endpoint.host}:${endpoint.port} failed: ${detail}`))
      } else {
        resolve(stdout.endsWith('\n') ? stdout.slice(0, -1) : stdout)
      }
    })
  })
}

/** Parses the "key:value" lines of INFO or CLUSTER INFO. */
export function parseInfo (text: string): Map<string, string> {
  const fields = new Map<string, string>()
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':')
    if (colon > 0 && !line.startsWith('#')) fields.set(line.slice(0, colon), line.slice(colon + 1).trim())
  }
  return fields
}
