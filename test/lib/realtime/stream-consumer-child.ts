// Not a test: streams-dead-letters.test.ts runs this as a consumer of its own process and SIGKILLs it
// while the handler runs. Prints {"ready":true} once reading, then {"handling":n} per message taken;
// the handler never finishes, so the message stays pending on this consumer when it dies.
import { Redis } from 'ioredis'
import Type from 'typebox'
import { RedisStreams } from '../../../lib/realtime/streams.js'

const port = Number(process.argv[2])
function client (): Redis {
  const c = new Redis({ port, keyPrefix: 'app:', enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 1_000 })
  c.on('error', () => {})
  return c
}
const main = client()
await new Promise((resolve) => main.once('ready', resolve))
const streams = new RedisStreams({ client: main, blockingConnection: client, timeoutMs: 1_000, blockMs: 100 })
await streams.stream('jobs', Type.Object({ n: Type.Integer() })).consume('workers', 'doomed', async (message) => {
  process.stdout.write(JSON.stringify({ handling: message.n }) + '\n')
  await new Promise(() => {}) // still running when the test kills this process
}, { count: 1 })
process.stdout.write(JSON.stringify({ ready: true }) + '\n')
