// Sealed frames of sdk/crypto.ts (same bytes on the wire) on Node's native ChaCha20-Poly1305, for files of any size.
import { createCipheriv, randomBytes } from 'node:crypto';
import { Transform } from 'node:stream';
import { FRAME_SIZE, SealError } from '../../sdk/crypto.js';
import { decryptWith, innerNonce, subkeyOf, TAG_BYTES } from './xchacha.js';

// Frame i has the 24-byte nonce prefix ‖ uint64 BE i, so one HChaCha20 subkey (of the prefix) serves the whole
// stream and each frame costs one native ChaCha20-Poly1305 call.

const PREFIX_BYTES = 16;
/**
 * Read-ahead of the streams a transfer passes through. Node's default of 16 KiB is a quarter frame, and fetch's
 * body pauses its socket whenever nothing is asked of it: with 1 MiB asked ahead, the socket keeps flowing.
 */
export const STREAM_BUFFER_BYTES = 16 * FRAME_SIZE;
/** Files are read four frames at a time: the transport's cost is per chunk, and 64 KiB chunks cost a third more. */
export const FILE_CHUNK_BYTES = 4 * FRAME_SIZE;

function frameNonceAndAad(index: number, final: boolean): { nonce: Buffer; aad: Buffer } {
  const aad = Buffer.alloc(9);
  aad.writeBigUInt64BE(BigInt(index), 0);
  aad[8] = final ? 1 : 0;
  return { nonce: innerNonce(aad.subarray(0, 8)), aad };
}

/** Seals frames as sdk/crypto.ts's createFrameSealer does, natively. */
export interface NativeFrameSealer {
  /** The stream's first bytes (the random nonce prefix). */
  readonly header: Buffer;
  /** The next frame, length prefix included; nothing may follow a `final` one. */
  seal(chunk: Uint8Array, final?: boolean): Buffer;
  /** Seals the next frame into `target` at `offset`; answers the offset after it. */
  sealInto(target: Buffer, offset: number, chunk: Uint8Array, final?: boolean): number;
}

/** The bytes `plaintext` takes once cut into frames and sealed. */
export const sealedLength = (plaintext: number) =>
  plaintext + Math.max(1, Math.ceil(plaintext / FRAME_SIZE)) * (4 + TAG_BYTES);

/** A native sealer of frames under `key`, with a fresh random nonce prefix. */
export function createNativeFrameSealer(key: Uint8Array): NativeFrameSealer {
  const header = randomBytes(PREFIX_BYTES);
  const subkey = subkeyOf(key, header);
  let index = 0;
  let ended = false;
  const sealInto = (target: Buffer, offset: number, chunk: Uint8Array, final = false) => {
    if (ended) throw new SealError('The stream already ended with its final frame.');
    if (chunk.length > FRAME_SIZE) throw new SealError(`A frame holds at most ${FRAME_SIZE} bytes.`);
    ended = final;
    const { nonce, aad } = frameNonceAndAad(index++, final);
    const cipher = createCipheriv('chacha20-poly1305', subkey, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(aad, { plaintextLength: chunk.length });
    target.writeUInt32BE(chunk.length + TAG_BYTES, offset);
    cipher.update(chunk).copy(target, offset + 4);
    cipher.final();
    cipher.getAuthTag().copy(target, offset + 4 + chunk.length);
    return offset + 4 + chunk.length + TAG_BYTES;
  };
  return {
    header,
    sealInto,
    seal(chunk, final = false) {
      const frame = Buffer.allocUnsafe(4 + chunk.length + TAG_BYTES);
      sealInto(frame, 0, chunk, final);
      return frame;
    },
  };
}

/** Opens frames as sdk/crypto.ts's createFrameOpener does, natively. */
export interface NativeFrameOpener {
  /** The plaintext of every frame completed by `bytes`. */
  push(bytes: Uint8Array): Buffer[];
  /** Throws unless the final frame came and nothing followed it. */
  finish(): void;
}

function openFrame(subkey: Buffer, index: number, frame: Buffer): { plain: Buffer; final: boolean } {
  // The final frame is usually the empty one, so an empty frame is tried as final first.
  for (const final of frame.length === TAG_BYTES ? [true, false] : [false, true]) {
    const { nonce, aad } = frameNonceAndAad(index, final);
    const plain = decryptWith(subkey, nonce, aad, frame);
    if (plain) return { plain, final };
  }
  throw new SealError(`Frame ${index} was tampered with, moved or is not for this key.`);
}

/**
 * A native opener of frames sealed under `key`. A frame that lies within one chunk is opened in place; one
 * that spans chunks is gathered once into a buffer of its own size, so no byte is copied more than once.
 */
export function createNativeFrameOpener(key: Uint8Array): NativeFrameOpener {
  /** The chunks of a frame (or of the prefix or a length) not complete yet. */
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let subkey: Buffer | undefined;
  let index = 0;
  let ended = false;
  /** Bytes the next item needs: the prefix, a length prefix, or a frame. */
  let need = PREFIX_BYTES;
  let inFrame = false;

  const take = (item: Buffer, out: Buffer[]) => {
    if (!subkey) {
      subkey = subkeyOf(key, item);
      need = 4;
      return;
    }
    if (!inFrame) {
      if (ended) throw new SealError('Data follows the final frame.');
      const length = item.readUInt32BE(0);
      if (length < TAG_BYTES || length > FRAME_SIZE + TAG_BYTES)
        throw new SealError('A frame has an impossible length.');
      need = length;
      inFrame = true;
      return;
    }
    const frame = openFrame(subkey, index++, item);
    ended = frame.final;
    if (frame.plain.length > 0) out.push(frame.plain);
    need = 4;
    inFrame = false;
  };

  return {
    push(bytes) {
      let chunk = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
      const out: Buffer[] = [];
      while (chunk.length > 0) {
        if (ended && !inFrame && pendingBytes === 0) throw new SealError('Data follows the final frame.');
        const wanted = need - pendingBytes;
        if (chunk.length < wanted) {
          pending.push(chunk);
          pendingBytes += chunk.length;
          break;
        }
        const item =
          pendingBytes === 0
            ? chunk.subarray(0, wanted)
            : Buffer.concat([...pending, chunk.subarray(0, wanted)], need);
        pending = [];
        pendingBytes = 0;
        chunk = chunk.subarray(wanted);
        take(item, out);
      }
      return out;
    },
    finish() {
      if (!ended || pendingBytes > 0 || inFrame) {
        throw new SealError('The stream was cut short: its final frame is missing.');
      }
    },
  };
}

/**
 * A Node Transform that seals bytes into frames (cut at FRAME_SIZE), ending with an empty final frame. Each
 * chunk comes out as one buffer holding all its frames: the transport's cost is per chunk, so a large chunk
 * (a 256 KiB read) is not turned into four small ones.
 */
export function sealTransform(key: Uint8Array): Transform {
  const sealer = createNativeFrameSealer(key);
  let started = false;
  return new Transform({
    highWaterMark: STREAM_BUFFER_BYTES,
    transform(chunk: Buffer, _encoding, done) {
      try {
        const first = started ? 0 : PREFIX_BYTES;
        const out = Buffer.allocUnsafe(first + sealedLength(chunk.length));
        let offset = started ? 0 : sealer.header.copy(out, 0);
        started = true;
        for (let at = 0; at < chunk.length; at += FRAME_SIZE) {
          offset = sealer.sealInto(out, offset, chunk.subarray(at, at + FRAME_SIZE));
        }
        done(null, out.subarray(0, offset));
      } catch (error) {
        done(error as Error);
      }
    },
    flush(done) {
      if (!started) this.push(sealer.header);
      this.push(sealer.seal(new Uint8Array(0), true));
      done();
    },
  });
}

/** A Node Transform that opens sealed frames; it errors on tampering and on a stream cut short. */
export function openTransform(key: Uint8Array): Transform {
  const opener = createNativeFrameOpener(key);
  return new Transform({
    highWaterMark: STREAM_BUFFER_BYTES,
    transform(chunk: Buffer, _encoding, done) {
      try {
        for (const plain of opener.push(chunk)) this.push(plain);
        done();
      } catch (error) {
        done(error as Error);
      }
    },
    flush(done) {
      try {
        opener.finish();
        done();
      } catch (error) {
        done(error as Error);
      }
    },
  });
}
