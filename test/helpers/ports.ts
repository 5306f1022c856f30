import net from 'node:net'

/**
 * A port that was free on 127.0.0.1 a moment ago. Another process can still take
 * it before we bind, so the server launcher retries on "address in use".
 */
export function getFreePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port)
        else reject(new Error('could not read the port of a listening socket'))
      })
    })
  })
}
