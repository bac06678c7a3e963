// End-to-end encryption between users and workers (DESIGN §7): keys, sealed envelopes, sealed frames, fingerprints.
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes, randomBytes, utf8ToBytes } from '@noble/hashes/utils.js';

/** A raw key pair: X25519 for a worker, Ed25519 for a user. */
export interface RawKeyPair {
  secretKey: Uint8Array;
  publicKey: Uint8Array;
}

/** The fields of a request envelope that travel in the clear, all authenticated (AAD). */
export interface RequestHeader {
  v: 1;
  /** The request type, a URN the worker lists in its descriptor. */
  typ: string;
  /** The request id: the uid the response is left at. */
  rid: string;
  /** The worker's id (its fingerprint). */
  to: string;
  /** Issued at, seconds since the epoch. */
  iat: number;
  /** Expires at, seconds since the epoch. */
  exp: number;
  /** The ephemeral X25519 public key, base64url. */
  epk: string;
  /** The XChaCha20 nonce, base64url. */
  n: string;
}

/** A sealed request as POSTed to the worker's public path. */
export interface RequestEnvelope extends RequestHeader {
  /** The ciphertext, base64url. */
  ct: string;
}

/** A sealed response as left at the worker's one-to-one path `<rid>`. */
export interface ResponseEnvelope {
  v: 1;
  rid: string;
  n: string;
  ct: string;
}

/** What {@link openRequest} finds inside a genuine request. */
export interface OpenedRequest<T = unknown> {
  header: RequestHeader;
  body: T;
  /** The user's Ed25519 public key; its signature over the header and body was checked. */
  userPublicKey: Uint8Array;
  /** How to reply, as the user put it (for instance a pipe key for a file). */
  reply: unknown;
  /** The key {@link sealResponse} seals the answer with. */
  responseKey: Uint8Array;
}

/** Thrown when an envelope or a frame is malformed, tampered with, truncated or for someone else. */
export class SealError extends Error {
  /** @param message What was wrong. */
  constructor(message: string) {
    super(message);
    this.name = 'SealError';
  }
}

const REQUEST_INFO = utf8ToBytes('deadrop/req/1');
const RESPONSE_INFO = utf8ToBytes('deadrop/res/1');
/** Requests live 5 minutes unless the caller says otherwise: long enough for a worker that polls. */
const DEFAULT_REQUEST_TTL_SECONDS = 300;

/** base64url without padding. */
export function toBase64url(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** Bytes of base64url text; anything that is not strict base64url is a SealError. */
export function fromBase64url(text: string): Uint8Array {
  if (typeof text !== 'string' || !/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) {
    throw new SealError('A field is not base64url.');
  }
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  const bytes = Uint8Array.from(binary, (char) => char.charCodeAt(0));
  if (toBase64url(bytes) !== text) throw new SealError('A field is not canonical base64url.');
  return bytes;
}

/** JSON with object keys sorted at every depth: the same value always gives the same bytes. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, field]) => field !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([name, field]) => `${JSON.stringify(name)}:${canonicalJson(field)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** A worker's identity: an X25519 key pair. */
export function generateWorkerKeys(): RawKeyPair {
  return x25519.keygen();
}

/** A user's identity: an Ed25519 key pair that signs requests. */
export function generateUserKeys(): RawKeyPair {
  return ed25519.keygen();
}

/** A random 32-byte key for {@link createFrameSealer}, to send inside a sealed request or response. */
export function generateFrameKey(): Uint8Array {
  return randomBytes(32);
}

/** The request and response keys of one exchange, from the X25519 shared secret. */
function exchangeKeys(shared: Uint8Array, epk: Uint8Array, workerPublicKey: Uint8Array) {
  const salt = concatBytes(epk, workerPublicKey);
  return {
    requestKey: hkdf(sha256, shared, salt, REQUEST_INFO, 32),
    responseKey: hkdf(sha256, shared, salt, RESPONSE_INFO, 32),
  };
}

/** The AAD of an envelope: the canonical JSON of every field but `ct`, unknown ones included. */
function aadOf(envelope: object): Uint8Array {
  const { ct: _, ...header } = envelope as { ct?: unknown };
  return utf8ToBytes(canonicalJson(header));
}

/** What the user signs: the header and the body, and where the answer goes. */
const signedBytes = (header: RequestHeader, body: unknown, reply: unknown) =>
  utf8ToBytes(canonicalJson({ header, body, reply }));

/** Arguments of {@link sealRequest}. */
export interface SealRequestInput {
  /** The worker's X25519 public key, from its descriptor (check its fingerprint first). */
  workerPublicKey: Uint8Array;
  /** The worker's id. */
  to: string;
  /** The request type URN. */
  typ: string;
  /** Any JSON value. */
  body: unknown;
  /** The user's Ed25519 key pair. */
  user: RawKeyPair;
  /** How to reply (any JSON value), for instance a pipe key for a file. */
  reply?: unknown;
  /** Seconds the request is valid. */
  ttlSeconds?: number;
  /** The current time in milliseconds (for tests). */
  now?: number;
}

/** Seals a request for a worker; keep `responseKey` to open the answer. */
export function sealRequest(input: SealRequestInput): {
  envelope: RequestEnvelope;
  responseKey: Uint8Array;
} {
  const eph = x25519.keygen();
  const shared = x25519.getSharedSecret(eph.secretKey, input.workerPublicKey);
  const { requestKey, responseKey } = exchangeKeys(shared, eph.publicKey, input.workerPublicKey);
  const iat = Math.floor((input.now ?? Date.now()) / 1000);
  const nonce = randomBytes(24);
  const header: RequestHeader = {
    v: 1,
    typ: input.typ,
    rid: toBase64url(randomBytes(16)),
    to: input.to,
    iat,
    exp: iat + (input.ttlSeconds ?? DEFAULT_REQUEST_TTL_SECONDS),
    epk: toBase64url(eph.publicKey),
    n: toBase64url(nonce),
  };
  const reply = input.reply ?? null;
  const plaintext = {
    body: input.body,
    upk: toBase64url(input.user.publicKey),
    sig: toBase64url(ed25519.sign(signedBytes(header, input.body, reply), input.user.secretKey)),
    reply,
  };
  const ct = xchacha20poly1305(requestKey, nonce, aadOf(header)).encrypt(
    utf8ToBytes(JSON.stringify(plaintext)),
  );
  return { envelope: { ...header, ct: toBase64url(ct) }, responseKey };
}

function requireFields(value: unknown, fields: Record<string, 'string' | 'number'>): Record<string, unknown> {
  if (value === null || typeof value !== 'object') throw new SealError('The envelope is not an object.');
  const record = value as Record<string, unknown>;
  if (record.v !== 1) throw new SealError('The envelope is not version 1.');
  for (const [name, type] of Object.entries(fields)) {
    if (typeof record[name] !== type)
      throw new SealError(`The envelope's "${name}" is missing or not a ${type}.`);
  }
  return record;
}

/** Decrypts with `key`, turning noble's failure into a SealError. */
function decrypt(
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  ct: Uint8Array,
  what: string,
): Uint8Array {
  if (nonce.length !== 24) throw new SealError(`The ${what} nonce is not 24 bytes.`);
  try {
    return xchacha20poly1305(key, nonce, aad).decrypt(ct);
  } catch {
    throw new SealError(`The ${what} was tampered with or is not for this key.`);
  }
}

/**
 * Opens a request sealed for this worker and checks the user's signature. Any change to the header, the
 * ciphertext or the fields around it is a SealError. Expiry, replay and authorisation are the worker's.
 */
export function openRequest<T = unknown>(envelope: unknown, worker: RawKeyPair): OpenedRequest<T> {
  const record = requireFields(envelope, {
    typ: 'string',
    rid: 'string',
    to: 'string',
    iat: 'number',
    exp: 'number',
    epk: 'string',
    n: 'string',
    ct: 'string',
  });
  const epk = fromBase64url(record.epk as string);
  let shared: Uint8Array;
  try {
    shared = x25519.getSharedSecret(worker.secretKey, epk);
  } catch {
    throw new SealError('The ephemeral key is not a valid X25519 public key.');
  }
  const { requestKey, responseKey } = exchangeKeys(shared, epk, worker.publicKey);
  const plaintext = decrypt(
    requestKey,
    fromBase64url(record.n as string),
    aadOf(record),
    fromBase64url(record.ct as string),
    'request',
  );
  const inner = JSON.parse(new TextDecoder().decode(plaintext)) as {
    body: T;
    upk: string;
    sig: string;
    reply: unknown;
  };
  if (inner === null || typeof inner !== 'object') throw new SealError('The request holds no signed body.');
  const { ct: _, ...header } = record as unknown as RequestEnvelope;
  const userPublicKey = fromBase64url(inner.upk);
  if (
    !verifySignature(fromBase64url(inner.sig), signedBytes(header, inner.body, inner.reply), userPublicKey)
  ) {
    throw new SealError("The request's signature does not match its user key.");
  }
  return { header, body: inner.body, userPublicKey, reply: inner.reply, responseKey };
}

function verifySignature(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  try {
    return ed25519.verify(signature, message, publicKey);
  } catch {
    // noble throws on a key or signature of the wrong shape: that is a bad signature too.
    return false;
  }
}

/** Seals the answer to request `rid` with the response key {@link openRequest} gave. */
export function sealResponse(responseKey: Uint8Array, rid: string, body: unknown): ResponseEnvelope {
  const nonce = randomBytes(24);
  const header = { v: 1 as const, rid, n: toBase64url(nonce) };
  const ct = xchacha20poly1305(responseKey, nonce, aadOf(header)).encrypt(utf8ToBytes(JSON.stringify(body)));
  return { ...header, ct: toBase64url(ct) };
}

/** Opens the answer to request `rid`; an answer to another request, or a changed one, is a SealError. */
export function openResponse<T = unknown>(responseKey: Uint8Array, rid: string, envelope: unknown): T {
  const record = requireFields(envelope, { rid: 'string', n: 'string', ct: 'string' });
  if (record.rid !== rid) throw new SealError('The response answers another request.');
  const plaintext = decrypt(
    responseKey,
    fromBase64url(record.n as string),
    aadOf(record),
    fromBase64url(record.ct as string),
    'response',
  );
  return JSON.parse(new TextDecoder().decode(plaintext)) as T;
}

// Sealed frames: a 16-byte random prefix, then frames of [uint32 BE ciphertext length][ciphertext].
// Frame i uses nonce prefix ‖ uint64 BE i and AAD uint64 BE i ‖ final flag, so a frame that is moved,
// dropped, changed or claimed to be the last does not open.

/** Plaintext bytes per frame that {@link sealStream} cuts input into. */
export const FRAME_SIZE = 64 * 1024;
const TAG_BYTES = 16;
const PREFIX_BYTES = 16;

function frameNonceAndAad(prefix: Uint8Array, index: number, final: boolean) {
  const counter = new Uint8Array(8);
  new DataView(counter.buffer).setBigUint64(0, BigInt(index));
  return { nonce: concatBytes(prefix, counter), aad: concatBytes(counter, Uint8Array.of(final ? 1 : 0)) };
}

/** Seals a stream frame by frame; send `header` first, then each frame in order, the last one `final`. */
export interface FrameSealer {
  /** The stream's first bytes (the random nonce prefix). */
  readonly header: Uint8Array;
  /** The next frame, length prefix included; nothing may follow a `final` one. */
  seal(chunk: Uint8Array, final?: boolean): Uint8Array;
}

/** A sealer of frames under `key` (32 bytes), with a fresh random nonce prefix. */
export function createFrameSealer(key: Uint8Array): FrameSealer {
  const prefix = randomBytes(PREFIX_BYTES);
  let index = 0;
  let ended = false;
  return {
    header: prefix,
    seal(chunk, final = false) {
      if (ended) throw new SealError('The stream already ended with its final frame.');
      if (chunk.length > FRAME_SIZE) throw new SealError(`A frame holds at most ${FRAME_SIZE} bytes.`);
      ended = final;
      const { nonce, aad } = frameNonceAndAad(prefix, index++, final);
      const ct = xchacha20poly1305(key, nonce, aad).encrypt(chunk);
      const frame = new Uint8Array(4 + ct.length);
      new DataView(frame.buffer).setUint32(0, ct.length);
      frame.set(ct, 4);
      return frame;
    },
  };
}

/** Opens a sealed stream from bytes as they arrive, in chunks of any size. */
export interface FrameOpener {
  /** The plaintext of every frame completed by `bytes`. */
  push(bytes: Uint8Array): Uint8Array[];
  /** Throws unless the final frame came and nothing followed it: a cut-short stream is an error. */
  finish(): void;
}

/** An opener of frames sealed under `key`. */
export function createFrameOpener(key: Uint8Array): FrameOpener {
  let buffer: Uint8Array = new Uint8Array(0);
  let prefix: Uint8Array | undefined;
  let index = 0;
  let ended = false;
  return {
    push(bytes) {
      buffer = buffer.length ? concatBytes(buffer, bytes) : bytes;
      const out: Uint8Array[] = [];
      // Frames are cut out by offset and the rest kept once, so a large chunk is not copied per frame.
      let at = 0;
      for (;;) {
        const left = buffer.length - at;
        if (!prefix) {
          if (left < PREFIX_BYTES) break;
          prefix = buffer.slice(at, at + PREFIX_BYTES);
          at += PREFIX_BYTES;
          continue;
        }
        if (left === 0) break;
        if (ended) throw new SealError('Data follows the final frame.');
        if (left < 4) break;
        const length = new DataView(buffer.buffer, buffer.byteOffset + at).getUint32(0);
        if (length < TAG_BYTES || length > FRAME_SIZE + TAG_BYTES)
          throw new SealError('A frame has an impossible length.');
        if (left < 4 + length) break;
        const frame = openFrame(key, prefix, index++, buffer.subarray(at + 4, at + 4 + length));
        at += 4 + length;
        ended = frame.final;
        out.push(frame.plain);
      }
      buffer = buffer.slice(at);
      return out;
    },
    finish() {
      if (!ended || buffer.length > 0)
        throw new SealError('The stream was cut short: its final frame is missing.');
    },
  };
}

/** Opens frame `index`, trying it as a middle frame and then as the final one. */
function openFrame(
  key: Uint8Array,
  prefix: Uint8Array,
  index: number,
  ct: Uint8Array,
): { plain: Uint8Array; final: boolean } {
  for (const final of [false, true]) {
    const { nonce, aad } = frameNonceAndAad(prefix, index, final);
    try {
      return { plain: xchacha20poly1305(key, nonce, aad).decrypt(ct), final };
    } catch {
      // Not with this flag; the other one is tried, then the frame is refused.
    }
  }
  throw new SealError(`Frame ${index} was tampered with, moved or is not for this key.`);
}

/** A TransformStream that seals bytes into frames (cut at {@link FRAME_SIZE}), ending with a final frame. */
export function sealStream(key: Uint8Array): TransformStream<Uint8Array, Uint8Array> {
  const sealer = createFrameSealer(key);
  return new TransformStream({
    start(controller) {
      controller.enqueue(sealer.header);
    },
    transform(chunk, controller) {
      for (let at = 0; at < chunk.length; at += FRAME_SIZE) {
        controller.enqueue(sealer.seal(chunk.subarray(at, at + FRAME_SIZE)));
      }
    },
    flush(controller) {
      controller.enqueue(sealer.seal(new Uint8Array(0), true));
    },
  });
}

/** A TransformStream that opens sealed frames; it errors on tampering and on a stream cut short. */
export function openStream(key: Uint8Array): TransformStream<Uint8Array, Uint8Array> {
  const opener = createFrameOpener(key);
  return new TransformStream({
    transform(chunk, controller) {
      for (const plain of opener.push(chunk)) controller.enqueue(plain);
    },
    flush() {
      opener.finish();
    },
  });
}

/** The result of {@link fingerprint}: the id and the counter that solves the challenge. */
export interface Fingerprint {
  id: string;
  counter: number;
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 Base32, uppercase, without padding. */
function base32(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = ((value << 8) | byte) & 0xfff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += BASE32[(value >> bits) & 31];
    }
  }
  return bits > 0 ? out + BASE32[(value << (5 - bits)) & 31] : out;
}

/** SHA-256(key ‖ 000000 ‖ int64 BE level ‖ 000000 ‖ uint64 BE counter), the zero bytes as in Deadbox. */
function fingerprintHash(publicKey: Uint8Array, level: number, counter: number): Uint8Array {
  const tail = new Uint8Array(22);
  const view = new DataView(tail.buffer);
  view.setBigInt64(3, BigInt(level));
  view.setBigUint64(14, BigInt(counter));
  return sha256(concatBytes(publicKey, tail));
}

function leadingZeroBits(hash: Uint8Array, level: number): boolean {
  for (let bit = 0; bit < level; bit++) {
    if ((hash[bit >> 3] ?? 0) & (0x80 >> (bit & 7))) return false;
  }
  return true;
}

function idOf(hash: Uint8Array, level: number, length: number): string {
  const pairs = base32(hash.subarray(Math.ceil(level / 8))).match(/../g) ?? [];
  return pairs.slice(0, length).join(':');
}

/**
 * The Deadbox fingerprint of a public key: finds the first counter whose hash starts with `level` zero
 * bits (about 2^level hashes), and gives the id of `length` Base32 pairs after the first ⌈level/8⌉ bytes.
 */
export function fingerprint(publicKey: Uint8Array, level = 21, length = 8): Fingerprint {
  if (!Number.isInteger(level) || level < 0 || level > 64) throw new RangeError('level must be 0 to 64.');
  for (let counter = 0; ; counter++) {
    const hash = fingerprintHash(publicKey, level, counter);
    if (leadingZeroBits(hash, level)) return { id: idOf(hash, level, length), counter };
  }
}

/** Whether `id` is the fingerprint of `publicKey` at `level` with `counter` (one hash; the length is the id's). */
export function verifyFingerprint(
  publicKey: Uint8Array,
  id: string,
  level: number,
  counter: number,
): boolean {
  if (!Number.isSafeInteger(counter) || counter < 0 || !Number.isInteger(level) || level < 0 || level > 64) {
    return false;
  }
  const hash = fingerprintHash(publicKey, level, counter);
  const length = id.split(':').length;
  return leadingZeroBits(hash, level) && idOf(hash, level, length) === id.toUpperCase();
}
