import t from 'tap'
import { trackedPids } from './cleanup.js'
import { useFaultProxy, useRedis } from './fixtures.js'
import { openRawConnection, rawRequest } from './raw-connection.js'
import { sleep, waitFor } from './wait.js'

t.test('the fault proxy passes, delays, swallows and resets traffic to a real server', async (t) => {
  const server = await useRedis(t)
  const proxy = await useFaultProxy(t, { target: server })
  t.not(proxy.port, server.port)

  t.test('pass: replies come straight through', async (t) => {
    t.equal(proxy.mode, 'pass')
    const result = await rawRequest(proxy.address)
    t.equal(result.reply, '+PONG')
    const connection = await openRawConnection(proxy.address)
    await waitFor(() => proxy.connections() === 1, { what: 'the proxy to count the connection' })
    connection.close()
    await waitFor(() => proxy.connections() === 0, { what: 'the proxy to forget the closed connection' })
  })

  t.test('latency applies to each direction', async (t) => {
    proxy.setMode({ latencyMs: 200 })
    t.same(proxy.mode, { latencyMs: 200 })
    const slow = await rawRequest(proxy.address, 'PING\r\n', 3_000)
    t.equal(slow.reply, '+PONG')
    t.ok(slow.elapsedMs >= 390, `a round trip takes two delays (${slow.elapsedMs} ms)`)
    proxy.setMode('pass')
    const fast = await rawRequest(proxy.address)
    t.ok(fast.elapsedMs < 200, `and none once back to pass (${fast.elapsedMs} ms)`)
  })

  t.test('latency keeps pipelined replies in order', async (t) => {
    proxy.setMode({ latencyMs: 50 })
    t.teardown(() => proxy.setMode('pass'))
    const connection = await openRawConnection(proxy.address)
    t.teardown(() => connection.close())
    const started = Date.now()
    connection.send('ECHO a\r\nECHO b\r\n')
    await sleep(20) // a and b now wait in the proxy
    proxy.setMode('pass') // c must not overtake them
    connection.send('ECHO c\r\n')
    const replies: string[] = []
    for (let i = 0; i < 6; i++) replies.push((await connection.nextReply(2_000)).reply ?? 'none')
    t.same(replies.filter((line) => !line.startsWith('$')), ['a', 'b', 'c'])
    t.ok(Date.now() - started >= 45, 'a and b were delayed')
  })

  t.test('blackhole: open connections and new ones get silence, then work again', async (t) => {
    const existing = await openRawConnection(proxy.address)
    t.teardown(() => existing.close())
    t.equal((await existing.request('PING\r\n')).reply, '+PONG')

    proxy.setMode('blackhole')
    t.ok((await existing.request('PING\r\n', 300)).timedOut, 'an open connection hears nothing')
    const fresh = await openRawConnection(proxy.address) // accepted like a slow network would
    t.teardown(() => fresh.close())
    t.ok((await fresh.request('PING\r\n', 300)).timedOut, 'a new connection hears nothing')

    proxy.setMode('pass')
    t.equal((await existing.request('ECHO back\r\n', 1_000)).reply, '$4', 'the swallowed PING got no reply; the next command does')
    t.equal((await fresh.request('PING\r\n', 1_000)).reply, '+PONG')
  })

  t.test('reset: open connections and new ones are reset', async (t) => {
    const existing = await openRawConnection(proxy.address)
    t.teardown(() => existing.close())
    t.equal((await existing.request('PING\r\n')).reply, '+PONG')

    proxy.setMode('reset')
    t.equal((await existing.nextReply(1_000)).error?.code, 'ECONNRESET')
    t.equal(proxy.connections(), 0)
    const fresh = await rawRequest(proxy.address)
    t.equal(fresh.error?.code, 'ECONNRESET')

    proxy.setMode('pass')
    t.equal((await rawRequest(proxy.address)).reply, '+PONG')
  })

  t.test('close() refuses further connections', async (t) => {
    const open = await openRawConnection(proxy.address)
    const address = proxy.address
    await proxy.close()
    t.equal((await open.nextReply(1_000)).error?.code, 'ECONNCLOSED')
    t.equal((await rawRequest(address)).error?.code, 'ECONNREFUSED')
    await proxy.close()
  })
})

t.test('no server is left running', async (t) => {
  t.same(trackedPids(), [])
})
