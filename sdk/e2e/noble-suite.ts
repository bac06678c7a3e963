// The cipher suite on @noble (pure JavaScript): the same bytes in browsers and Node.
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes, randomBytes } from '@noble/hashes/utils.js';
import type { CipherSuite } from './suite.js';

/** The @noble implementation: the same in browsers and Node. */
export const nobleSuite: CipherSuite = {
  name: 'noble',
  seal: (key, nonce, aad, plaintext, output) => xchacha20poly1305(key, nonce, aad).encrypt(plaintext, output),
  sealParts: (key, nonce, aad, plaintext) => [xchacha20poly1305(key, nonce, aad).encrypt(plaintext)],
  open: (key, nonce, aad, sealed) => xchacha20poly1305(key, nonce, aad).decrypt(sealed),
  openParts: (key, nonce, aad, parts) => [xchacha20poly1305(key, nonce, aad).decrypt(concatBytes(...parts))],
  sha256: () => sha256.create(),
  hkdf: (ikm, salt, info, length) => hkdf(sha256, ikm, salt, info, length),
  x25519Keygen: () => x25519.keygen(),
  x25519: (secretKey, publicKey) => x25519.getSharedSecret(secretKey, publicKey),
  ed25519Keygen: () => ed25519.keygen(),
  ed25519PublicKey: (secretKey) => ed25519.getPublicKey(secretKey),
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
