// The end-to-end protocol for browsers and Node: envelopes, frames, drop chunks and the worker protocol, each function
// taking the cipher suite it runs on (nobleSuite here; Node's native one in native-suite.ts).
export { AddressError, formatAddress, parseAddress, type WorkerAddress } from './address.js';
export { checkDescriptor, DescriptorError } from './descriptor-check.js';
export {
  type ChunkPlace,
  DROP_BLOB_LIMIT,
  DROP_CHUNK_SIZE,
  deriveDropKeys,
  openChunk,
  openManifest,
  type SealedManifest,
  sealChunk,
  sealManifest,
} from './drop-chunks.js';
export { canonicalJson, fromBase64url, toBase32, toBase64url } from './encoding.js';
export {
  generateUserKeys,
  generateWorkerKeys,
  type OpenedRequest,
  openRequest,
  openResponse,
  type RequestEnvelope,
  type RequestHeader,
  type ResponseEnvelope,
  type SealRequestInput,
  sealRequest,
  sealResponse,
} from './envelope.js';
export { type Fingerprint, fingerprint, verifyFingerprint } from './fingerprint.js';
export {
  createFrameOpener,
  createFrameSealer,
  FRAME_SIZE,
  type FrameOpener,
  type FrameSealer,
  generateFrameKey,
  openStream,
  PREFIX_BYTES,
  sealedLength,
  sealStream,
} from './frames.js';
export { nobleSuite } from './noble-suite.js';
export {
  type Answer,
  type AnswerErrorCode,
  type AnswerMessage,
  answerOfError,
  type Descriptor,
  FS_OPERATIONS,
  type FsOperation,
  MAX_PARTS,
  openAnswer,
  type PipeReply,
  parseRequestType,
  REQUEST_TYPES,
  type RequestKind,
  readPipeReply,
  sealAnswer,
  WorkerError,
} from './protocol.js';
export { SealError } from './seal-error.js';
export type { CipherSuite, IncrementalHash, RawKeyPair } from './suite.js';
