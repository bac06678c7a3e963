// The end-to-end protocol for browsers and Node: envelopes, frames, drop chunks and the worker protocol, each function
// taking the cipher suite it runs on (nobleSuite here; Node's native one in native-suite.ts).
export {
  AddressError,
  formatAddress,
  formatBoxAddress,
  parseAddress,
  parseBoxAddress,
  type WorkerAddress,
} from './address.js';
export { checkDescriptor, DescriptorError } from './descriptor-check.js';
export {
  type ChunkPlace,
  DROP_BLOB_LIMIT,
  DROP_CHUNK_SIZE,
  type DropRecordPurpose,
  deriveDropKey,
  deriveLinkCheck,
  openChunk,
  openChunkParts,
  openRecord,
  type SealedRecord,
  sealChunk,
  sealChunkParts,
  sealRecord,
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
  responseKeyOf,
  type SealRequestInput,
  sealRequest,
  sealResponse,
  x25519PublicKeyOf,
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
  type DownloadAnswer,
  FS_OPERATIONS,
  type FsOperation,
  MAX_PARTS,
  type OfferedParam,
  openAnswer,
  type PipeReply,
  parseRequestType,
  REQUEST_TYPES,
  type RequestKind,
  readPipeReply,
  sealAnswer,
  WorkerError,
  type WorkerOffer,
} from './protocol.js';
export { SealError } from './seal-error.js';
export type { CipherSuite, IncrementalHash, RawKeyPair } from './suite.js';
export {
  formatTicket,
  parseTicket,
  type Ticket,
  TicketError,
  ticketEphemeralKey,
  ticketResponseKey,
} from './ticket.js';
