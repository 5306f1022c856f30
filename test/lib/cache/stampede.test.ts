// Concurrent misses run the loader once: per process (shared flight) and across instances (Redis lock).
import t from 'tap'
import { useRedis } from '../../helpers/index.js'
import { commandCalls, deferred, instance, redisWithInstance } from './fixtures.js'

t.test('one process: 50 concurrent getOrSet on a cold key run the loader once', async (t) => {
  const { server, cache } = await redisWithInstance(t)
  const gate = deferred()
  let loads = 0
  const loader = async (): Promise<string> => { loads++; await gate.promise; return 'v' }
  const getsBefore = await commandCalls(server, 'get')
  const calls = Array.from({ length: 50 }, () => cache.getOrSet('hot', loader))
  gate.resolve()
  t.same(await Promise.all(calls), Array(50).fill('v'))
  t.equal(loads, 1)
  t.ok(await commandCalls(server, 'get') - getsBefore <= 2, 'the callers shared one Redis read too')
})

t.test('two instances on two clients: concurrent misses run the loader once', async (t) => {
  const server = await useRedis(t)
  const a = await instance(t, server)
  const b = await instance(t, server)
  let loads = 0
  const loader = async (): Promise<string> => {
    loads++
    await new Promise((resolve) => setTimeout(resolve, 150))
    return 'shared'
  }
  const results = await Promise.all([
    ...Array.from({ length: 10 }, () => a.cache.getOrSet('hot', loader)),
    ...Array.from({ length: 10 }, () => b.cache.getOrSet('hot', loader))
  ])
  t.same(results, Array(20).fill('shared'))
  t.equal(loads, 1, 'the instance that lost the lock read the winner\'s value')
  t.equal(await server.cli('EXISTS', 'cache:lock:{}default:hot'), '0', 'the lock was released')
})

t.test('a lock holder that never writes costs a bounded wait, then the waiter loads itself', async (t) => {
  const { server, cache } = await redisWithInstance(t)
  // Another instance took the lock and died.
  await server.cli('SET', 'cache:lock:{}default:orphan', 'dead-instance:1', 'PX', '60000')
  const value = await cache.getOrSet('orphan', () => 'mine', { lockWait: '200ms' })
  t.equal(value, 'mine')
  t.equal(await server.cli('GET', 'cache:lock:{}default:orphan'), 'dead-instance:1', 'someone else\'s lock is never deleted')
})

t.test('a lock this instance left behind (its release failed in an outage) is taken over, not waited out', async (t) => {
  const { server, cache } = await redisWithInstance(t)
  let ownToken = ''
  await cache.getOrSet('left', async () => {
    ownToken = await server.cli('GET', 'cache:lock:{}default:left')
    return 'v1'
  })
  t.match(ownToken, /^[0-9a-f-]+:\d+$/, 'the instance\'s own token, read while it held the lock')
  // As if the compare-and-delete had been lost to a connection reset.
  await server.cli('SET', 'cache:lock:{}default:left', ownToken, 'PX', '60000')
  await cache.delete('left')
  let loads = 0
  t.equal(await cache.getOrSet('left', () => { loads++; return 'v2' }, { lockWait: '200ms' }), 'v2')
  t.equal(loads, 1)
  t.equal(await server.cli('EXISTS', 'cache:lock:{}default:left'), '0', 'the leftover lock was taken over and released')
})

t.test('a waiter takes over as soon as the holder\'s lock expires', async (t) => {
  const { server, cache } = await redisWithInstance(t)
  await server.cli('SET', 'cache:lock:{}default:k', 'dead-instance:1', 'PX', '150')
  let loads = 0
  t.equal(await cache.getOrSet('k', () => { loads++; return 'v' }, { lockWait: '10s' }), 'v')
  t.equal(loads, 1)
})
