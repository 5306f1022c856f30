// Compile-time tests of app.pubsub, app.presence and app.locks through the suite's declarations;
// checked by tsc, never executed.
import Fastify from 'fastify'
import Type from 'typebox'
import redisSuite, { type Lock, type Unsubscribe } from '../../index.js'
import { expectType } from './expect-type.js'

export async function pubsubTypes (): Promise<void> {
  const app = Fastify()
  await app.register(redisSuite)
  const Chat = Type.Object({ room: Type.String(), text: Type.String() })

  const chat = app.pubsub.channel('chat', Chat)
  expectType<number>()(await chat.publish({ room: 'r', text: 'hi' }))
  // @ts-expect-error a typed channel publishes only what its schema describes
  await chat.publish({ room: 'r' })
  expectType<Unsubscribe>()(await chat.subscribe((message) => { expectType<{ room: string, text: string }>()(message) }))
  await app.pubsub.subscribe('chat', (message) => { expectType<{ room: string, text: string }>()(message) }, { schema: Chat })
  await app.pubsub.subscribe('raw', (message, meta) => {
    expectType<unknown>()(message)
    expectType<string>()(meta.channel)
  })
  await app.pubsub.psubscribe('chat:*', (_message, meta) => { expectType<string | undefined>()(meta.pattern) })

  const orders = app.pubsub.stream('orders', Type.Object({ n: Type.Integer() }))
  expectType<string>()(await orders.add({ n: 1 }))
  // @ts-expect-error stream entries are typed too
  await orders.add({ n: 'one' })
  await orders.consume('billing', 'c1', async (order, meta) => {
    expectType<number>()(order.n)
    expectType<string>()(meta.id)
  })

  expectType<number>()((await app.presence.join('lobby', 'ada', { ttl: '5m' })).count)
  expectType<Array<{ userId: string, expiresAt: number }>>()(await app.presence.list('lobby'))

  const lock = await app.locks.acquire('job', { ttl: '30s', wait: '5s' })
  expectType<Lock>()(lock)
  expectType<number>()(lock.fencingToken)
  expectType<string>()(await app.locks.withLock('job', async (held, signal) => {
    expectType<AbortSignal>()(signal)
    return String(held.fencingToken)
  }))
}
