// Sealed frames (DESIGN §7): a stream of any length cut into authenticated, numbered frames, the last one marked.
import { concatBytes } from '@noble/hashes/utils.js';
import { SealError } from './seal-error.js';
import type { CipherSuite } from './suite.js';

// A stream is a 16-byte random prefix, then frames of [uint32 BE ciphertext length][ciphertext ‖ tag]. Frame i
// uses the nonce prefix ‖ uint64 BE i and the AAD uint64 BE i ‖ final flag, so a frame that is moved, dropped,
// changed or claimed to be the last does not open.

/**
 * Plaintext bytes per frame, and the most an opener takes. Each frame costs a cipher set-up and three pieces
 * to write and parse: 256 KiB frames (one per file read) cost a receiving worker less CPU per MB than 64 KiB
 * ones in `npm run bench:worker`, and a browser holds one frame at a time either way.
 */
export const FRAME_SIZE = 256 * 1024;
const TAG_BYTES = 16;
const LENGTH_BYTES = 4;
/** The bytes a stream starts with: the random nonce prefix. */
export const PREFIX_BYTES = 16;

/** A random 32-byte key for {@link createFrameSealer}, to send inside a sealed request or response. */
export const generateFrameKey = (suite: CipherSuite): Uint8Array => suite.randomBytes(32);

/** The sealed bytes of `plaintext` bytes cut into frames, not counting the prefix nor a final empty frame. */
export const sealedLength = (plaintext: number): number =>
  plaintext + Math.ceil(plaintext / FRAME_SIZE) * (LENGTH_BYTES + TAG_BYTES);

/** The bytes of a whole sealed stream of `plaintext` bytes sealed in full frames: prefix, frames, final frame. */
export const sealedStreamLength = (plaintext: number): number =>
  PREFIX_BYTES + sealedLength(plaintext) + LENGTH_BYTES + TAG_BYTES;

function nonceAndAad(prefix: Uint8Array, index: number, final: boolean) {
  const nonce = new Uint8Array(24);
  nonce.set(prefix, 0);
  // uint64 BE; an index stays far below 2^53.
  const view = new DataView(nonce.buffer);
  view.setUint32(16, Math.floor(index / 2 ** 32));
  view.setUint32(20, index >>> 0);
  const aad = new Uint8Array(9);
  aad.set(nonce.subarray(16), 0);
  aad[8] = final ? 1 : 0;
  return { nonce, aad };
}

/** Seals a stream; send `header` first, then what each `seal` gives, in order, the last call `final`. */
export interface FrameSealer {
  /** The stream's first bytes (the random nonce prefix). */
  readonly header: Uint8Array;
  /**
   * The frames of `bytes` (any length, cut at {@link FRAME_SIZE}) in one array, length prefixes included.
   * With `final` the last of them is marked final (an empty `bytes` gives one empty final frame), and nothing
   * may be sealed after it.
   */
  seal(bytes: Uint8Array, final?: boolean): Uint8Array;
  /**
   * As {@link seal}, the same bytes in pieces (length prefix, ciphertext and tag of each frame) as the suite
   * makes them, none copied to join them: Node's cipher hands out each ciphertext in a buffer of its own, and
   * copying it into a frame would double the memory a transfer churns through (and the collections it costs).
   */
  sealPieces(bytes: Uint8Array, final?: boolean): Uint8Array[];
}

/** A sealer of frames under `key` (32 bytes), with a fresh random nonce prefix. */
export function createFrameSealer(key: Uint8Array, suite: CipherSuite): FrameSealer {
  const prefix = suite.randomBytes(PREFIX_BYTES);
  let index = 0;
  let ended = false;
  /** How many frames `bytes` makes; counts the call, refusing one after the final frame. */
  const framesOf = (bytes: Uint8Array, final: boolean) => {
    if (ended) throw new SealError('The stream already ended with its final frame.');
    ended = final;
    return Math.max(final ? 1 : 0, Math.ceil(bytes.length / FRAME_SIZE));
  };
  return {
    header: prefix,
    sealPieces(bytes, final = false) {
      const frames = framesOf(bytes, final);
      const pieces: Uint8Array[] = [];
      for (let frame = 0; frame < frames; frame++) {
        const chunk = bytes.subarray(frame * FRAME_SIZE, (frame + 1) * FRAME_SIZE);
        const { nonce, aad } = nonceAndAad(prefix, index++, final && frame === frames - 1);
        const length = new Uint8Array(LENGTH_BYTES);
        new DataView(length.buffer).setUint32(0, chunk.length + TAG_BYTES);
        pieces.push(length, ...suite.sealParts(key, nonce, aad, chunk));
      }
      return pieces;
    },
    seal(bytes, final = false) {
      const frames = framesOf(bytes, final);
      const out = new Uint8Array(bytes.length + frames * (LENGTH_BYTES + TAG_BYTES));
      const view = new DataView(out.buffer);
      let offset = 0;
      for (let frame = 0; frame < frames; frame++) {
        const chunk = bytes.subarray(frame * FRAME_SIZE, (frame + 1) * FRAME_SIZE);
        const { nonce, aad } = nonceAndAad(prefix, index++, final && frame === frames - 1);
        view.setUint32(offset, chunk.length + TAG_BYTES);
        offset += LENGTH_BYTES;
        suite.seal(key, nonce, aad, chunk, out.subarray(offset, offset + chunk.length + TAG_BYTES));
        offset += chunk.length + TAG_BYTES;
      }
      return out;
    },
  };
}

/** Opens a sealed stream from bytes as they arrive, in pieces of any size. */
export interface FrameOpener {
  /** The plaintext of every frame completed by `bytes` (empty ones left out). */
  push(bytes: Uint8Array): Uint8Array[];
  /** Throws unless the final frame came and nothing followed it: a cut-short stream is an error. */
  finish(): void;
}

/**
 * An opener of frames sealed under `key`. A frame is opened where it lies, in the pieces it arrived in (the
 * suite deciphers each piece in place), so that no byte of a frame is copied before it is opened.
 */
export function createFrameOpener(key: Uint8Array, suite: CipherSuite): FrameOpener {
  /** The pieces of an item (the prefix, a length or a frame) not complete yet. */
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let prefix: Uint8Array | undefined;
  let index = 0;
  let ended = false;
  /** Bytes the next item needs. */
  let need = PREFIX_BYTES;
  let inFrame = false;

  const openFrame = (pieces: Uint8Array[], length: number): { plain: Uint8Array[]; final: boolean } => {
    // The final frame is usually the empty one, so an empty frame is tried as final first.
    for (const final of length === TAG_BYTES ? [true, false] : [false, true]) {
      const { nonce, aad } = nonceAndAad(prefix as Uint8Array, index, final);
      try {
        const plain = suite.openParts(key, nonce, aad, pieces);
        index++;
        return { plain, final };
      } catch {
        // Not with this flag; the other one is tried, then the frame is refused.
      }
    }
    throw new SealError(`Frame ${index} was tampered with, moved or is not for this key.`);
  };

  const take = (pieces: Uint8Array[], out: Uint8Array[]) => {
    if (!prefix) {
      prefix = concatBytes(...pieces);
      need = LENGTH_BYTES;
      return;
    }
    if (!inFrame) {
      if (ended) throw new SealError('Data follows the final frame.');
      const bytes = pieces.length === 1 ? (pieces[0] as Uint8Array) : concatBytes(...pieces);
      const length = new DataView(bytes.buffer, bytes.byteOffset, LENGTH_BYTES).getUint32(0);
      if (length < TAG_BYTES || length > FRAME_SIZE + TAG_BYTES)
        throw new SealError('A frame has an impossible length.');
      need = length;
      inFrame = true;
      return;
    }
    const frame = openFrame(pieces, need);
    ended = frame.final;
    for (const plain of frame.plain) if (plain.length > 0) out.push(plain);
    need = LENGTH_BYTES;
    inFrame = false;
  };

  return {
    push(bytes) {
      let rest = bytes;
      const out: Uint8Array[] = [];
      while (rest.length > 0) {
        if (ended && !inFrame && pendingBytes === 0) throw new SealError('Data follows the final frame.');
        const wanted = need - pendingBytes;
        if (rest.length < wanted) {
          pending.push(rest);
          pendingBytes += rest.length;
          break;
        }
        const pieces = [...pending, rest.subarray(0, wanted)];
        pending = [];
        pendingBytes = 0;
        rest = rest.subarray(wanted);
        take(pieces, out);
      }
      return out;
    },
    finish() {
      if (!ended || pendingBytes > 0 || inFrame)
        throw new SealError('The stream was cut short: its final frame is missing.');
    },
  };
}

/** A TransformStream that seals bytes into frames (cut at {@link FRAME_SIZE}), ending with a final frame. */
export function sealStream(key: Uint8Array, suite: CipherSuite): TransformStream<Uint8Array, Uint8Array> {
  const sealer = createFrameSealer(key, suite);
  return new TransformStream({
    start(controller) {
      controller.enqueue(sealer.header);
    },
    transform(chunk, controller) {
      if (chunk.length > 0) controller.enqueue(sealer.seal(chunk));
    },
    flush(controller) {
      controller.enqueue(sealer.seal(new Uint8Array(0), true));
    },
  });
}

/** A TransformStream that opens sealed frames; it errors on tampering and on a stream cut short. */
export function openStream(key: Uint8Array, suite: CipherSuite): TransformStream<Uint8Array, Uint8Array> {
  const opener = createFrameOpener(key, suite);
  return new TransformStream({
    transform(chunk, controller) {
      for (const plain of opener.push(chunk)) controller.enqueue(plain);
    },
    flush() {
      opener.finish();
    },
  });
}
