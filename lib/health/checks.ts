// Health checks with cached results: each check runs on its own timer with its own timeout, so the
// routes answer from memory at once whatever a dependency is doing.
import { HealthCheckError } from '../errors/index.js'

export type CheckStatus = 'ok' | 'degraded' | 'down'

export interface CheckResult {
  status: CheckStatus
  latencyMs: number | null
  lastError?: string
  [detail: string]: unknown
}

export interface HealthCheckOptions {
  name: string
  /** Resolve with a status (or true/false); throwing or timing out counts as down. */
  check: () => Promise<CheckStatus | boolean | { status: CheckStatus, lastError?: string, [detail: string]: unknown }>
  /** A required check that is down makes /health/ready answer 503. Default true. */
  required?: boolean
  /** How often the check runs in the background. Default 5 s. */
  interval?: number
  /** Longest a run may take. Default 1 s. */
  timeout?: number
}

/** What /health shows for a check: its status may use the dependency's own words (connected…). */
export interface DisplayedCheck {
  status: string
  latencyMs: number | null
  [detail: string]: unknown
}

/** A check whose state is kept elsewhere (the Redis monitor) and only read. */
export interface ReadOnlyCheck {
  name: string
  required: boolean
  read: () => { status: CheckStatus, shown: DisplayedCheck }
}

export class HealthRegistry {
  readonly #polled = new Map<string, { options: Required<HealthCheckOptions>, result: CheckResult, timer?: NodeJS.Timeout }>()
  readonly #readOnly = new Map<string, ReadOnlyCheck>()
  #running = false
  shuttingDown = false

  addCheck (options: HealthCheckOptions): void {
    this.#assertNew(options.name)
    const entry = {
      options: { required: true, interval: 5_000, timeout: 1_000, ...options },
      result: { status: 'down', latencyMs: null, lastError: 'not checked yet' } as CheckResult
    }
    this.#polled.set(options.name, entry)
    if (this.#running) this.#run(options.name).catch(() => {})
  }

  addReadOnlyCheck (check: ReadOnlyCheck): void {
    this.#assertNew(check.name)
    this.#readOnly.set(check.name, check)
  }

  /** Starts the background timers; the first run of each check happens at once. */
  async start (): Promise<void> {
    this.#running = true
    await Promise.all([...this.#polled.keys()].map((name) => this.#run(name)))
  }

  stop (): void {
    this.#running = false
    for (const entry of this.#polled.values()) clearTimeout(entry.timer)
  }

  /** One consistent reading of every check: the overall status and what each check shows. */
  snapshot (): { status: CheckStatus, ready: boolean, checks: Record<string, DisplayedCheck> } {
    const checks: Record<string, DisplayedCheck> = {}
    const rank: Record<CheckStatus, number> = { ok: 0, degraded: 1, down: 2 }
    let status = 'ok' as CheckStatus
    const weigh = (checkStatus: CheckStatus, required: boolean): void => {
      // A non-required check that is down degrades the app; a required one takes it down.
      const effect: CheckStatus = checkStatus === 'down' && !required ? 'degraded' : checkStatus
      if (rank[effect] > rank[status]) status = effect
    }
    for (const [name, check] of this.#readOnly) {
      const { status: checkStatus, shown } = check.read()
      checks[name] = shown
      weigh(checkStatus, check.required)
    }
    for (const [name, entry] of this.#polled) {
      checks[name] = entry.result
      weigh(entry.result.status, entry.options.required)
    }
    return { status, ready: !this.shuttingDown && status !== 'down', checks }
  }

  #assertNew (name: string): void {
    if (this.#polled.has(name) || this.#readOnly.has(name)) throw new HealthCheckError(`health check "${name}" is already registered`)
  }

  async #run (name: string): Promise<void> {
    const entry = this.#polled.get(name)
    if (entry === undefined || !this.#running) return
    const started = Date.now()
    let timer: NodeJS.Timeout | undefined
    try {
      const outcome = await Promise.race([
        entry.options.check(),
        new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${entry.options.timeout}ms`)), entry.options.timeout) })
      ])
      const latencyMs = Date.now() - started
      if (typeof outcome === 'boolean') entry.result = { status: outcome ? 'ok' : 'down', latencyMs }
      else if (typeof outcome === 'string') entry.result = { status: outcome, latencyMs }
      else entry.result = { ...outcome, latencyMs }
    } catch (err) {
      // latencyMs null: nothing answered; lastError always with its time (an ISO string, as served).
      entry.result = { status: 'down', latencyMs: null, lastError: (err as Error).message, lastErrorAt: new Date().toISOString() }
    } finally {
      clearTimeout(timer)
    }
    if (this.#running) {
      entry.timer = setTimeout(() => { this.#run(name).catch(() => {}) }, entry.options.interval)
      entry.timer.unref()
    }
  }
}
