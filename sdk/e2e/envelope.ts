// Request and response envelopes (DESIGN §7): sealed to the worker, signed by the user, answered under the response key.
import { concatBytes } from '@noble/hashes/utils.js';
import { canonicalJson, fromBase64url, parseJsonBytes, toBase64url, utf8 } from './encoding.js';
import { SealError } from './seal-error.js';
import type { CipherSuite, RawKeyPair } from './suite.js';

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
  /** The request id; a random one by default. A ticket chooses it first, to derive the ephemeral key from it. */
  rid?: string;
  /**
   * The ephemeral X25519 secret key, when it is derived rather than random (a detached request's, from the user
   * key and the rid, so that its ticket needs no secret: see ticket.ts). Never use one twice.
   */
  ephemeralSecretKey?: Uint8Array;
}

const REQUEST_INFO = utf8('deadrop/req/1');
const RESPONSE_INFO = utf8('deadrop/res/1');
const NONCE_BYTES = 24;
/** Requests live 5 minutes unless the caller says otherwise: long enough for a worker that polls. */
const DEFAULT_REQUEST_TTL_SECONDS = 300;

/** The X25519 base point: the public key of a secret is its shared secret with this point. */
const BASE_POINT = new Uint8Array(32);
BASE_POINT[0] = 9;

/** The X25519 public key of `secretKey`, on any suite (one scalar multiplication of the base point). */
export const x25519PublicKeyOf = (secretKey: Uint8Array, suite: CipherSuite): Uint8Array =>
  suite.x25519(secretKey, BASE_POINT);

/** A worker's identity: an X25519 key pair. */
export const generateWorkerKeys = (suite: CipherSuite): RawKeyPair => suite.x25519Keygen();

/** A user's identity: an Ed25519 key pair that signs requests. */
export const generateUserKeys = (suite: CipherSuite): RawKeyPair => suite.ed25519Keygen();

/** The request and response keys of one exchange, from the X25519 shared secret. */
function exchangeKeys(suite: CipherSuite, shared: Uint8Array, epk: Uint8Array, workerPublicKey: Uint8Array) {
  const salt = concatBytes(epk, workerPublicKey);
  return {
    requestKey: suite.hkdf(shared, salt, REQUEST_INFO, 32),
    responseKey: suite.hkdf(shared, salt, RESPONSE_INFO, 32),
  };
}

/** The response key of a request sealed with `ephemeralSecretKey` to `workerPublicKey`: what its sender kept. */
export function responseKeyOf(
  ephemeralSecretKey: Uint8Array,
  workerPublicKey: Uint8Array,
  suite: CipherSuite,
): Uint8Array {
  const shared = suite.x25519(ephemeralSecretKey, workerPublicKey);
  const epk = x25519PublicKeyOf(ephemeralSecretKey, suite);
  return exchangeKeys(suite, shared, epk, workerPublicKey).responseKey;
}

/** The AAD of an envelope: the canonical JSON of every field but `ct`, unknown ones included. */
function aadOf(envelope: object): Uint8Array {
  const { ct: _, ...header } = envelope as { ct?: unknown };
  return utf8(canonicalJson(header));
}

/** What the user signs: the header and the body, and where the answer goes. */
const signedBytes = (header: RequestHeader, body: unknown, reply: unknown) =>
  utf8(canonicalJson({ header, body, reply }));

/** Seals a request for a worker; keep `responseKey` to open the answer. */
export function sealRequest(
  input: SealRequestInput,
  suite: CipherSuite,
): { envelope: RequestEnvelope; responseKey: Uint8Array } {
  const eph = input.ephemeralSecretKey
    ? {
        secretKey: input.ephemeralSecretKey,
        publicKey: x25519PublicKeyOf(input.ephemeralSecretKey, suite),
      }
    : suite.x25519Keygen();
  const shared = suite.x25519(eph.secretKey, input.workerPublicKey);
  const { requestKey, responseKey } = exchangeKeys(suite, shared, eph.publicKey, input.workerPublicKey);
  const iat = Math.floor((input.now ?? Date.now()) / 1000);
  const nonce = suite.randomBytes(NONCE_BYTES);
  const header: RequestHeader = {
    v: 1,
    typ: input.typ,
    rid: input.rid ?? toBase64url(suite.randomBytes(16)),
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
    sig: toBase64url(suite.ed25519Sign(signedBytes(header, input.body, reply), input.user.secretKey)),
    reply,
  };
  const ct = suite.seal(requestKey, nonce, aadOf(header), utf8(JSON.stringify(plaintext)));
  return { envelope: { ...header, ct: toBase64url(ct) }, responseKey };
}

function requireFields(value: unknown, fields: Record<string, 'string' | 'number'>): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new SealError('The envelope is not an object.');
  const record = value as Record<string, unknown>;
  if (record.v !== 1) throw new SealError('The envelope is not version 1.');
  for (const [name, type] of Object.entries(fields)) {
    if (typeof record[name] !== type)
      throw new SealError(`The envelope's "${name}" is missing or not a ${type}.`);
  }
  return record;
}

/** Decrypts with `key`, turning the suite's failure into a SealError. */
function decrypt(
  suite: CipherSuite,
  key: Uint8Array,
  record: Record<string, unknown>,
  what: string,
): Uint8Array {
  const nonce = fromBase64url(record.n as string);
  if (nonce.length !== NONCE_BYTES) throw new SealError(`The ${what} nonce is not 24 bytes.`);
  const ct = fromBase64url(record.ct as string);
  const aad = aadOf(record);
  try {
    return suite.open(key, nonce, aad, ct);
  } catch {
    throw new SealError(`The ${what} was tampered with or is not for this key.`);
  }
}

const REQUEST_FIELDS = {
  typ: 'string',
  rid: 'string',
  to: 'string',
  iat: 'number',
  exp: 'number',
  epk: 'string',
  n: 'string',
  ct: 'string',
} as const;

/**
 * Opens a request sealed for this worker and checks the user's signature. Any change to the header, the
 * ciphertext or the fields around it is a SealError. Expiry, replay and authorisation are the worker's.
 */
export function openRequest<T = unknown>(
  envelope: unknown,
  worker: RawKeyPair,
  suite: CipherSuite,
): OpenedRequest<T> {
  const record = requireFields(envelope, REQUEST_FIELDS);
  const epk = fromBase64url(record.epk as string);
  let shared: Uint8Array;
  try {
    shared = suite.x25519(worker.secretKey, epk);
  } catch {
    throw new SealError('The ephemeral key is not a valid X25519 public key.');
  }
  const { requestKey, responseKey } = exchangeKeys(suite, shared, epk, worker.publicKey);
  const inner = parseJsonBytes<{ body: T; upk: unknown; sig: unknown; reply: unknown }>(
    decrypt(suite, requestKey, record, 'request'),
    'request',
  );
  if (
    inner === null ||
    typeof inner !== 'object' ||
    typeof inner.upk !== 'string' ||
    typeof inner.sig !== 'string'
  )
    throw new SealError('The request holds no signed body.');
  const { ct: _, ...header } = record as unknown as RequestEnvelope;
  const userPublicKey = fromBase64url(inner.upk);
  const signed = signedBytes(header, inner.body, inner.reply);
  if (!suite.ed25519Verify(fromBase64url(inner.sig), signed, userPublicKey)) {
    throw new SealError("The request's signature does not match its user key.");
  }
  return { header, body: inner.body, userPublicKey, reply: inner.reply, responseKey };
}

/** Seals the answer to request `rid` with the response key {@link openRequest} gave. */
export function sealResponse(
  responseKey: Uint8Array,
  rid: string,
  body: unknown,
  suite: CipherSuite,
): ResponseEnvelope {
  const nonce = suite.randomBytes(NONCE_BYTES);
  const header = { v: 1 as const, rid, n: toBase64url(nonce) };
  const ct = suite.seal(responseKey, nonce, aadOf(header), utf8(JSON.stringify(body)));
  return { ...header, ct: toBase64url(ct) };
}

/** Opens the answer to request `rid`; an answer to another request, or a changed one, is a SealError. */
export function openResponse<T = unknown>(
  responseKey: Uint8Array,
  rid: string,
  envelope: unknown,
  suite: CipherSuite,
): T {
  const record = requireFields(envelope, { rid: 'string', n: 'string', ct: 'string' });
  if (record.rid !== rid) throw new SealError('The response answers another request.');
  return parseJsonBytes<T>(decrypt(suite, responseKey, record, 'response'), 'response');
}
