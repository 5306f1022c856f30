// A bare TCP connection that writes raw RESP and reads reply lines, so harness tests
// can observe exactly what reaches the wire (no client retries, queues or reconnects).
import net from 'node:net'
import type { Address } from './redis-cli.js'

export interface RawReply {
  /** The first reply line, without CRLF (e.g. '+PONG'), when one arrived in time. */
  reply?: string
  /** The socket error or closure that ended the wait (e.g. code ECONNRESET). */
  error?: NodeJS.ErrnoException
  timedOut: boolean
  elapsedMs: number
}

interface Waiter {
  resolve: () => void
}

export class RawConnection {
  readonly socket: net.Socket
  #buffer = ''
  #error: NodeJS.ErrnoException | undefined
  #waiters = new Set<Waiter>()

  constructor (socket: net.Socket) {
    this.socket = socket
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      this.#buffer += chunk
      this.#wake()
    })
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.#error ??= err
      this.#wake()
    })
    socket.on('close', () => {
      this.#error ??= Object.assign(new Error('connection closed'), { code: 'ECONNCLOSED' })
      this.#wake()
    })
  }

  /** Writes raw bytes, e.g. 'PING\r\n'. */
  send (payload: string): void {
    if (!this.socket.destroyed) this.socket.write(payload)
  }

  /**
   * Resolves with the next reply line, or with the error/closure of the socket, or with
   * timedOut. A reply that arrives after a timeout is kept for the next call.
   */
  nextReply (timeoutMs = 1_000): Promise<RawReply> {
    const started = Date.now()
    return new Promise((resolve) => {
      const settle = (): boolean => {
        const end = this.#buffer.indexOf('\r\n')
        if (end >= 0) {
          const reply = this.#buffer.slice(0, end)
          this.#buffer = this.#buffer.slice(end + 2)
          finish({ reply, timedOut: false, elapsedMs: Date.now() - started })
          return true
        }
        if (this.#error !== undefined) {
          finish({ error: this.#error, timedOut: false, elapsedMs: Date.now() - started })
          return true
        }
        return false
      }
      const waiter: Waiter = { resolve: () => { settle() } }
      const timer = setTimeout(() => finish({ timedOut: true, elapsedMs: Date.now() - started }), timeoutMs)
      const finish = (result: RawReply): void => {
        clearTimeout(timer)
        this.#waiters.delete(waiter)
        resolve(result)
      }
      if (!settle()) this.#waiters.add(waiter)
    })
  }

  /** send() then nextReply(). */
  request (payload: string, timeoutMs = 1_000): Promise<RawReply> {
    this.send(payload)
    return this.nextReply(timeoutMs)
  }

  close (): void {
    this.socket.destroy()
  }

  #wake (): void {
    for (const waiter of [...this.#waiters]) waiter.resolve()
  }
}

/** Connects (or rejects with the connect error, e.g. ECONNREFUSED). */
export function openRawConnection (address: Address, timeoutMs = 2_000): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: address.host, port: address.port })
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`connecting to ${address.host}:${address.port} took over ${timeoutMs} ms`))
    }, timeoutMs)
    socket.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    socket.once('connect', () => {
      clearTimeout(timer)
      socket.removeAllListeners('error')
      resolve(new RawConnection(socket))
    })
  })
}

/**
 * One request on a fresh connection: never rejects, so a test can assert on a refused
 * connection, a reset, a timeout or a reply alike.
 */
export async function rawRequest (address: Address, payload = 'PING\r\n', timeoutMs = 1_000): Promise<RawReply> {
  const started = Date.now()
  let connection: RawConnection
  try {
    connection = await openRawConnection(address, timeoutMs)
  } catch (err) {
    return { error: err as NodeJS.ErrnoException, timedOut: false, elapsedMs: Date.now() - started }
  }
  try {
    const result = await connection.request(payload, Math.max(1, timeoutMs - (Date.now() - started)))
    return { ...result, elapsedMs: Date.now() - started }
  } finally {
    connection.close()
  }
}
