// A TCP proxy in front of a server that can add latency, swallow traffic or reset
// connections on demand: the network failures a Redis client must survive, made
// reproducible. Backpressure is ignored on purpose: tests push little data.
import net from 'node:net'
import type { Address } from './redis-cli.js'

/**
 * - 'pass': forward bytes as they come;
 * - { latencyMs }: deliver every chunk, both ways, latencyMs after it arrived, in order;
 * - 'blackhole': keep connections (existing and new) open but drop every byte, and hide
 *   closes from the other side, like a dead network path;
 * - 'reset': RST every open connection, and every new one right after accept.
 */
export type FaultMode = 'pass' | 'blackhole' | 'reset' | { latencyMs: number }

export interface FaultProxyOptions {
  target: Address
}

export interface FaultProxy {
  readonly host: '127.0.0.1'
  readonly port: number
  /** { host, port } of the proxy, to give a client instead of the target. */
  readonly address: Address
  readonly mode: FaultMode
  setMode: (mode: FaultMode) => void
  /** Client connections currently open through the proxy. */
  connections: () => number
  /** Destroys every connection and stops listening. Idempotent. */
  close: () => Promise<void>
}

const CLOSE = Symbol('close')
type Item = { data: Buffer | typeof CLOSE, dueAt: number, hadError: boolean }

function resetSocket (socket: net.Socket): void {
  if (socket.destroyed) return
  try {
    socket.resetAndDestroy()
  } catch {
    socket.destroy()
  }
}

/** One direction of one connection: an ordered, possibly delayed queue of chunks. */
class Direction {
  readonly #to: net.Socket
  readonly #proxy: FaultProxyServer
  #queue: Item[] = []
  #timer: NodeJS.Timeout | undefined
  /** A close hidden by blackhole mode, delivered when the mode changes. */
  #deferredClose: Item | undefined

  constructor (to: net.Socket, proxy: FaultProxyServer) {
    this.#to = to
    this.#proxy = proxy
  }

  push (data: Buffer | typeof CLOSE, hadError = false): void {
    if (this.#proxy.mode === 'blackhole') {
      if (data === CLOSE) this.#deferredClose = { data, dueAt: 0, hadError }
      return
    }
    const mode = this.#proxy.mode
    const latency = typeof mode === 'object' ? mode.latencyMs : 0
    // A FIFO: a chunk never overtakes an earlier one, even when the latency goes down.
    this.#queue.push({ data, dueAt: Date.now() + latency, hadError })
    this.#flush()
  }

  releaseDeferredClose (): void {
    const item = this.#deferredClose
    this.#deferredClose = undefined
    if (item !== undefined) this.push(item.data, item.hadError)
  }

  clear (): void {
    clearTimeout(this.#timer)
    this.#queue = []
  }

  #flush (): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    const now = Date.now()
    while (this.#queue.length > 0 && (this.#queue[0]?.dueAt ?? Infinity) <= now) {
      const item = this.#queue.shift()
      if (item === undefined) break
      this.#deliver(item)
    }
    const next = this.#queue[0]
    if (next !== undefined) this.#timer = setTimeout(() => this.#flush(), next.dueAt - now)
  }

  #deliver (item: Item): void {
    if (this.#to.destroyed) return
    if (item.data !== CLOSE) {
      // Chunks still queued when a blackhole starts are lost too.
      if (this.#proxy.mode !== 'blackhole') this.#to.write(item.data)
    } else if (item.hadError) {
      resetSocket(this.#to)
    } else {
      this.#to.end()
    }
  }
}

class Link {
  readonly client: net.Socket
  readonly upstream: net.Socket
  readonly toUpstream: Direction
  readonly toClient: Direction

  constructor (client: net.Socket, target: Address, proxy: FaultProxyServer) {
    this.client = client
    this.upstream = net.connect({ host: target.host, port: target.port })
    this.toUpstream = new Direction(this.upstream, proxy)
    this.toClient = new Direction(client, proxy)
    this.#wire(client, this.toUpstream)
    this.#wire(this.upstream, this.toClient)
  }

  #wire (from: net.Socket, direction: Direction): void {
    let hadError = false
    from.on('data', (chunk: Buffer) => direction.push(chunk))
    from.on('error', () => { hadError = true })
    from.on('close', () => direction.push(CLOSE, hadError))
  }

  reset (): void {
    this.toUpstream.clear()
    this.toClient.clear()
    resetSocket(this.client)
    resetSocket(this.upstream)
  }

  destroy (): void {
    this.toUpstream.clear()
    this.toClient.clear()
    this.client.destroy()
    this.upstream.destroy()
  }
}

class FaultProxyServer implements FaultProxy {
  readonly host = '127.0.0.1' as const
  readonly #server: net.Server
  readonly #target: Address
  readonly #links = new Set<Link>()
  #mode: FaultMode = 'pass'
  #closing: Promise<void> | undefined

  constructor (target: Address) {
    this.#target = target
    this.#server = net.createServer((client) => this.#accept(client))
  }

  get port (): number {
    const address = this.#server.address()
    return address !== null && typeof address === 'object' ? address.port : -1
  }

  get address (): Address {
    return { host: this.host, port: this.port }
  }

  get mode (): FaultMode {
    return this.#mode
  }

  listen (): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject)
      this.#server.listen(0, '127.0.0.1', () => {
        this.#server.off('error', reject)
        resolve()
      })
    })
  }

  setMode (mode: FaultMode): void {
    if (typeof mode === 'object' && !(Number.isFinite(mode.latencyMs) && mode.latencyMs >= 0)) {
      throw new TypeError(`latencyMs must be a non-negative number, got ${String(mode.latencyMs)}`)
    }
    this.#mode = typeof mode === 'object' ? { latencyMs: mode.latencyMs } : mode
    if (mode === 'reset') {
      for (const link of this.#links) link.reset()
      this.#links.clear()
    } else if (mode !== 'blackhole') {
      for (const link of this.#links) {
        link.toUpstream.releaseDeferredClose()
        link.toClient.releaseDeferredClose()
      }
    }
  }

  connections (): number {
    return this.#links.size
  }

  close (): Promise<void> {
    this.#closing ??= new Promise((resolve) => {
      this.#server.close(() => resolve())
      for (const link of this.#links) link.destroy()
      this.#links.clear()
    })
    return this.#closing
  }

  #accept (client: net.Socket): void {
    if (this.#mode === 'reset' || this.#closing !== undefined) {
      client.on('error', () => {})
      resetSocket(client)
      return
    }
    const link = new Link(client, this.#target, this)
    this.#links.add(link)
    client.once('close', () => this.#links.delete(link))
  }
}

/** Starts a proxy on a free loopback port, forwarding to `target` ('pass' mode). */
export async function startFaultProxy (options: FaultProxyOptions): Promise<FaultProxy> {
  const proxy = new FaultProxyServer(options.target)
  await proxy.listen()
  return proxy
}
