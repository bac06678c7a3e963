// Downloads and uploads in a browser: the same sealed frames through a fresh pipe as the CLI's, on fetch and XHR.
import { toBase64url } from '../e2e/encoding.js';
import { createFrameSealer, FRAME_SIZE, openStream } from '../e2e/frames.js';
import { type DownloadAnswer, REQUEST_TYPES } from '../e2e/protocol.js';
import type { CipherSuite } from '../e2e/suite.js';
import { AnswerError, type WorkerClient } from './worker-client.js';

/** How long the worker has to take a transfer request (the relay holds a pipe side 60 s for the other). */
const TRANSFER_REQUEST_SECONDS = 30;

/** A fresh pipe: a relay key pair (the worker gets the private key) and a frame key, as the request's reply. */
async function freshPipe(worker: WorkerClient, suite: CipherSuite, signal?: AbortSignal) {
  const pair = await worker.relay.keys({ signal });
  const key = suite.randomBytes(32);
  return { pair, key, reply: { pipe: pair.private, key: toBase64url(key) } };
}

/** A download under way: what the worker said it sends, and the plaintext as it arrives. */
export interface Download {
  info: DownloadAnswer;
  /** The file's bytes, or the folder's tar archive; errors when the stream is cut short or was tampered with. */
  body: ReadableStream<Uint8Array>;
}

/**
 * Asks the worker for the file or folder at `path` and opens the pipe it streams to. The body errors if a frame
 * does not open, if the stream ends before its final frame, or (for a file) if it brings more or fewer bytes
 * than announced.
 */
export async function startDownload(
  worker: WorkerClient,
  path: string,
  suite: CipherSuite,
  signal?: AbortSignal,
): Promise<Download> {
  const { pair, key, reply } = await freshPipe(worker, suite, signal);
  const info = await worker.request<DownloadAnswer>(
    REQUEST_TYPES.fs('download'),
    { path },
    { reply, signal, ttlSeconds: TRANSFER_REQUEST_SECONDS },
  );
  const response = await worker.relay.pipeReceive(pair.public, { signal });
  let received = 0;
  const expected = info.type === 'dir' ? undefined : info.size;
  const counted = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      received += chunk.length;
      if (expected !== undefined && received > expected) {
        throw new Error(`The download brought more than the ${expected} bytes announced.`);
      }
      controller.enqueue(chunk);
    },
    flush() {
      if (expected !== undefined && received !== expected) {
        throw new Error(`The download brought ${received} bytes of the ${expected} announced.`);
      }
    },
  });
  const body = (response.body as ReadableStream<Uint8Array>)
    .pipeThrough(openStream(key, suite))
    .pipeThrough(counted);
  return { info, body };
}

/** Options of {@link uploadBlob}. */
export interface UploadOptions {
  overwrite?: boolean;
  /** Called as the upload goes: the phase, bytes done and bytes in all. */
  onProgress?: (phase: 'sealing' | 'sending', done: number, total: number) => void;
  signal?: AbortSignal;
}

/** What the worker wrote. */
export interface UploadResult {
  path: string;
  size: number;
  sha256: string;
}

/**
 * Seals `file` frame by frame into a Blob, then sends the request and the Blob (XHR, for its upload progress)
 * through a fresh pipe. A browser cannot stream a request body over HTTP/1.1, so the sealed copy is held while it
 * is sent: its size is the file's plus 20 bytes a frame. The worker's refusal, if any, is what is thrown.
 */
export async function uploadBlob(
  worker: WorkerClient,
  file: Blob,
  path: string,
  suite: CipherSuite,
  options: UploadOptions = {},
): Promise<UploadResult> {
  const { pair, key, reply } = await freshPipe(worker, suite, options.signal);
  const frames = createFrameSealer(key, suite);
  const parts: BlobPart[] = [frames.header as Uint8Array<ArrayBuffer>];
  for (let offset = 0; offset < file.size; offset += FRAME_SIZE) {
    if (options.signal?.aborted) throw options.signal.reason;
    const plain = new Uint8Array(await file.slice(offset, offset + FRAME_SIZE).arrayBuffer());
    parts.push(frames.seal(plain) as Uint8Array<ArrayBuffer>);
    options.onProgress?.('sealing', Math.min(offset + FRAME_SIZE, file.size), file.size);
  }
  parts.push(frames.seal(new Uint8Array(0), true) as Uint8Array<ArrayBuffer>);
  const sealed = new Blob(parts, { type: 'application/octet-stream' });
  const sending = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, sending.signal]) : sending.signal;
  const answering = worker.request<UploadResult>(
    REQUEST_TYPES.fs('upload'),
    { path, size: file.size, overwrite: options.overwrite === true },
    { reply, signal, ttlSeconds: TRANSFER_REQUEST_SECONDS, answerSeconds: Number.POSITIVE_INFINITY },
  );
  answering.catch(() => sending.abort());
  try {
    await postBlob(
      `${worker.address.relay}/pipe/${encodeURIComponent(pair.public)}`,
      sealed,
      signal,
      (done) => options.onProgress?.('sending', Math.min(done, file.size), file.size),
    );
  } catch (error) {
    sending.abort();
    const refusal = await answering.then(
      () => undefined,
      (reason: unknown) => reason,
    );
    throw refusal instanceof AnswerError ? refusal : error;
  }
  return answering;
}

/** POSTs `body` with XHR (fetch reports no upload progress), following the relay's 307 to its stream. */
function postBlob(
  url: string,
  body: Blob,
  signal: AbortSignal,
  onSent: (bytes: number) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', url);
    xhr.setRequestHeader('content-type', 'application/octet-stream');
    xhr.upload.onprogress = (event) => onSent(event.loaded);
    xhr.onload = () =>
      xhr.status === 200
        ? resolve()
        : reject(
            new Error(`The relay refused the upload (${xhr.status}): ${xhr.responseText.slice(0, 200)}`),
          );
    xhr.onerror = () => reject(new Error('The upload was cut short: the connection to the relay failed.'));
    xhr.onabort = () => reject(signal.reason ?? new Error('The upload was stopped.'));
    if (signal.aborted) return xhr.abort();
    signal.addEventListener('abort', () => xhr.abort(), { once: true });
    xhr.send(body);
  });
}
