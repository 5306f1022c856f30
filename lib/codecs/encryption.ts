// AES-256-GCM for values at rest (session payload fields). An encrypted value is text:
//
//   e<key id>:<base64 of 12-byte IV, 16-byte tag, ciphertext>
//
// 'e' starts no JSON value and no compressed value ('z'), so readers tell the forms apart by one
// character. The key id names the key that sealed it: during a rotation new writes use the first key
// and every listed key still opens what it sealed. The caller's associated data (for sessions: the
// session handle and field name) is authenticated, so a value moved to another session or field, or
// altered in any bit, does not open.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'

export interface EncryptionKey { id: string, key: Buffer }

export const ENCRYPTED_MARK = 101 // 'e'
const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/
const IV_BYTES = 12
const TAG_BYTES = 16

/**
 * Parses `id:key` entries (the key: 32 bytes, base64 or hex). Throws an Error naming `name` and the
 * entry's position, never its value.
 */
export function parseEncryptionKeys (entries: readonly string[], name = 'encryption keys'): EncryptionKey[] {
  const keys: EncryptionKey[] = []
  entries.forEach((entry, i) => {
    const at = entry.indexOf(':')
    const id = entry.slice(0, at)
    const text = entry.slice(at + 1)
    if (at < 1 || !KEY_ID.test(id)) throw new Error(`${name} entry ${i + 1} must be <id>:<key>, the id 1-32 of A-Z a-z 0-9 _ -`)
    const key = /^[0-9a-fA-F]{64}$/.test(text) ? Buffer.from(text, 'hex') : Buffer.from(text, 'base64')
    if (key.length !== 32 || (!/^[0-9a-fA-F]{64}$/.test(text) && key.toString('base64').replace(/=+$/, '') !== text.replace(/=+$/, ''))) {
      throw new Error(`${name} entry ${i + 1} (id ${id}) must be a 32-byte key in base64 or hex (openssl rand -base64 32)`)
    }
    if (keys.some((k) => k.id === id)) throw new Error(`${name} has the id ${id} twice`)
    keys.push({ id, key })
  })
  return keys
}

export function isEncrypted (stored: string): boolean {
  return stored.charCodeAt(0) === ENCRYPTED_MARK
}

/** Seals `text` with `key`, binding `aad`. */
export function encrypt (text: string, key: EncryptionKey, aad: string): string {
  const iv = randomBytes(IV_BYTES)
  const cipher = createCipheriv('aes-256-gcm', key.key, iv)
  cipher.setAAD(Buffer.from(aad))
  const body = Buffer.concat([iv, Buffer.alloc(TAG_BYTES), cipher.update(text, 'utf8'), cipher.final()])
  cipher.getAuthTag().copy(body, IV_BYTES)
  return `e${key.id}:${body.toString('base64')}`
}

/** The text an encrypted value holds; throws when its key is unknown, or it was altered or moved. */
export function decrypt (stored: string, keys: readonly EncryptionKey[], aad: string): string {
  const colon = stored.indexOf(':')
  const id = stored.slice(1, colon)
  const key = colon > 1 ? keys.find((k) => k.id === id) : undefined
  if (key === undefined) throw new Error(`no encryption key with id ${JSON.stringify(id.slice(0, 32))}`)
  const body = Buffer.from(stored.slice(colon + 1), 'base64')
  if (body.length < IV_BYTES + TAG_BYTES) throw new Error('encrypted value too short')
  const decipher = createDecipheriv('aes-256-gcm', key.key, body.subarray(0, IV_BYTES))
  decipher.setAAD(Buffer.from(aad))
  decipher.setAuthTag(body.subarray(IV_BYTES, IV_BYTES + TAG_BYTES))
  return Buffer.concat([decipher.update(body.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8')
}
