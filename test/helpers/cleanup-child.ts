// Run by cleanup.test.ts as a separate process that starts a server and then dies
// badly ('throw': uncaught error; 'hang': waits to be SIGKILLed), to prove that
// cleanup.ts still takes the server down.
import { startRedis } from './redis-server.js'

const mode = process.argv[2]
// Anything else (e.g. `npx tap test/helpers/` picking this file up) does nothing.
if (mode === 'throw' || mode === 'hang') {
  const server = await startRedis()
  process.stdout.write(JSON.stringify({ pid: server.pid, dir: server.dir }) + '\n')
  if (mode === 'throw') throw new Error('simulated crash of a test process')
  // Waits to be SIGKILLed, but not forever if the parent forgets.
  setTimeout(() => {}, 60_000)
}
