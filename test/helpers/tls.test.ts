import { rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import tls from 'node:tls'
import t from 'tap'
import { trackedPids } from './cleanup.js'
import { useRedis } from './fixtures.js'
import { RawConnection, rawRequest } from './raw-connection.js'
import { runRedisCli, type RedisEndpoint } from './redis-cli.js'
import { makeTempDir, type RedisServer } from './redis-server.js'
import { generateCertificates, type TestCertificates } from './tls.js'

// One set of certificates for the whole file: generation is the slow part.
const certsDir = await makeTempDir('tls')
t.teardown(() => rm(certsDir, { recursive: true, force: true }))
const certificates = await generateCertificates(certsDir)

/** PING over Node's own TLS stack, which is what ioredis uses. */
function nodeTlsPing (server: RedisServer, options: tls.ConnectionOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: server.host, port: server.port, ...options }, () => {
      const connection = new RawConnection(socket)
      connection.request('PING\r\n', 2_000).then((result) => {
        connection.close()
        if (result.reply !== undefined) resolve(result.reply)
        else reject(result.error ?? new Error('no reply'))
      }, reject)
    })
    socket.once('error', reject)
  })
}

function withTls (server: RedisServer, files: { caFile: string, certFile?: string, keyFile?: string }): RedisEndpoint {
  return { host: server.host, port: server.port, tls: files }
}

function cert (pair: TestCertificates['client']): { certFile: string, keyFile: string } {
  return { certFile: pair.certFile, keyFile: pair.keyFile }
}

t.test('generated certificates are PEM files on disk', async (t) => {
  for (const pair of [certificates.ca, certificates.server, certificates.client, certificates.otherCa, certificates.otherClient]) {
    t.match(pair.cert, /^-----BEGIN CERTIFICATE-----/)
    t.match(pair.key, /^-----BEGIN PRIVATE KEY-----/)
    t.ok(pair.certFile.startsWith(certsDir) && pair.keyFile.startsWith(certsDir))
  }
  t.ok(certsDir.startsWith(os.tmpdir()))
})

t.test('TLS server without client certificates: trusted CA works, an unknown CA is refused', async (t) => {
  const server = await useRedis(t, { tls: { certificates } })
  t.equal(server.url, `rediss://127.0.0.1:${server.port}`)
  t.equal(server.certificates, certificates)
  t.equal(await server.cli('PING'), 'PONG')
  t.equal(await runRedisCli(withTls(server, { caFile: certificates.ca.certFile }), ['PING']), 'PONG')
  await t.rejects(runRedisCli(withTls(server, { caFile: certificates.otherCa.certFile }), ['PING']), /certificate verify failed/)
  t.equal(await nodeTlsPing(server, { ca: certificates.ca.cert }), '+PONG', 'the server certificate is valid for 127.0.0.1')
  t.equal(await nodeTlsPing(server, { ca: certificates.ca.cert, servername: 'localhost' }), '+PONG', 'and for localhost')
  await t.rejects(nodeTlsPing(server, { ca: certificates.otherCa.cert }), { code: /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE/ })
  const plain = await rawRequest(server, 'PING\r\n', 1_000)
  t.not(plain.reply, '+PONG', 'plain TCP gets no answer from the TLS port')
})

t.test('TLS server requiring client certificates refuses clients without a trusted one', async (t) => {
  const server = await useRedis(t, { tls: { certificates, requireClientCert: true } })
  t.equal(await server.cli('PING'), 'PONG', 'cli() presents the client certificate')
  const ca = { caFile: certificates.ca.certFile }
  t.equal(await runRedisCli(withTls(server, { ...ca, ...cert(certificates.client) }), ['PING']), 'PONG')
  // With TLS 1.3 the client learns of the refusal after its handshake: a close or a reset.
  const refused = /closed the connection|Connection reset/
  await t.rejects(runRedisCli(withTls(server, ca), ['PING']), refused, 'no client certificate')
  await t.rejects(runRedisCli(withTls(server, { ...ca, ...cert(certificates.otherClient) }), ['PING']), refused,
    'a client certificate from an unknown CA')
  t.equal(await nodeTlsPing(server, { ca: certificates.ca.cert, cert: certificates.client.cert, key: certificates.client.key }), '+PONG')
  await t.rejects(nodeTlsPing(server, { ca: certificates.ca.cert }))
})

t.test('a TLS server generates its own certificates when given none', async (t) => {
  const server = await useRedis(t, { tls: { requireClientCert: 'optional' } })
  t.ok(server.certificates?.dir.startsWith(server.dir))
  t.equal(await server.cli('PING'), 'PONG')
  t.equal(await runRedisCli(withTls(server, { caFile: server.certificates?.ca.certFile ?? '' }), ['PING']), 'PONG', 'the certificate is optional')
  t.equal(path.dirname(server.certificates?.ca.certFile ?? ''), path.join(server.dir, 'tls'))
})

t.test('no server is left running', async (t) => {
  t.same(trackedPids(), [])
})
