// The primitives the protocol runs on, behind one small interface; @noble's implementation runs everywhere.
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { randomBytes } from '@noble/hashes/utils.js';

/** A raw key pair: X25519 for a worker, Ed25519 for a user. */
export interface RawKeyPair {
  secretKey: Uint8Array;
  publicKey: Uint8Array;
}

/** A SHA-256 fed in parts. */
export interface IncrementalHash {
  update(bytes: Uint8Array): unknown;
  digest(): Uint8Array;
}

/**
 * Every primitive the envelopes, frames and drop chunks use. Two implementations give the same bytes:
 * {@link nobleSuite} (pure JavaScript, browsers and Node) and the native one of `native-suite.ts` (Node's
 * OpenSSL, ten times faster). A suite holds no protocol rule, so the protocol exists once.
 */
export interface CipherSuite {
  /** Which implementation this is, for logs and tests. */
  readonly name: string;
  /**
   * XChaCha20-Poly1305 (24-byte nonce): the ciphertext followed by the 16-byte tag, written into `output`
   * (plaintext length + 16 bytes) when it is given.
   */
  seal(
    key: Uint8Array,
    nonce: Uint8Array,
    aad: Uint8Array,
    plaintext: Uint8Array,
    output?: Uint8Array,
  ): Uint8Array;
  /** The plaintext of ciphertext ‖ tag; throws when the tag does not verify. */
  open(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array;
  sha256(): IncrementalHash;
  /** HKDF-SHA256 of `length` bytes. */
  hkdf(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array;
  x25519Keygen(): RawKeyPair;
  /** The X25519 shared secret; throws on a key that is not a valid public key. */
  x25519(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array;
  ed25519Keygen(): RawKeyPair;
  ed25519Sign(message: Uint8Array, secretKey: Uint8Array): Uint8Array;
  /** False for a bad signature, and for a key or signature of the wrong shape. */
  ed25519Verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
  randomBytes(length: number): Uint8Array;
}

/** The @noble implementation: the same in browsers and Node. */
export const nobleSuite: CipherSuite = {
  name: 'noble',
  seal: (key, nonce, aad, plaintext, output) => xchacha20poly1305(key, nonce, aad).encrypt(plaintext, output),
  open: (key, nonce, aad, sealed) => xchacha20poly1305(key, nonce, aad).decrypt(sealed),
  sha256: () => sha256.create(),
  hkdf: (ikm, salt, info, length) => hkdf(sha256, ikm, salt, info, length),
  x25519Keygen: () => x25519.keygen(),
  x25519: (secretKey, publicKey) => x25519.getSharedSecret(secretKey, publicKey),
  ed25519Keygen: () => ed25519.keygen(),
  ed25519Sign: (message, secretKey) => ed25519.sign(message, secretKey),
  ed25519Verify(signature, message, publicKey) {
    try {
      return ed25519.verify(signature, message, publicKey);
    } catch {
      // noble throws on a key or signature of the wrong shape: that is a bad signature too.
      return false;
    }
  },
  randomBytes: (length) => randomBytes(length),
};
