export {
  COMPRESSED_MARK, COMPRESSION_CODECS, DEFAULT_COMPRESSION_THRESHOLD, compress, decompress, isCompressed, resolveCompression, zstdAvailable,
  type Compression, type CompressionCodec, type CompressionOptions
} from './compression.js'
export { ENCRYPTED_MARK, decrypt, encrypt, isEncrypted, parseEncryptionKeys, type EncryptionKey } from './encryption.js'
