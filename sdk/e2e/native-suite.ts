// Node only: the cipher suite on node:crypto (OpenSSL), byte for byte the same as @noble's, chosen where Node has it.
import {
  createCipheriv,
  createDecipheriv,
  createHash,
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
import { hchacha } from '@noble/ciphers/chacha.js';
import { toBase64url } from './encoding.js';
import type { CipherSuite } from './suite.js';

// @noble's XChaCha20-Poly1305 runs near 150 MB/s here, OpenSSL's ChaCha20-Poly1305 near 1.4 GB/s; its X25519 and
// Ed25519 take a tenth of a millisecond where noble's take about 3 ms.

const TAG_BYTES = 16;
/** "expand 32-byte k" as little-endian words. */
const SIGMA = new Uint32Array([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]);

/** Little-endian words of `bytes`, whatever the host's byte order. */
function words(bytes: Uint8Array): Uint32Array {
  const out = new Uint32Array(bytes.length / 4);
  for (let at = 0; at < out.length; at++) {
    const i = at * 4;
    out[at] =
      ((bytes[i] as number) |
        ((bytes[i + 1] as number) << 8) |
        ((bytes[i + 2] as number) << 16) |
        ((bytes[i + 3] as number) << 24)) >>>
      0;
  }
  return out;
}

/** The last subkey made, with its key and nonce prefix: the frames of one stream all share it. */
const lastSubkey = { key: new Uint8Array(32), prefix: new Uint8Array(16), subkey: Buffer.alloc(0) };

const same = (a: Uint8Array, b: Uint8Array) => {
  for (let at = 0; at < a.length; at++) if (a[at] !== b[at]) return false;
  return true;
};

/**
 * XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha §2.3) is ChaCha20-Poly1305 (RFC 8439) under the HChaCha20 subkey
 * of the key and the nonce's first 16 bytes, with 4 zero bytes and the nonce's last 8 bytes as its nonce.
 * OpenSSL has no HChaCha20; @noble's core function gives it (a third of a microsecond).
 */
function subkeyAndIv(key: Uint8Array, nonce: Uint8Array): { subkey: Buffer; iv: Buffer } {
  if (key.length !== 32 || nonce.length !== 24)
    throw new RangeError('XChaCha20 takes a 32-byte key and a 24-byte nonce.');
  const prefix = nonce.subarray(0, 16);
  let subkey = lastSubkey.subkey;
  if (subkey.length === 0 || !same(key, lastSubkey.key) || !same(prefix, lastSubkey.prefix)) {
    const out = new Uint32Array(8);
    hchacha(SIGMA, words(key), words(prefix), out);
    subkey = Buffer.alloc(32);
    for (let at = 0; at < 8; at++) subkey.writeUInt32LE(out[at] as number, at * 4);
    lastSubkey.key.set(key);
    lastSubkey.prefix.set(prefix);
    lastSubkey.subkey = subkey;
  }
  const iv = Buffer.alloc(12);
  iv.set(nonce.subarray(16, 24), 4);
  return { subkey, iv };
}

/**
 * Bytes given to OpenSSL at a time: a 1 MiB chunk in 64 KiB slices seals in about half the time of one call, as
 * each slice and its output stay in the CPU's cache (measured on Node 20's OpenSSL 3.0). The bytes are the same.
 */
const SLICE_BYTES = 65_536;

function seal(
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  plaintext: Uint8Array,
  output?: Uint8Array,
) {
  const { subkey, iv } = subkeyAndIv(key, nonce);
  const cipher = createCipheriv('chacha20-poly1305', subkey, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad, { plaintextLength: plaintext.length });
  const out = output ?? Buffer.allocUnsafe(plaintext.length + TAG_BYTES);
  if (out.length !== plaintext.length + TAG_BYTES)
    throw new RangeError('The output must be 16 bytes longer than the plaintext.');
  for (let at = 0; at < plaintext.length; at += SLICE_BYTES) {
    out.set(cipher.update(plaintext.subarray(at, at + SLICE_BYTES)), at);
  }
  cipher.final();
  out.set(cipher.getAuthTag(), plaintext.length);
  return out;
}

function sealParts(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array[] {
  const { subkey, iv } = subkeyAndIv(key, nonce);
  const cipher = createCipheriv('chacha20-poly1305', subkey, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad, { plaintextLength: plaintext.length });
  const parts: Uint8Array[] = [];
  for (let at = 0; at < plaintext.length; at += SLICE_BYTES) {
    parts.push(cipher.update(plaintext.subarray(at, at + SLICE_BYTES)));
  }
  cipher.final();
  parts.push(cipher.getAuthTag());
  return parts;
}

function open(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array {
  if (sealed.length < TAG_BYTES) throw new Error('The ciphertext is shorter than its tag.');
  const { subkey, iv } = subkeyAndIv(key, nonce);
  const decipher = createDecipheriv('chacha20-poly1305', subkey, iv, { authTagLength: TAG_BYTES });
  const ct = sealed.subarray(0, sealed.length - TAG_BYTES);
  decipher.setAAD(aad, { plaintextLength: ct.length });
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  const plain = Buffer.allocUnsafe(ct.length);
  for (let at = 0; at < ct.length; at += SLICE_BYTES) {
    plain.set(decipher.update(ct.subarray(at, at + SLICE_BYTES)), at);
  }
  // final() throws on a bad tag, so the plaintext is never handed out unverified.
  decipher.final();
  return plain;
}

/**
 * Opens ciphertext ‖ tag given in pieces: each piece is deciphered as it lies, the tag gathered from the end,
 * and the plaintext pieces handed out only after final() verified the tag.
 */
function openParts(
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  parts: readonly Uint8Array[],
): Uint8Array[] {
  const total = parts.reduce((sum, part) => sum + part.length, 0);
  if (total < TAG_BYTES) throw new Error('The ciphertext is shorter than its tag.');
  const ctLength = total - TAG_BYTES;
  const { subkey, iv } = subkeyAndIv(key, nonce);
  const decipher = createDecipheriv('chacha20-poly1305', subkey, iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad, { plaintextLength: ctLength });
  const tag = Buffer.allocUnsafe(TAG_BYTES);
  const plain: Uint8Array[] = [];
  let at = 0;
  for (const part of parts) {
    const ct = part.subarray(0, Math.max(0, Math.min(part.length, ctLength - at)));
    if (ct.length > 0) plain.push(decipher.update(ct));
    if (ct.length < part.length) tag.set(part.subarray(ct.length), at + ct.length - ctLength);
    at += part.length;
  }
  decipher.setAuthTag(tag);
  decipher.final();
  return plain;
}

/** RFC 8410 DER prefixes: a raw 32-byte key after them is a PKCS#8 private or SPKI public key. */
const DER_PREFIX = {
  x25519: { secret: '302e020100300506032b656e04220420', public: '302a300506032b656e032100' },
  ed25519: { secret: '302e020100300506032b657004220420', public: '302a300506032b6570032100' },
} as const;
type Curve = keyof typeof DER_PREFIX;

const der = (curve: Curve, kind: 'secret' | 'public', raw: Uint8Array) =>
  Buffer.concat([Buffer.from(DER_PREFIX[curve][kind], 'hex'), raw]);

/** Key objects are made once per key (a worker's, a user's): importing one costs more than using it. */
const keyObjects = new Map<string, KeyObject>();
const MAX_KEY_OBJECTS = 1000;
function keyObject(curve: Curve, kind: 'secret' | 'public', raw: Uint8Array): KeyObject {
  const name = `${curve}:${kind}:${toBase64url(raw)}`;
  let key = keyObjects.get(name);
  if (!key) {
    if (keyObjects.size >= MAX_KEY_OBJECTS) keyObjects.clear();
    key =
      kind === 'secret'
        ? createPrivateKey({ key: der(curve, kind, raw), format: 'der', type: 'pkcs8' })
        : createPublicKey({ key: der(curve, kind, raw), format: 'der', type: 'spki' });
    keyObjects.set(name, key);
  }
  return key;
}

/** The raw bytes of a generated pair: the last 32 bytes of its DER forms. */
const rawPair = (pair: { publicKey: KeyObject; privateKey: KeyObject }) => ({
  secretKey: new Uint8Array(pair.privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32)),
  publicKey: new Uint8Array(pair.publicKey.export({ format: 'der', type: 'spki' }).subarray(-32)),
});

/** Whether this Node's OpenSSL has the primitives, tried rather than assumed (a FIPS build may lack some). */
function works(probe: () => unknown): boolean {
  try {
    probe();
    return true;
  } catch {
    return false;
  }
}

const native: CipherSuite = {
  name: 'native',
  seal,
  sealParts,
  open,
  openParts,
  sha256: () => createHash('sha256'),
  hkdf: (ikm, salt, info, length) => new Uint8Array(hkdfSync('sha256', ikm, salt, info, length)),
  x25519Keygen: () => rawPair(generateKeyPairSync('x25519')),
  x25519(secretKey, publicKey) {
    if (publicKey.length !== 32) throw new RangeError('An X25519 public key is 32 bytes.');
    // A public key is used once per request: it is not cached.
    const peer = createPublicKey({ key: der('x25519', 'public', publicKey), format: 'der', type: 'spki' });
    return new Uint8Array(
      diffieHellman({ privateKey: keyObject('x25519', 'secret', secretKey), publicKey: peer }),
    );
  },
  ed25519Keygen: () => rawPair(generateKeyPairSync('ed25519')),
  ed25519PublicKey: (secretKey) =>
    new Uint8Array(
      createPublicKey(keyObject('ed25519', 'secret', secretKey))
        .export({ format: 'der', type: 'spki' })
        .subarray(-32),
    ),
  ed25519Sign: (message, secretKey) =>
    new Uint8Array(sign(null, message, keyObject('ed25519', 'secret', secretKey))),
  ed25519Verify(signature, message, publicKey) {
    try {
      return verify(null, message, keyObject('ed25519', 'public', publicKey), signature);
    } catch {
      // A key or signature of the wrong shape: a bad signature too.
      return false;
    }
  },
  randomBytes: (length) => randomBytes(length),
};

/**
 * The fastest suite this Node offers: each primitive natively where OpenSSL has it (tried once, here), else
 * @noble's, loaded only then. The bytes are the same either way.
 */
export const nodeSuite: CipherSuite = await (async () => {
  const key = new Uint8Array(32);
  const nonce = new Uint8Array(24);
  const aead = works(() => native.open(key, nonce, key, native.seal(key, nonce, key, key)));
  const curves = works(() => {
    const worker = native.x25519Keygen();
    native.x25519(native.x25519Keygen().secretKey, worker.publicKey);
    const user = native.ed25519Keygen();
    if (!native.ed25519Verify(native.ed25519Sign(key, user.secretKey), key, user.publicKey))
      throw new Error();
  });
  const hashes = works(() => native.hkdf(key, key, key, 32) && native.sha256().digest());
  if (aead && curves && hashes) return native;
  const { nobleSuite } = await import('./noble-suite.js');
  return {
    ...nobleSuite,
    ...(aead && {
      seal: native.seal,
      sealParts: native.sealParts,
      open: native.open,
      openParts: native.openParts,
    }),
    ...(hashes && { sha256: native.sha256, hkdf: native.hkdf }),
    ...(curves && {
      x25519Keygen: native.x25519Keygen,
      x25519: native.x25519,
      ed25519Keygen: native.ed25519Keygen,
      ed25519PublicKey: native.ed25519PublicKey,
      ed25519Sign: native.ed25519Sign,
      ed25519Verify: native.ed25519Verify,
    }),
    randomBytes: native.randomBytes,
    name: 'native+noble',
  };
})();

/** Every primitive on node:crypto, with no fallback: for the tests that compare it with @noble's suite. */
export const nativeSuite: CipherSuite = native;
