// The primitives the protocol runs on, behind one small interface: noble-suite.ts and native-suite.ts implement it.

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
 * `nobleSuite` (pure JavaScript, browsers and Node, noble-suite.ts) and the native one of `native-suite.ts` (Node's
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
  /**
   * As {@link seal}, in pieces that together are ciphertext ‖ tag: where the implementation makes them apart
   * (Node's cipher), they are handed out as they are rather than copied into one array.
   */
  sealParts(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array[];
  /** The plaintext of ciphertext ‖ tag; throws when the tag does not verify. */
  open(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array;
  /**
   * As {@link open}, for ciphertext ‖ tag that arrived in pieces (a frame across two socket reads): the
   * plaintext, in one or more pieces, only once the tag verified. Saves joining the pieces first.
   */
  openParts(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, parts: readonly Uint8Array[]): Uint8Array[];
  sha256(): IncrementalHash;
  /** HKDF-SHA256 of `length` bytes. */
  hkdf(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array;
  x25519Keygen(): RawKeyPair;
  /** The X25519 shared secret; throws on a key that is not a valid public key. */
  x25519(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array;
  ed25519Keygen(): RawKeyPair;
  /** The Ed25519 public key of a secret key (a 32-byte seed). */
  ed25519PublicKey(secretKey: Uint8Array): Uint8Array;
  ed25519Sign(message: Uint8Array, secretKey: Uint8Array): Uint8Array;
  /** False for a bad signature, and for a key or signature of the wrong shape. */
  ed25519Verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
  randomBytes(length: number): Uint8Array;
}
