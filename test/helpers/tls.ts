// Certificates are generated with openssl at test time (never committed): a CA, a server
// certificate valid for localhost and 127.0.0.1, a client certificate for mutual TLS,
// and an unrelated CA with its own client, to prove that unknown issuers are refused.
// EC P-256 keys keep generation fast on a small machine.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'

export interface CertificateFiles {
  certFile: string
  keyFile: string
  /** PEM text of certFile. */
  cert: string
  /** PEM text of keyFile. */
  key: string
}

export interface TestCertificates {
  dir: string
  /** The CA that signed `server` and `client`. */
  ca: CertificateFiles
  /** CN=localhost, subjectAltName DNS:localhost, IP:127.0.0.1; usable as server and as client. */
  server: CertificateFiles
  /** Client certificate signed by `ca`. */
  client: CertificateFiles
  /** A CA unrelated to `ca`: trusting it alone must fail against our servers. */
  otherCa: CertificateFiles
  /** Client certificate signed by `otherCa`: servers must refuse it. */
  otherClient: CertificateFiles
}

const OPENSSL_BIN = process.env['OPENSSL_BIN'] ?? 'openssl'
const VALID_DAYS = '2'

const OPENSSL_CONFIG = `
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
`

function openssl (cwd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(OPENSSL_BIN, args, { cwd, timeout: 30_000 }, (err, _stdout, stderr) => {
      if (err === null) resolve()
      else reject(new Error(`openssl ${args.slice(0, 2).join(' ')} failed: ${stderr.trim() || err.message}`))
    })
  })
}

const newKeyArgs = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']

async function readPair (dir: string, name: string): Promise<CertificateFiles> {
  const certFile = path.join(dir, `${name}.crt`)
  const keyFile = path.join(dir, `${name}.key`)
  const [cert, key] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')])
  return { certFile, keyFile, cert, key }
}

async function createCa (dir: string, name: string, commonName: string): Promise<void> {
  await openssl(dir, ['req', '-x509', '-new', ...newKeyArgs, '-config', 'openssl.cnf', '-extensions', 'ca',
    '-subj', `/CN=${commonName}`, '-days', VALID_DAYS, '-keyout', `${name}.key`, '-out', `${name}.crt`])
}

async function createLeaf (dir: string, name: string, ca: string, profile: 'server' | 'client', commonName: string): Promise<void> {
  await openssl(dir, ['req', '-new', ...newKeyArgs, '-config', 'openssl.cnf',
    '-subj', `/CN=${commonName}`, '-keyout', `${name}.key`, '-out', `${name}.csr`])
  await openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`,
    '-set_serial', `0x${randomBytes(12).toString('hex')}`, '-days', VALID_DAYS,
    '-extfile', 'openssl.cnf', '-extensions', profile, '-out', `${name}.crt`])
}

/** Writes a fresh set of test certificates into `dir` (created if missing). */
export async function generateCertificates (dir: string): Promise<TestCertificates> {
  await mkdir(dir, { recursive: true })
  // Our own config, so the result does not depend on the system's openssl.cnf.
  await writeFile(path.join(dir, 'openssl.cnf'), OPENSSL_CONFIG)
  await Promise.all([
    createCa(dir, 'ca', 'fastify-redis-suite test CA'),
    createCa(dir, 'other-ca', 'unrelated test CA')
  ])
  await Promise.all([
    createLeaf(dir, 'server', 'ca', 'server', 'localhost'),
    createLeaf(dir, 'client', 'ca', 'client', 'fastify-redis-suite test client'),
    createLeaf(dir, 'other-client', 'other-ca', 'client', 'untrusted test client')
  ])
  const [ca, server, client, otherCa, otherClient] = await Promise.all(
    ['ca', 'server', 'client', 'other-ca', 'other-client'].map((name) => readPair(dir, name))
  )
  if (ca === undefined || server === undefined || client === undefined || otherCa === undefined || otherClient === undefined) {
    throw new Error('unreachable: five certificate pairs were read')
  }
  return { dir, ca, server, client, otherCa, otherClient }
}
