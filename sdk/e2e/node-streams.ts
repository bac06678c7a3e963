// Node only: sealed frames as Node streams, on the fastest suite: a file read and sealed, and a Transform that opens.
import { createWriteStream, type WriteStream } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { createFrameOpener, createFrameSealer, FRAME_SIZE } from './frames.js';
import { nodeSuite } from './native-suite.js';
import type { CipherSuite } from './suite.js';

export { sealedStreamLength } from './frames.js';

/**
 * Read-ahead of the streams a transfer passes through. Node's default of 16 KiB is a sixteenth of a frame, and a
 * response body pauses its socket whenever nothing is asked of it: with 1 MiB asked ahead, the socket keeps flowing.
 */
export const STREAM_BUFFER_BYTES = 4 * FRAME_SIZE;
/** Files are read a frame at a time: the transport's cost is per chunk, and smaller reads cost more per byte. */
export const FILE_CHUNK_BYTES = FRAME_SIZE;

/**
 * A file written as a transfer arrives. With Node's default buffer of 16 KiB every piece that arrives (up to
 * 64 KiB) waits for a write of its own on the thread pool before the next is taken; with {@link STREAM_BUFFER_BYTES}
 * the pieces that arrive meanwhile go out together in one writev. Receiving into a file costs about half the CPU
 * per MB so (measured on this project's VM, plain and sealed alike).
 */
export const createFileSink = (path: string, flags = 'w'): WriteStream =>
  createWriteStream(path, { flags, highWaterMark: STREAM_BUFFER_BYTES });

/** Options of the Node streams: the suite, and a look at each piece of plaintext as it passes (progress, hash). */
export interface FrameStreamOptions {
  suite?: CipherSuite;
  /** Called with each piece of plaintext; it must not keep the piece, which may be reused. May throw to stop. */
  onPlain?: (plain: Uint8Array) => void;
}

/**
 * The first `size` bytes of the file from where `file` stands, sealed: the stream's prefix, then the frames of
 * each read, ending with the final frame: {@link sealedStreamLength}(`size`) bytes, or fewer when the file
 * is shorter by then. Reads go into one buffer, used again once its bytes are sealed, and the frames leave
 * in the pieces the cipher made: a file churns through no memory but its ciphertext.
 */
export function sealFile(
  file: FileHandle,
  key: Uint8Array,
  size: number,
  options: FrameStreamOptions = {},
): Readable {
  const sealer = createFrameSealer(key, options.suite ?? nodeSuite);
  const buffer = Buffer.allocUnsafe(FILE_CHUNK_BYTES);
  async function* frames() {
    yield sealer.header;
    for (let left = size; left > 0; ) {
      const { bytesRead } = await file.read(buffer, 0, Math.min(buffer.length, left), null);
      if (bytesRead === 0) break;
      left -= bytesRead;
      const plain = buffer.subarray(0, bytesRead);
      options.onPlain?.(plain);
      yield* sealer.sealPieces(plain);
    }
    yield* sealer.sealPieces(new Uint8Array(0), true);
  }
  return Readable.from(frames(), { objectMode: false, highWaterMark: STREAM_BUFFER_BYTES });
}

/**
 * A Transform that seals bytes into frames and ends with an empty final frame, for a source that is not a file.
 * Each chunk comes out as one buffer holding all its frames.
 */
export function sealTransform(key: Uint8Array, options: FrameStreamOptions = {}): Transform {
  const sealer = createFrameSealer(key, options.suite ?? nodeSuite);
  let started = false;
  const withHeader = (frames: Uint8Array) => {
    if (started) return frames;
    started = true;
    return Buffer.concat([sealer.header, frames]);
  };
  return new Transform({
    highWaterMark: STREAM_BUFFER_BYTES,
    transform(chunk: Buffer, _encoding, done) {
      try {
        options.onPlain?.(chunk);
        done(null, chunk.length > 0 ? withHeader(sealer.seal(chunk)) : undefined);
      } catch (error) {
        done(error as Error);
      }
    },
    flush(done) {
      done(null, withHeader(sealer.seal(new Uint8Array(0), true)));
    },
  });
}

/** A Transform that opens sealed frames; it errors on tampering, on a stream cut short, and when `onPlain` throws. */
export function openTransform(key: Uint8Array, options: FrameStreamOptions = {}): Transform {
  const opener = createFrameOpener(key, options.suite ?? nodeSuite);
  return new Transform({
    highWaterMark: STREAM_BUFFER_BYTES,
    transform(chunk: Buffer, _encoding, done) {
      try {
        for (const plain of opener.push(chunk)) {
          options.onPlain?.(plain);
          this.push(plain);
        }
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
