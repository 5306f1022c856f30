export {
  COMPRESSION_CODECS, DEFAULT_COMPRESSION_THRESHOLD, zstdAvailable,
  type Compression, type CompressionCodec, type CompressionOptions
} from './compression.js'
export { parseEncryptionKeys, type EncryptionKey } from './encryption.js'
