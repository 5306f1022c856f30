// An app instance in a process of its own, for the lifecycle-event tests across processes: the demo
// app (server.ts) on the Redis given in SESSION_EVENTS_ENV, printing one JSON line per session event it
// raises ({"event": {...}}), {"ready": true} once its sweep runs, and closing on SIGTERM. Not a test.
import { buildServer } from '../../server.js'

const app = await buildServer({ env: { NODE_ENV: 'test', LOG_LEVEL: 'silent', ...JSON.parse(process.env['SESSION_EVENTS_ENV'] ?? '{}') }, processEnv: false })
for (const type of ['created', 'revoked', 'expired'] as const) {
  app.sessions.on(type, (event) => { process.stdout.write(JSON.stringify({ event }) + '\n') })
}
await app.ready()
process.stdout.write(JSON.stringify({ ready: true }) + '\n')
process.on('SIGTERM', () => {
  app.close().finally(() => process.exit(0))
})
