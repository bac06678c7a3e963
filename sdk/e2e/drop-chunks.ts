// Drop chunks and manifests: a file sealed chunk by chunk, each bound to its drop, its index and whether it is last.
import { concatBytes } from '@noble/hashes/utils.js';
import { fromBase64url, parseJsonBytes, toBase64url, utf8 } from './encoding.js';
import { SealError } from './seal-error.js';
import type { CipherSuite } from './suite.js';

// A chunk is nonce(24) ‖ ciphertext ‖ tag(16) under the drop key, AAD "deadrop/drop/1\n<public key>\nchunk\n" ‖
// uint64 BE index ‖ final flag. The manifest and the claim are each {v:1, n, ct}, AAD
// "deadrop/drop/1\n<public key>\nmanifest" (or "…\nclaim"). The link check is HKDF of the link's secret alone, so a
// receiver learns that the link is right before it is asked for a password.

const PROTOCOL = 'deadrop/drop/1';
const NONCE_BYTES = 24;
const TAG_BYTES = 16;
/** The relay's default blob limit (DEADROP_BLOB_LIMIT): a sealed chunk fills it exactly. */
export const DROP_BLOB_LIMIT = 1_048_576;
/** Plaintext bytes per chunk: the blob limit less the chunk's nonce and tag. */
export const DROP_CHUNK_SIZE = DROP_BLOB_LIMIT - NONCE_BYTES - TAG_BYTES;
/** Bytes a sealed chunk has beyond its plaintext. */
export const CHUNK_SEAL_OVERHEAD = NONCE_BYTES + TAG_BYTES;

/** The key of a drop, from its link's secret (and the stretched password), bound to its public key. */
export const deriveDropKey = (secret: Uint8Array, publicKey: string, suite: CipherSuite) =>
  suite.hkdf(secret, utf8(publicKey), utf8(`${PROTOCOL} key`), 32);

/** What the relay shows of a link's secret: proof that a link is typed right, and nothing about the password. */
export const deriveLinkCheck = (linkSecret: Uint8Array, publicKey: string, suite: CipherSuite) =>
  suite.hkdf(linkSecret, utf8(publicKey), utf8(`${PROTOCOL} link`), 16);

/** The AAD of chunk `index`: the drop, the index and whether it is the last, so none can move or be cut. */
function chunkAad(publicKey: string, index: number, final: boolean): Uint8Array {
  const tail = new Uint8Array(9);
  new DataView(tail.buffer).setBigUint64(0, BigInt(index));
  tail[8] = final ? 1 : 0;
  return concatBytes(utf8(`${PROTOCOL}\n${publicKey}\nchunk\n`), tail);
}

/** What a sealed record of a drop is: its manifest (name, size…), its claim (the key that reads its chunks), its live lane's key, or a request on that lane. */
export type DropRecordPurpose = 'manifest' | 'claim' | 'live' | 'live-request';

const recordAad = (publicKey: string, purpose: DropRecordPurpose) =>
  utf8(`${PROTOCOL}\n${publicKey}\n${purpose}`);

/** Where a chunk sits in its drop. */
export interface ChunkPlace {
  publicKey: string;
  index: number;
  final: boolean;
}

/** Chunk `place` of a drop, sealed: nonce ‖ ciphertext ‖ tag, in one array. */
export function sealChunk(
  key: Uint8Array,
  place: ChunkPlace,
  plain: Uint8Array,
  suite: CipherSuite,
): Uint8Array {
  const sealed = new Uint8Array(NONCE_BYTES + plain.length + TAG_BYTES);
  const nonce = suite.randomBytes(NONCE_BYTES);
  sealed.set(nonce, 0);
  suite.seal(
    key,
    nonce,
    chunkAad(place.publicKey, place.index, place.final),
    plain,
    sealed.subarray(NONCE_BYTES),
  );
  return sealed;
}

/** Chunk `place` of a drop, sealed as `sealChunk` seals it, in pieces for a stream: none is copied to join them. */
export function sealChunkParts(
  key: Uint8Array,
  place: ChunkPlace,
  plain: Uint8Array,
  suite: CipherSuite,
): Uint8Array[] {
  const nonce = suite.randomBytes(NONCE_BYTES);
  return [nonce, ...suite.sealParts(key, nonce, chunkAad(place.publicKey, place.index, place.final), plain)];
}

/** The plaintext of chunk `place`; a SealError when it was altered, moved, cut or is not of this drop. */
export function openChunk(
  key: Uint8Array,
  place: ChunkPlace,
  sealed: Uint8Array,
  suite: CipherSuite,
): Uint8Array {
  if (sealed.length < NONCE_BYTES + TAG_BYTES)
    throw new SealError('The chunk is shorter than its nonce and tag.');
  try {
    return suite.open(
      key,
      sealed.subarray(0, NONCE_BYTES),
      chunkAad(place.publicKey, place.index, place.final),
      sealed.subarray(NONCE_BYTES),
    );
  } catch {
    throw new SealError(`Chunk ${place.index} was altered, moved or cut short.`);
  }
}

/**
 * The plaintext of chunk `place`, sealed as `parts` (a stream's pieces, in order), in pieces: none is copied to
 * join them. A SealError as `openChunk` throws.
 */
export function openChunkParts(
  key: Uint8Array,
  place: ChunkPlace,
  parts: readonly Uint8Array[],
  suite: CipherSuite,
): Uint8Array[] {
  const nonce = new Uint8Array(NONCE_BYTES);
  const rest: Uint8Array[] = [];
  let at = 0;
  for (const part of parts) {
    const inNonce = Math.max(0, Math.min(part.length, NONCE_BYTES - at));
    if (inNonce > 0) nonce.set(part.subarray(0, inNonce), at);
    if (inNonce < part.length) rest.push(part.subarray(inNonce));
    at += part.length;
  }
  if (at < NONCE_BYTES + TAG_BYTES) throw new SealError('The chunk is shorter than its nonce and tag.');
  try {
    return suite.openParts(key, nonce, chunkAad(place.publicKey, place.index, place.final), rest);
  } catch {
    throw new SealError(`Chunk ${place.index} was altered, moved or cut short.`);
  }
}

/** A sealed record (manifest or claim) of a drop. */
export interface SealedRecord {
  v: 1;
  n: string;
  ct: string;
}

/** Seals a JSON value as the drop's `purpose` record for the drop at `publicKey`. */
export function sealRecord(
  key: Uint8Array,
  publicKey: string,
  purpose: DropRecordPurpose,
  value: unknown,
  suite: CipherSuite,
): SealedRecord {
  const nonce = suite.randomBytes(NONCE_BYTES);
  const ct = suite.seal(key, nonce, recordAad(publicKey, purpose), utf8(JSON.stringify(value)));
  return { v: 1, n: toBase64url(nonce), ct: toBase64url(ct) };
}

/** The record's JSON value; a SealError when it is not this drop's `purpose` record under this key. */
export function openRecord(
  key: Uint8Array,
  publicKey: string,
  purpose: DropRecordPurpose,
  envelope: unknown,
  suite: CipherSuite,
): unknown {
  const record = envelope as Partial<SealedRecord> | null;
  if (record?.v !== 1 || typeof record.n !== 'string' || typeof record.ct !== 'string')
    throw new SealError(`The ${purpose} is not a sealed record.`);
  let plain: Uint8Array;
  try {
    plain = suite.open(key, fromBase64url(record.n), recordAad(publicKey, purpose), fromBase64url(record.ct));
  } catch {
    throw new SealError(`The ${purpose} does not open under this key.`);
  }
  return parseJsonBytes(plain, purpose);
}
