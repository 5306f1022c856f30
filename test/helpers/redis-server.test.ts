import { existsSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { trackedPids } from './cleanup.js'
import { useRedis } from './fixtures.js'
import { openRawConnection, rawRequest } from './raw-connection.js'
import { parseInfo, runRedisCli } from './redis-cli.js'
import { REDIS_SERVER_BIN, isAddressInUse, serverFromEnv } from './redis-process.js'
import { startRedis } from './redis-server.js'
import { sleep, waitFor } from './wait.js'

t.test('a standalone server answers PING, SET and GET on its own loopback port', async (t) => {
  const server = await useRedis(t)
  t.not(server.port, 6379, 'never the machine\'s shared Redis')
  t.equal(server.url, `redis://127.0.0.1:${server.port}`)
  t.equal(await server.cli('PING'), 'PONG')
  t.equal(await server.cli('SET', 'greeting', 'hello world'), 'OK')
  t.equal(await server.cli('GET', 'greeting'), 'hello world')
  t.equal(await server.cli('CONFIG', 'GET', 'bind'), 'bind\n127.0.0.1')
  t.equal(await server.cli('CONFIG', 'GET', 'save'), 'save\n', 'no RDB snapshots')
  t.equal(await server.cli('CONFIG', 'GET', 'appendonly'), 'appendonly\nno')
  t.ok(existsSync(path.join(server.dir, 'redis.log')), 'logs into its own dir')
})

t.test('password: the default user needs it', async (t) => {
  const password = 'pa ss "word"\\'
  const server = await useRedis(t, { password })
  t.equal(server.password, password)
  t.equal(await server.cli('PING'), 'PONG', 'cli() authenticates')
  t.match(await runRedisCli({ host: server.host, port: server.port }, ['PING']), /^NOAUTH/)
  t.match(await runRedisCli({ ...server.endpoint, password: 'wrong' }, ['PING']), /NOAUTH/)
})

t.test('ACL users are limited to their keys and commands', async (t) => {
  const server = await useRedis(t, { acl: [{ username: 'app', password: 'app secret', rules: '~app:* +@all -@dangerous' }] })
  const app = { ...server.endpoint, username: 'app', password: 'app secret' }
  t.equal(await runRedisCli(app, ['ACL', 'WHOAMI']), 'app')
  t.equal(await runRedisCli(app, ['SET', 'app:1', 'x']), 'OK')
  t.match(await runRedisCli(app, ['SET', 'other:1', 'x']), /^NOPERM/)
  t.match(await runRedisCli(app, ['FLUSHALL']), /^NOPERM/)
  t.equal(await server.cli('GET', 'app:1'), 'x', 'the default user is unaffected')
})

t.test('maxmemory, policy and extra config lines are applied', async (t) => {
  const server = await useRedis(t, { maxmemory: '2mb', maxmemoryPolicy: 'allkeys-lru', extraConfig: ['hz 20'] })
  t.equal(await server.cli('CONFIG', 'GET', 'maxmemory'), `maxmemory\n${2 * 1024 * 1024}`)
  t.equal(await server.cli('CONFIG', 'GET', 'maxmemory-policy'), 'maxmemory-policy\nallkeys-lru')
  t.equal(await server.cli('CONFIG', 'GET', 'hz'), 'hz\n20')
})

t.test('AOF everysec: data survives SIGKILL and restart on the same port', async (t) => {
  const server = await useRedis(t, { appendonly: 'everysec' })
  t.ok(existsSync(path.join(server.dir, 'appendonlydir')), 'the AOF dir exists')
  t.equal(await server.cli('CONFIG', 'GET', 'appendfsync'), 'appendfsync\neverysec')
  await server.cli('SET', 'durable', 'yes')
  await sleep(1_500) // let the once-a-second fsync happen

  const { port, pid } = server
  await server.kill()
  t.notOk(server.isRunning())
  t.equal((await rawRequest(server)).error?.code, 'ECONNREFUSED')
  await t.rejects(server.cli('PING'), /Connection refused/)

  await server.restart()
  t.equal(server.port, port)
  t.not(server.pid, pid, 'a new process')
  t.equal(await server.cli('GET', 'durable'), 'yes')
})

t.test('a frozen server accepts connections but does not answer until thawed', async (t) => {
  const server = await useRedis(t)
  server.freeze()
  t.teardown(() => { if (server.isRunning()) server.thaw() })
  const connection = await openRawConnection(server) // the kernel still accepts
  t.teardown(() => connection.close())
  const frozen = await connection.request('PING\r\n', 300)
  t.ok(frozen.timedOut, 'no reply within 300 ms')
  server.thaw()
  const thawed = await connection.nextReply(2_000)
  t.equal(thawed.reply, '+PONG', 'the queued PING is answered after SIGCONT')
})

t.test('replicaOf makes a replica that follows its master', async (t) => {
  const master = await useRedis(t)
  const replica = await useRedis(t, { replicaOf: master })
  await master.cli('SET', 'replicated', '1')
  await waitFor(async () => await replica.cli('GET', 'replicated') === '1', { what: 'the write to reach the replica' })
  t.equal(parseInfo(await replica.cli('INFO', 'replication')).get('role'), 'slave')
})

t.test('a server that cannot start fails fast with its log', async (t) => {
  const started = Date.now()
  await t.rejects(startRedis({ extraConfig: ['no-such-directive yes'] }), /did not start[\s\S]*Bad directive/)
  t.ok(Date.now() - started < 5_000, 'does not wait for the timeout')
})

t.test('a fixed port that is taken fails clearly instead of hanging', async (t) => {
  const server = await useRedis(t)
  const error = await startRedis({ port: server.port }).then(() => undefined, (err: unknown) => err)
  t.match(error, { message: /did not start[\s\S]*Address already in use/ })
  t.ok(isAddressInUse(error), 'recognised, so a picked port is retried elsewhere')
  t.equal(await server.cli('PING'), 'PONG', 'the first server is unharmed')
})

t.test('stop() is graceful, idempotent and removes the dir', async (t) => {
  const server = await startRedis()
  t.ok(trackedPids().includes(server.pid))
  await Promise.all([server.stop(), server.stop()])
  await server.stop()
  t.notOk(server.isRunning())
  t.notOk(existsSync(server.dir))
  await t.rejects(server.restart(), /stopped/)
})

t.test('no server is left running', async (t) => {
  t.same(trackedPids(), [])
})

// Issue 28 item 7: the helpers start other servers, for one test (`bin`) or for a whole run (FRS_TEST_REDIS_SERVER).
for (const [variable, version] of [['VALKEY_SERVER', /^valkey_version:8\./m], ['REDIS74_SERVER', /^redis_version:7\.4\./m]] as const) {
  const server = serverFromEnv(variable)
  t.test(`{ bin } from ${variable}: a plain and a TLS server of that build`, 'skip' in server ? { skip: server.skip } : {}, async (t) => {
    if (!('bin' in server)) return
    const plain = await useRedis(t, { bin: server.bin })
    t.match(await plain.cli('INFO', 'server'), version)
    const tls = await useRedis(t, { bin: server.bin, tls: true })
    t.match(await tls.cli('INFO', 'server'), version, 'TLS (the builds have BUILD_TLS=yes)')
  })
}

t.test('every server of a run is started from REDIS_SERVER_BIN (FRS_TEST_REDIS_SERVER, else redis-server on PATH)', async (t) => {
  const server = await useRedis(t)
  const executable = /^executable:(.*)$/m.exec(await server.cli('INFO', 'server'))?.[1]?.trim() ?? ''
  t.equal(path.basename(executable), path.basename(REDIS_SERVER_BIN), `INFO executable ${executable}`)
})
