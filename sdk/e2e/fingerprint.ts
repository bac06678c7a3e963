// The Deadbox fingerprint of a worker's key (DESIGN §7): a proof of work that makes a short id worth trusting.
import { toBase32 } from './encoding.js';
import type { CipherSuite } from './suite.js';

/** The result of {@link fingerprint}: the id and the counter that solves the challenge. */
export interface Fingerprint {
  id: string;
  counter: number;
}

/** SHA-256(key ‖ 000000 ‖ int64 BE level ‖ 000000 ‖ uint64 BE counter), the zero bytes as in Deadbox. */
function fingerprintHash(
  suite: CipherSuite,
  publicKey: Uint8Array,
  level: number,
  counter: number,
): Uint8Array {
  const tail = new Uint8Array(22);
  const view = new DataView(tail.buffer);
  view.setBigInt64(3, BigInt(level));
  view.setBigUint64(14, BigInt(counter));
  const hash = suite.sha256();
  hash.update(publicKey);
  hash.update(tail);
  return hash.digest();
}

function leadingZeroBits(hash: Uint8Array, level: number): boolean {
  for (let bit = 0; bit < level; bit++) {
    if ((hash[bit >> 3] ?? 0) & (0x80 >> (bit & 7))) return false;
  }
  return true;
}

function idOf(hash: Uint8Array, level: number, length: number): string {
  const pairs = toBase32(hash.subarray(Math.ceil(level / 8))).match(/../g) ?? [];
  return pairs.slice(0, length).join(':');
}

/**
 * The Deadbox fingerprint of a public key (DESIGN §7: level 21, 8 pairs): finds the first counter whose hash starts with `level` zero
 * bits (about 2^level hashes), and gives the id of `length` Base32 pairs after the first ⌈level/8⌉ bytes.
 */
export function fingerprint(
  publicKey: Uint8Array,
  level: number,
  length: number,
  suite: CipherSuite,
): Fingerprint {
  if (!Number.isInteger(level) || level < 0 || level > 64) throw new RangeError('level must be 0 to 64.');
  for (let counter = 0; ; counter++) {
    const hash = fingerprintHash(suite, publicKey, level, counter);
    if (leadingZeroBits(hash, level)) return { id: idOf(hash, level, length), counter };
  }
}

/** Whether `id` is the fingerprint of `publicKey` at `level` with `counter` (one hash; the length is the id's). */
export function verifyFingerprint(
  publicKey: Uint8Array,
  id: string,
  level: number,
  counter: number,
  suite: CipherSuite,
): boolean {
  if (!Number.isSafeInteger(counter) || counter < 0 || !Number.isInteger(level) || level < 0 || level > 64) {
    return false;
  }
  const hash = fingerprintHash(suite, publicKey, level, counter);
  const length = id.split(':').length;
  return leadingZeroBits(hash, level) && idOf(hash, level, length) === id.toUpperCase();
}
