// Payload fields at rest: optionally compressed (above a threshold) and encrypted (AES-256-GCM, the key
// id in the value, the session handle and field name authenticated with it). Readers open every form
// (plain JSON, compressed, encrypted) whatever their own settings, so a rolling deploy mixes them; a
// plain field stays plain until it changes. A read without codecs pays one character check per field
// and allocates nothing.
import {
  compress, decompress, decrypt, encrypt, isCompressed, isEncrypted, resolveCompression,
  type Compression, type CompressionOptions, type EncryptionKey
} from '../codecs/index.js'

export interface PayloadCodecOptions {
  /** Compress fields whose JSON is at least `threshold` characters (default 1024). */
  compression?: CompressionOptions | false | undefined
  /** Encrypt every field written with the first key; every key decrypts (rotation). */
  encryptionKeys?: readonly EncryptionKey[] | undefined
}

/** Why a stored payload did not open. */
export type OpenFailure = 'decryption' | 'decompression'

export class PayloadCodec {
  readonly #compression: Compression | undefined
  readonly #keys: readonly EncryptionKey[]
  readonly #writeKey: EncryptionKey | undefined

  constructor (options: PayloadCodecOptions = {}) {
    this.#compression = resolveCompression(options.compression === false ? undefined : options.compression, 'session compression')
    this.#keys = options.encryptionKeys ?? []
    this.#writeKey = this.#keys[0]
  }

  /** The stored form of one field's JSON. */
  seal (handle: string, field: string, json: string): string {
    const text = compress(json, this.#compression)
    return this.#writeKey === undefined ? text : encrypt(text, this.#writeKey, `${handle}\n${field}`)
  }

  /** Every field's JSON, the stored object itself when nothing is sealed; or why it did not open. */
  open (handle: string, fields: Record<string, string>): Record<string, string> | OpenFailure {
    let opened: Record<string, string> | undefined
    for (const field in fields) {
      const stored = fields[field] as string
      if (!isEncrypted(stored) && !isCompressed(stored)) continue
      opened ??= { ...fields }
      let text = stored
      if (isEncrypted(text)) {
        try {
          text = decrypt(text, this.#keys, `${handle}\n${field}`)
        } catch {
          return 'decryption'
        }
      }
      if (isCompressed(text)) {
        try {
          text = decompress(text)
        } catch {
          return 'decompression'
        }
      }
      opened[field] = text
    }
    return opened ?? fields
  }
}
