// Node only: sealed frames as Node Transforms, on the fastest suite, for files of any size through pipes.
import { Transform } from 'node:stream';
import { createFrameOpener, createFrameSealer, FRAME_SIZE } from './frames.js';
import { nodeSuite } from './native-suite.js';
import type { CipherSuite } from './suite.js';

/**
 * Read-ahead of the streams a transfer passes through. Node's default of 16 KiB is a quarter frame, and a
 * response body pauses its socket whenever nothing is asked of it: with 1 MiB asked ahead, the socket keeps flowing.
 */
export const STREAM_BUFFER_BYTES = 16 * FRAME_SIZE;
/** Files are read four frames at a time: the transport's cost is per chunk, and 64 KiB chunks cost a third more. */
export const FILE_CHUNK_BYTES = 4 * FRAME_SIZE;

/**
 * A Transform that seals bytes into frames and ends with an empty final frame. Each chunk comes out as one
 * buffer holding all its frames (the first one with the stream's prefix before them): the transport's cost is
 * per chunk, so a 256 KiB read is not turned into four small writes.
 */
export function sealTransform(key: Uint8Array, suite: CipherSuite = nodeSuite): Transform {
  const sealer = createFrameSealer(key, suite);
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

/** A Transform that opens sealed frames; it errors on tampering and on a stream cut short. */
export function openTransform(key: Uint8Array, suite: CipherSuite = nodeSuite): Transform {
  const opener = createFrameOpener(key, suite);
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
