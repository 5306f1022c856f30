// Compression of stored text (cache entries, optionally session fields) with node:zlib.
//
// A compressed value is text, since the hit path reads Redis replies as strings:
//
//   z<codec letter>\n<base64 of the compressed UTF-8 bytes>
//
// The leading 'z' is the marker: no uncompressed form starts with it (a cache envelope starts with
// '2', a session field is JSON: '{', '[', '"', a digit, t, f or n), so a reader tells the two forms
// apart by one character and reads both, whatever its own settings: a rolling deploy mixes them.
// The codec is named in the value, so a reader decompresses what any writer chose.
import zlib from 'node:zlib'
import { CompressionOptionError } from '../errors/index.js'

export type CompressionCodec = 'zlib' | 'brotli' | 'zstd'
export const COMPRESSION_CODECS: readonly CompressionCodec[] = ['zlib', 'brotli', 'zstd']
/** Values shorter than this (in characters of their stored text) are stored as they are. */
export const DEFAULT_COMPRESSION_THRESHOLD = 1024

export interface CompressionOptions {
  /** zlib (deflate), brotli, or zstd (Node 22.15+ and 24). */
  codec: CompressionCodec
  /** Compress only stored text at least this long (characters). Default 1024. */
  threshold?: number
}

export interface Compression { codec: CompressionCodec, threshold: number, letter: string }

/** The first character of every compressed value. */
export const COMPRESSED_MARK = 122 // 'z'

type Sync = (input: Buffer) => Buffer
// zstd is in node:zlib since Node 22.15 and 23.8; typed loosely so older @types/node still compile.
const z = zlib as unknown as Record<string, unknown>
const zstdCompress = z['zstdCompressSync'] as Sync | undefined
const zstdDecompress = z['zstdDecompressSync'] as Sync | undefined

export const zstdAvailable = typeof zstdCompress === 'function' && typeof zstdDecompress === 'function'

// Brotli's default quality (11) is for static assets: per write it costs tens of times zlib's CPU.
// Quality 4 compresses about as well as zlib's default, at a similar cost.
const BROTLI = { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 4 } }
// A value never decompresses to more than this: a corrupt or hostile length cannot exhaust memory.
const MAX_OUTPUT = 512 * 1024 * 1024

const LETTERS: Record<CompressionCodec, string> = { zlib: 'd', brotli: 'b', zstd: 's' }

const compressors: Record<string, Sync | undefined> = {
  d: (input) => zlib.deflateSync(input),
  b: (input) => zlib.brotliCompressSync(input, BROTLI),
  s: zstdCompress
}
const decompressors: Record<string, Sync | undefined> = {
  d: (input) => zlib.inflateSync(input, { maxOutputLength: MAX_OUTPUT }),
  b: (input) => zlib.brotliDecompressSync(input, { maxOutputLength: MAX_OUTPUT }),
  s: zstdDecompress === undefined ? undefined : (input) => (zlib as unknown as { zstdDecompressSync: (b: Buffer, o: object) => Buffer }).zstdDecompressSync(input, { maxOutputLength: MAX_OUTPUT })
}

/** Checks and completes options; throws a CompressionOptionError (a TypeError) naming what is wrong. undefined or false: no compression. */
export function resolveCompression (options: CompressionOptions | false | undefined, name = 'compression'): Compression | undefined {
  if (options === undefined || options === false) return undefined
  const { codec, threshold = DEFAULT_COMPRESSION_THRESHOLD } = options
  if (!COMPRESSION_CODECS.includes(codec)) throw new CompressionOptionError(`${name}.codec must be one of ${COMPRESSION_CODECS.join(', ')}, got ${JSON.stringify(codec)}`)
  if (codec === 'zstd' && !zstdAvailable) throw new CompressionOptionError(`${name}.codec zstd needs Node 22.15+ (node:zlib has no zstd in Node ${process.versions.node}); use zlib or brotli`)
  if (!Number.isInteger(threshold) || threshold < 0) throw new CompressionOptionError(`${name}.threshold must be a whole number of characters, 0 or more, got ${String(threshold)}`)
  return { codec, threshold, letter: LETTERS[codec] }
}

export function isCompressed (stored: string): boolean {
  return stored.charCodeAt(0) === COMPRESSED_MARK
}

/**
 * The stored form of `text`: compressed when it is at least the threshold long and compression saves
 * space (base64 adds a third), else `text` itself.
 */
export function compress (text: string, compression: Compression | undefined): string {
  if (compression === undefined || text.length < compression.threshold) return text
  const compressor = compressors[compression.letter] as Sync
  const stored = `z${compression.letter}\n${compressor(Buffer.from(text)).toString('base64')}`
  return stored.length < text.length ? stored : text
}

/** The text a compressed value holds; throws when it is corrupt or its codec is unknown here. */
export function decompress (stored: string): string {
  const decompressor = stored.charCodeAt(2) === 10 ? decompressors[stored.charAt(1)] : undefined
  if (decompressor === undefined) throw new Error(`unknown compressed form ${JSON.stringify(stored.slice(0, 2))}${stored.charAt(1) === 's' ? ' (zstd needs Node 22.15+)' : ''}`)
  return decompressor(Buffer.from(stored.slice(3), 'base64')).toString()
}
