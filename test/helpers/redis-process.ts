// Lifecycle of one redis-server (or sentinel) process: spawn from a config file in its
// own temp dir, wait until it really answers PING, and kill / freeze / restart / stop it.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { releaseDir, trackChild } from './cleanup.js'
import { parseInfo, runRedisCli, type RedisCliOptions, type RedisEndpoint } from './redis-cli.js'
import type { TestCertificates } from './tls.js'
import { WaitAbortedError, sleep, waitFor } from './wait.js'

/**
 * The server binary for a whole run: FRS_TEST_REDIS_SERVER (what .ci/run sets to run everything on
 * Valkey 8), else REDIS_SERVER_BIN, else Debian's redis-server on PATH. Sentinels run the same binary
 * with --sentinel. The variable is not under the suite's REDIS_ prefix, so apps built by tests that
 * read process.env do not warn about it.
 */
export const REDIS_SERVER_BIN = process.env['FRS_TEST_REDIS_SERVER'] ?? process.env['REDIS_SERVER_BIN'] ?? 'redis-server'

let runVersion: string | undefined

/**
 * The version of the run's server binary (`redis-server --version`: "v=7.0.15"), for what depends on
 * it before a server runs, e.g. suiteAclRule's serverVersion (Redis 7.0 refuses a rule naming CLIENT SETINFO).
 */
export function serverVersion (bin = REDIS_SERVER_BIN): string {
  if (bin === REDIS_SERVER_BIN && runVersion !== undefined) return runVersion
  // "Redis server v=7.0.15 …" or "Valkey server v=8.0.1 …": suiteAclRule's form, '7.0.15' or 'valkey 8.0.1'.
  const output = execFileSync(bin, ['--version'], { encoding: 'utf8' })
  const number = /v=(\d+\.\d+\.\d+)/.exec(output)?.[1] ?? '0.0.0'
  const version = /^valkey/i.test(output) ? `valkey ${number}` : number
  if (bin === REDIS_SERVER_BIN) runVersion = version
  return version
}

/**
 * A specific server for the tests that need one (`{ bin }` of startRedis): the path in `variable`
 * (VALKEY_SERVER, REDIS74_SERVER, set by .ci/run when the binary exists), or a skip message naming it.
 */
export function serverFromEnv (variable: string): { bin: string } | { skip: string } {
  const bin = process.env[variable]
  return bin === undefined || bin === '' ? { skip: `set ${variable} to the server binary to run this (see ../shared/servers/README.md)` } : { bin }
}

/** A running test server and the means to hurt it. */
export interface RedisServer {
  readonly host: '127.0.0.1'
  /** The port clients use (the TLS port for a TLS server). */
  readonly port: number
  /** redis://127.0.0.1:port or rediss://127.0.0.1:port; never holds credentials. */
  readonly url: string
  /** Temp dir holding config, log, data (and certificates); removed by stop(). */
  readonly dir: string
  /** Pid of the current process (changes on restart()). */
  readonly pid: number
  /** How redis-cli reaches it as the default user: password and TLS client files included. */
  readonly endpoint: RedisEndpoint
  readonly password: string | undefined
  /** Set for a TLS server: CA to trust, client certificate, and the rest. */
  readonly certificates: TestCertificates | undefined
  /** SIGKILL, and wait until the process has exited. Data not yet persisted is lost. */
  kill: () => Promise<void>
  /** SIGSTOP: the port stays open and connections are accepted by the kernel, but nothing answers. */
  freeze: () => void
  /** SIGCONT after freeze(). */
  thaw: () => void
  /** Starts it again on the same port with the same config and data dir, and waits for PING. */
  restart: () => Promise<void>
  /** SIGTERM, SIGKILL if it lingers, then removes the dir. Idempotent. */
  stop: () => Promise<void>
  /** Runs redis-cli against it; see runRedisCli for how replies and failures are reported. */
  cli: (...args: string[]) => Promise<string>
  /** Same as cli() but with options (timeout, --json). */
  cliWith: (options: RedisCliOptions, ...args: string[]) => Promise<string>
  isRunning: () => boolean
  /** The last lines of its log file and captured output, for failure messages. */
  logTail: (lines?: number) => Promise<string>
}

export interface LaunchSpec {
  dir: string
  port: number
  /** Config lines specific to this server; the launcher adds bind/dir/logfile/daemonize. */
  configLines: string[]
  sentinel?: boolean
  /** The server binary; default REDIS_SERVER_BIN. */
  bin?: string
  endpoint: RedisEndpoint
  url: string
  password?: string
  certificates?: TestCertificates
  startTimeoutMs?: number
}

const GRACEFUL_STOP_MS = 3_000
const OUTPUT_TAIL_CHARS = 4_000

/** Quotes a value for redis.conf (sdssplitargs syntax). */
export function quoteConfigValue (value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\r/g, '\\r')}"`
}

class RedisServerProcess implements RedisServer {
  readonly host = '127.0.0.1' as const
  readonly port: number
  readonly url: string
  readonly dir: string
  readonly endpoint: RedisEndpoint
  readonly password: string | undefined
  readonly certificates: TestCertificates | undefined
  readonly #args: string[]
  readonly #bin: string
  readonly #startTimeoutMs: number
  #child: ChildProcess | undefined
  #exited: Promise<void> = Promise.resolve()
  #spawnError: Error | undefined
  #output = ''
  #stopping: Promise<void> | undefined

  constructor (spec: LaunchSpec, configFile: string) {
    this.port = spec.port
    this.url = spec.url
    this.dir = spec.dir
    this.endpoint = spec.endpoint
    this.password = spec.password
    this.certificates = spec.certificates
    this.#args = spec.sentinel === true ? [configFile, '--sentinel'] : [configFile]
    this.#bin = spec.bin ?? REDIS_SERVER_BIN
    this.#startTimeoutMs = spec.startTimeoutMs ?? 15_000
  }

  get pid (): number {
    return this.#child?.pid ?? -1
  }

  isRunning (): boolean {
    const child = this.#child
    return child !== undefined && child.pid !== undefined && child.exitCode === null && child.signalCode === null && this.#spawnError === undefined
  }

  async start (): Promise<void> {
    this.#spawnError = undefined
    this.#output = ''
    const child = spawn(this.#bin, this.#args, { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'], detached: false })
    this.#child = child
    this.#exited = new Promise((resolve) => {
      child.once('exit', () => resolve())
      child.once('error', (err) => {
        this.#spawnError = err
        resolve()
      })
    })
    // Config errors are printed before the logfile is opened, so keep a tail of the output.
    const keep = (chunk: Buffer): void => { this.#output = (this.#output + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS) }
    child.stdout?.on('data', keep)
    child.stderr?.on('data', keep)
    trackChild(child, this.dir)

    try {
      await waitFor(async () => {
        if (!this.isRunning()) {
          throw new WaitAbortedError(`the process exited during startup (code ${String(child.exitCode)}, signal ${String(child.signalCode)})`)
        }
        // LOADING and similar replies mean "not yet".
        if (await this.cliWith({ timeoutMs: 2_000 }, 'PING') !== 'PONG') return false
        // Make sure it is our process answering, not another server on a port we lost.
        const info = parseInfo(await this.cliWith({ timeoutMs: 2_000 }, 'INFO', 'server'))
        return info.get('process_id') === String(child.pid)
      }, { what: `redis-server on port ${this.port} to answer PING`, timeoutMs: this.#startTimeoutMs })
    } catch (err) {
      // (The 'error' listener may have set #spawnError meanwhile; TS cannot see that.)
      const reason = (this.#spawnError as Error | undefined)?.message ?? (err instanceof Error ? err.message : String(err))
      const tail = await this.logTail()
      if (this.isRunning()) {
        child.kill('SIGKILL')
        await this.#exited
      }
      throw new RedisStartError(`redis-server on port ${this.port} did not start: ${reason}\n--- log tail (${this.dir}) ---\n${tail}`, tail)
    }
  }

  async kill (): Promise<void> {
    if (this.isRunning()) this.#child?.kill('SIGKILL')
    await this.#exited
  }

  freeze (): void {
    this.#signal('SIGSTOP')
  }

  thaw (): void {
    this.#signal('SIGCONT')
  }

  async restart (): Promise<void> {
    if (this.#stopping !== undefined) throw new Error(`redis-server on port ${this.port} was stopped; it cannot restart`)
    await this.#terminate()
    await this.start()
  }

  stop (): Promise<void> {
    this.#stopping ??= (async () => {
      await this.#terminate()
      await rm(this.dir, { recursive: true, force: true, maxRetries: 3 })
      releaseDir(this.dir)
    })()
    return this.#stopping
  }

  cli (...args: string[]): Promise<string> {
    return runRedisCli(this.endpoint, args)
  }

  cliWith (options: RedisCliOptions, ...args: string[]): Promise<string> {
    return runRedisCli(this.endpoint, args, options)
  }

  async logTail (lines = 30): Promise<string> {
    let log = ''
    try {
      log = await readFile(path.join(this.dir, 'redis.log'), 'utf8')
    } catch {
      // no log yet: the process failed before opening it
    }
    const tail = log.split('\n').slice(-lines).join('\n').trim()
    const output = this.#output.trim()
    return [tail, output === '' ? '' : `--- output ---\n${output}`].filter((part) => part !== '').join('\n') || '(empty)'
  }

  #signal (signal: NodeJS.Signals): void {
    if (!this.isRunning()) throw new Error(`redis-server on port ${this.port} is not running; cannot send ${signal}`)
    this.#child?.kill(signal)
  }

  /** Graceful first (a frozen process must be thawed to see SIGTERM), SIGKILL if it lingers. */
  async #terminate (): Promise<void> {
    if (!this.isRunning()) return
    const child = this.#child
    child?.kill('SIGCONT')
    child?.kill('SIGTERM')
    const exited = await Promise.race([this.#exited.then(() => true), sleep(GRACEFUL_STOP_MS).then(() => false)])
    if (!exited && this.isRunning()) child?.kill('SIGKILL')
    await this.#exited
  }
}

export class RedisStartError extends Error {
  override name = 'RedisStartError'
  readonly logTail: string
  constructor (message: string, logTail: string) {
    super(message)
    this.logTail = logTail
  }
}

/** True when a start failed because the port (or cluster bus port) was taken meanwhile. */
export function isAddressInUse (err: unknown): boolean {
  return err instanceof RedisStartError && /address already in use/i.test(err.logTail)
}

/**
 * Writes the config and starts the process. On failure the process is gone but the dir
 * is kept (the caller owns it and may retry on another port).
 */
export async function launchRedis (spec: LaunchSpec): Promise<RedisServer> {
  const configFile = path.join(spec.dir, spec.sentinel === true ? 'sentinel.conf' : 'redis.conf')
  const lines = [
    '# written by test/helpers; removed with this directory',
    'bind 127.0.0.1',
    'daemonize no',
    `dir ${quoteConfigValue(spec.dir)}`,
    `logfile ${quoteConfigValue(path.join(spec.dir, 'redis.log'))}`,
    // The config path (inside our unique dir) stays in the process title, so the watchdog
    // and `pgrep -f <dir>` can tell our processes apart from any other redis-server.
    'proc-title-template "{title} {listen-addr} {server-mode} {config-file}"',
    ...spec.configLines
  ]
  await writeFile(configFile, lines.join('\n') + '\n')
  // A log left by an earlier attempt on another port would confuse isAddressInUse().
  await rm(path.join(spec.dir, 'redis.log'), { force: true })
  const server = new RedisServerProcess(spec, configFile)
  await server.start()
  return server
}
