// Files through a pipe as sealed frames (DESIGN §7): a download is sent by the worker, an upload received by it.
import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, open, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline as pipelineAsync } from 'node:stream/promises';
import { createFileSink, openTransform, sealedStreamLength, sealFile } from '../../sdk/e2e/node-streams.js';
import { readPipeReply, WorkerError } from '../../sdk/e2e/protocol.js';
import type { Located } from './fs-paths.js';
import type { Outcome, PipeEnds } from './receiver.js';

/** An upload's file is written under this name beside its target, and renamed once complete and genuine. */
const PARTIAL_PREFIX = '.deadrop-upload-';

/**
 * Opens the file now, so that the answer can say whether it is there and how large it is, then, once the
 * answer is out, streams it sealed to the pipe. The real path has no links in it, and O_NOFOLLOW keeps a link
 * put there since from being followed.
 */
export async function startDownload(
  file: Located,
  reply: unknown,
  pipes: PipeEnds,
  signal: AbortSignal,
): Promise<Outcome> {
  const { pipe, key } = readPipeReply(reply);
  const handle = await open(file.real, constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => {
    throw new WorkerError('not_found', `${file.path} cannot be opened.`);
  });
  const info = await handle.stat();
  if (!info.isFile()) {
    await handle.close();
    throw new WorkerError('bad_request', `${file.path} is not a file.`);
  }
  return {
    answer: { ok: true, result: { path: file.path, size: info.size, mtime: info.mtimeMs } },
    after: async (delivered) => {
      if (!delivered) {
        await handle.close();
        return;
      }
      const sealed = sealFile(handle, key, info.size);
      try {
        await pipes.send(pipe, sealed, signal, sealedStreamLength(info.size));
      } finally {
        sealed.destroy();
        await handle.close();
      }
    },
  };
}

/** Counts and hashes the plaintext of an upload, failing as soon as there is more than `limit`. */
function measure(limit: number) {
  const hash = createHash('sha256');
  let bytes = 0;
  return {
    onPlain(plain: Uint8Array) {
      bytes += plain.length;
      if (bytes > limit)
        throw new WorkerError('too_large', `The upload is larger than the ${limit} bytes it announced.`);
      hash.update(plain);
    },
    bytes: () => bytes,
    sha256: () => hash.digest('hex'),
  };
}

/**
 * Receives an upload of `size` bytes from the pipe into a new file beside `target`, and gives it the target's
 * name only when every frame opened and the size is right. Without `overwrite` an existing file is kept
 * (link() fails rather than replace it, even if one appeared meanwhile).
 */
export async function receiveUpload(
  target: Located & { exists: boolean; link: boolean },
  request: { size: unknown; overwrite: unknown; reply: unknown; maxBytes: number },
  pipes: PipeEnds,
  signal: AbortSignal,
): Promise<Outcome> {
  const { pipe, key } = readPipeReply(request.reply);
  const { size } = request;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw new WorkerError('bad_request', 'An upload must announce its size in bytes.');
  }
  if (size > request.maxBytes) {
    throw new WorkerError('too_large', `The worker takes uploads of at most ${request.maxBytes} bytes.`);
  }
  if (target.link)
    throw new WorkerError('forbidden', `${target.path} is a link; the worker does not write through links.`);
  const overwrite = request.overwrite === true;
  if (target.exists && !overwrite)
    throw new WorkerError('conflict', `${target.path} exists; send it with overwrite to replace it.`);
  const partial = join(dirname(target.real), `${PARTIAL_PREFIX}${randomBytes(8).toString('hex')}`);
  try {
    const input = await pipes.receive(pipe, signal);
    const measured = measure(size);
    try {
      await pipelineAsync(
        input,
        openTransform(key, { onPlain: measured.onPlain }),
        createFileSink(partial, 'wx'),
      );
    } catch (error) {
      if (error instanceof WorkerError) throw error;
      throw new WorkerError('failed', 'The upload was cut short or tampered with; nothing was written.');
    }
    if (measured.bytes() !== size) {
      throw new WorkerError(
        'failed',
        `The upload brought ${measured.bytes()} bytes of the ${size} announced.`,
      );
    }
    if (overwrite) await rename(partial, target.real);
    else {
      await link(partial, target.real).catch((error: NodeJS.ErrnoException) => {
        throw error.code === 'EEXIST'
          ? new WorkerError('conflict', `${target.path} appeared meanwhile; it was kept.`)
          : error;
      });
    }
    return { answer: { ok: true, result: { path: target.path, size, sha256: measured.sha256() } } };
  } finally {
    await unlink(partial).catch(() => {});
  }
}
