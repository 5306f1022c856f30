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

t.test('a waiter takes over as soon as the holder\'s lock expires', async (t) => {
  const { server, cache } = await redisWithInstance(t)
  await server.cli('SET', 'cache:lock:{}default:k', 'dead-instance:1', 'PX', '150')
  let loads = 0
  t.equal(await cache.getOrSet('k', () => { loads++; return 'v' }, { lockWait: '10s' }), 'v')
  t.equal(loads, 1)
})
