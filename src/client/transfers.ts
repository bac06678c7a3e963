// Downloads and uploads through a fresh pipe key pair, as sealed frames whose key travels inside the request.
import { randomBytes } from 'node:crypto';
import { type FileHandle, open } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { toBase64url } from '../../sdk/e2e/encoding.js';
import { openTransform, sealedStreamLength, sealFile } from '../../sdk/e2e/node-streams.js';
import { type DownloadAnswer, REQUEST_TYPES } from '../../sdk/e2e/protocol.js';
import { createNodePipe } from './node-pipe.js';
import { AnswerError, DEFAULT_TIMEOUT_SECONDS, type WorkerClient } from './worker-client.js';

/** Progress of a transfer: `start` once the size is known, then `update` with the bytes done so far. */
export interface TransferProgress {
  start(total: number): void;
  update(done: number): void;
}

/** What the worker says about a file it sends, or a folder it sends as a tar archive. */
export type DownloadInfo = DownloadAnswer;

/** What a download moved: a file's bytes, or a folder's archive (its bytes, and the files in it). */
export interface DownloadResult {
  path: string;
  size: number;
  /** Set for a folder: it came as a tar archive of this many files. */
  folder?: { files: number; bytes: number };
}

/**
 * What an upload moved, with the SHA-256 of what the worker wrote. Every frame is authenticated and the last
 * one marked, so a worker that answers holds exactly the bytes sent: the client does not hash them again.
 */
export interface UploadResult extends DownloadResult {
  sha256: string;
}

const noProgress: TransferProgress = { start() {}, update() {} };

/** Counts the plaintext that passes, reporting it to `progress`. */
function meter(progress: TransferProgress) {
  let bytes = 0;
  return {
    onPlain(plain: Uint8Array) {
      bytes += plain.length;
      progress.update(bytes);
    },
    bytes: () => bytes,
  };
}

/** The worker's answer once the whole upload went through: it must come within `ms`, as for any request. */
async function confirmed<T>(answering: Promise<T>, ms: number, sending: AbortController): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      sending.abort();
      reject(
        new AnswerError(
          'no_answer',
          `The worker took the upload but did not confirm it within ${ms / 1000} s.`,
        ),
      );
    }, ms);
  });
  try {
    return await Promise.race([answering, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A fresh pipe: a relay key pair (the worker gets the private key) and a frame key, as the request's reply. */
async function freshPipe(worker: WorkerClient, signal?: AbortSignal) {
  const pair = await worker.relay.keys({ signal });
  const key = randomBytes(32);
  return { pair, key, reply: { pipe: pair.private, key: toBase64url(key) } };
}

/**
 * Downloads the file or folder at `path` into `destination` (or the stream it gives once the answer says what
 * comes): the worker answers with a file's size, or a folder's file count, then sends it sealed to the pipe, a
 * folder as a tar archive. Throws if the stream was cut short, tampered with, or a file did not bring the
 * announced size. Every frame is authenticated and the last one marked, so no hash is needed to trust what
 * arrived (and the transfer is CPU-bound: a SHA-256 would cost a tenth of its speed).
 */
export async function downloadFile(
  worker: WorkerClient,
  path: string,
  destination: Writable | ((info: DownloadInfo) => Writable | Promise<Writable>),
  options: { progress?: TransferProgress; signal?: AbortSignal; timeoutSeconds?: number } = {},
): Promise<DownloadResult> {
  const progress = options.progress ?? noProgress;
  const { pair, key, reply } = await freshPipe(worker, options.signal);
  const info = await worker.request<DownloadInfo>(
    REQUEST_TYPES.fs('download'),
    { path },
    { reply, signal: options.signal, ...(options.timeoutSeconds && { ttlSeconds: options.timeoutSeconds }) },
  );
  const output = typeof destination === 'function' ? await destination(info) : destination;
  // A folder's archive has a size known only once sent: its estimate (headers and padding of each entry) stands in.
  progress.start(info.type === 'dir' ? info.estimate : info.size);
  const body = await createNodePipe(worker.address.relay).receive(pair.public, options.signal);
  const measured = meter(progress);
  await pipeline(body, openTransform(key, { onPlain: measured.onPlain }), output, {
    signal: options.signal,
  });
  if (info.type === 'dir') {
    return { path: info.path, size: measured.bytes(), folder: { files: info.files, bytes: info.bytes } };
  }
  if (measured.bytes() !== info.size) {
    throw new Error(
      `The download brought ${measured.bytes()} bytes of the ${info.size} announced; the file changed meanwhile?`,
    );
  }
  return { path: info.path, size: info.size };
}

/**
 * Uploads the local `file` to `path`: the request and the sealed stream go at once; the worker answers once it
 * has the whole file (with its SHA-256, checked here), or at once to refuse, which ends the stream.
 */
export async function uploadFile(
  worker: WorkerClient,
  file: string,
  path: string,
  options: {
    overwrite?: boolean;
    progress?: TransferProgress;
    signal?: AbortSignal;
    timeoutSeconds?: number;
  } = {},
): Promise<UploadResult> {
  const progress = options.progress ?? noProgress;
  const handle = await open(file);
  try {
    return await uploadFrom(handle, worker, path, progress, options);
  } finally {
    await handle.close();
  }
}

async function uploadFrom(
  handle: FileHandle,
  worker: WorkerClient,
  path: string,
  progress: TransferProgress,
  options: { overwrite?: boolean; signal?: AbortSignal; timeoutSeconds?: number },
): Promise<UploadResult> {
  const { size } = await handle.stat();
  const { pair, key, reply } = await freshPipe(worker, options.signal);
  const sending = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, sending.signal]) : sending.signal;
  progress.start(size);
  const answering = worker.request<UploadResult>(
    REQUEST_TYPES.fs('upload'),
    { path, size, overwrite: options.overwrite === true },
    {
      reply,
      signal,
      answerSeconds: Number.POSITIVE_INFINITY,
      ...(options.timeoutSeconds && { ttlSeconds: options.timeoutSeconds }),
    },
  );
  // A refusal comes before the stream is taken: it ends the sending, and is what the caller sees.
  answering.catch(() => sending.abort());
  const measured = meter(progress);
  const sealed = sealFile(handle, key, size, { onPlain: measured.onPlain });
  try {
    await createNodePipe(worker.address.relay).send(pair.public, sealed, signal, sealedStreamLength(size));
  } catch (error) {
    sending.abort();
    const refusal = await answering.then(
      () => undefined,
      (reason: unknown) => reason,
    );
    throw refusal instanceof AnswerError ? refusal : error;
  } finally {
    sealed.destroy();
  }
  const result = await confirmed(
    answering,
    (options.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS) * 1000,
    sending,
  );
  if (result.size !== measured.bytes()) {
    throw new Error(`The worker took ${result.size} bytes of the ${measured.bytes()} sent.`);
  }
  return result;
}
