// sealRequest and openRequest of sdk/crypto.ts (same envelopes, byte for byte) on Node's native X25519 and Ed25519.
import {
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
  randomBytes,
  sign,
  verify,
} from 'node:crypto';
import {
  canonicalJson,
  fromBase64url,
  type OpenedRequest,
  type RawKeyPair,
  type RequestEnvelope,
  type RequestHeader,
  SealError,
  type SealRequestInput,
  toBase64url,
} from '../../sdk/crypto.js';
import { xchachaDecrypt, xchachaEncrypt } from './xchacha.js';

// noble's X25519 and Ed25519 are pure JS: about 3 ms to seal a request and 3 ms to open one here, nearly half
// of a round trip. OpenSSL does each in a tenth of a millisecond. The rules are the SDK's (README "Crypto").

const REQUEST_INFO = 'deadrop/req/1';
const RESPONSE_INFO = 'deadrop/res/1';
const DEFAULT_REQUEST_TTL_SECONDS = 300;

const okp = (crv: 'X25519' | 'Ed25519', publicKey: Uint8Array, secretKey?: Uint8Array) => ({
  key: { kty: 'OKP', crv, x: toBase64url(publicKey), ...(secretKey && { d: toBase64url(secretKey) }) },
  format: 'jwk' as const,
});

/** Key objects are made once per key: importing costs more than using. */
const keyCache = new Map<string, KeyObject>();
function cachedKey(kind: string, make: () => KeyObject, publicKey: Uint8Array): KeyObject {
  const name = `${kind}:${toBase64url(publicKey)}`;
  let key = keyCache.get(name);
  if (!key) {
    if (keyCache.size > 1000) keyCache.clear();
    key = make();
    keyCache.set(name, key);
  }
  return key;
}

function exchangeKeys(shared: Uint8Array, epk: Uint8Array, workerPublicKey: Uint8Array) {
  const salt = Buffer.concat([epk, workerPublicKey]);
  return {
    requestKey: new Uint8Array(hkdfSync('sha256', shared, salt, REQUEST_INFO, 32)),
    responseKey: new Uint8Array(hkdfSync('sha256', shared, salt, RESPONSE_INFO, 32)),
  };
}

const aadOf = (envelope: object) => {
  const { ct: _, ...header } = envelope as { ct?: unknown };
  return Buffer.from(canonicalJson(header));
};

const signedBytes = (header: RequestHeader, body: unknown, reply: unknown) =>
  Buffer.from(canonicalJson({ header, body, reply }));

/** sdk/crypto.ts's sealRequest, natively: the same envelope, which the SDK's openRequest opens. */
export function sealRequestNative(input: SealRequestInput): {
  envelope: RequestEnvelope;
  responseKey: Uint8Array;
} {
  const eph = generateKeyPairSync('x25519');
  const epk = fromBase64url(eph.publicKey.export({ format: 'jwk' }).x as string);
  const workerKey = cachedKey(
    'x',
    () => createPublicKey(okp('X25519', input.workerPublicKey)),
    input.workerPublicKey,
  );
  const shared = diffieHellman({ privateKey: eph.privateKey, publicKey: workerKey });
  const { requestKey, responseKey } = exchangeKeys(shared, epk, input.workerPublicKey);
  const iat = Math.floor((input.now ?? Date.now()) / 1000);
  const nonce = randomBytes(24);
  const header: RequestHeader = {
    v: 1,
    typ: input.typ,
    rid: toBase64url(randomBytes(16)),
    to: input.to,
    iat,
    exp: iat + (input.ttlSeconds ?? DEFAULT_REQUEST_TTL_SECONDS),
    epk: toBase64url(epk),
    n: toBase64url(nonce),
  };
  const reply = input.reply ?? null;
  const userKey = cachedKey(
    'user',
    () => createPrivateKey(okp('Ed25519', input.user.publicKey, input.user.secretKey)),
    input.user.publicKey,
  );
  const plaintext = {
    body: input.body,
    upk: toBase64url(input.user.publicKey),
    sig: toBase64url(sign(null, signedBytes(header, input.body, reply), userKey)),
    reply,
  };
  const ct = xchachaEncrypt(requestKey, nonce, aadOf(header), Buffer.from(JSON.stringify(plaintext)));
  return { envelope: { ...header, ct: toBase64url(ct) }, responseKey };
}

const FIELDS = {
  typ: 'string',
  rid: 'string',
  to: 'string',
  iat: 'number',
  exp: 'number',
  epk: 'string',
  n: 'string',
  ct: 'string',
};

/**
 * sdk/crypto.ts's openRequest, natively: opens a request sealed for `worker` and checks the user's signature.
 * Any change to the header, the ciphertext or the fields around it is a SealError.
 */
export function openRequestNative<T = unknown>(envelope: unknown, worker: RawKeyPair): OpenedRequest<T> {
  if (envelope === null || typeof envelope !== 'object')
    throw new SealError('The envelope is not an object.');
  const record = envelope as Record<string, unknown>;
  if (record.v !== 1) throw new SealError('The envelope is not version 1.');
  for (const [name, type] of Object.entries(FIELDS)) {
    if (typeof record[name] !== type)
      throw new SealError(`The envelope's "${name}" is missing or not a ${type}.`);
  }
  const epk = fromBase64url(record.epk as string);
  let shared: Buffer;
  try {
    const workerKey = cachedKey(
      'w',
      () => createPrivateKey(okp('X25519', worker.publicKey, worker.secretKey)),
      worker.publicKey,
    );
    shared = diffieHellman({ privateKey: workerKey, publicKey: createPublicKey(okp('X25519', epk)) });
  } catch {
    throw new SealError('The ephemeral key is not a valid X25519 public key.');
  }
  const { requestKey, responseKey } = exchangeKeys(shared, epk, worker.publicKey);
  const plaintext = xchachaDecrypt(
    requestKey,
    fromBase64url(record.n as string),
    aadOf(record),
    fromBase64url(record.ct as string),
  );
  if (!plaintext) throw new SealError('The request was tampered with or is not for this key.');
  const inner = JSON.parse(plaintext.toString('utf8')) as {
    body: T;
    upk: string;
    sig: string;
    reply: unknown;
  };
  if (inner === null || typeof inner !== 'object') throw new SealError('The request holds no signed body.');
  const { ct: _, ...header } = record as unknown as RequestEnvelope;
  const userPublicKey = fromBase64url(inner.upk);
  let genuine = false;
  try {
    const userKey = cachedKey('u', () => createPublicKey(okp('Ed25519', userPublicKey)), userPublicKey);
    genuine = verify(null, signedBytes(header, inner.body, inner.reply), userKey, fromBase64url(inner.sig));
  } catch {
    // A key or signature of the wrong shape: a bad signature too.
  }
  if (!genuine) throw new SealError("The request's signature does not match its user key.");
  return { header, body: inner.body, userPublicKey, reply: inner.reply, responseKey };
}
