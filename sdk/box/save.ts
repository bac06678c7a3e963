// Saving a download in the /box page: streamed to disk through the page's service worker where the browser allows
// it, otherwise gathered in memory up to a bound and saved as a Blob.

/** Without a service worker the whole file is held in memory before it is saved: beyond this, it is refused. */
export const MEMORY_SAVE_LIMIT = 512 * 1024 * 1024;

/** How a download can be saved here: `stream` to disk, or `memory` up to {@link MEMORY_SAVE_LIMIT}. */
export const saveMode = (): 'stream' | 'memory' =>
  globalThis.isSecureContext && 'serviceWorker' in navigator ? 'stream' : 'memory';

let registration: Promise<ServiceWorker> | undefined;

/** The page's service worker, registered for /box/ and active. */
function downloadWorker(): Promise<ServiceWorker> {
  registration ??= (async () => {
    const registered = await navigator.serviceWorker.register('/box/sw.js', { scope: '/box/' });
    const worker = registered.active ?? registered.installing ?? registered.waiting;
    if (!worker) throw new Error('The download service worker did not start.');
    if (worker.state !== 'activated') {
      await new Promise<void>((resolve, reject) => {
        worker.addEventListener('statechange', () => {
          if (worker.state === 'activated') resolve();
          if (worker.state === 'redundant') reject(new Error('The download service worker stopped.'));
        });
      });
    }
    return worker;
  })();
  registration.catch(() => {
    registration = undefined;
  });
  return registration;
}

/** A chunk as an ArrayBuffer of its own, to hand over without a copy when it is one already. */
const ownBuffer = (chunk: Uint8Array): ArrayBuffer =>
  chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength
    ? (chunk.buffer as ArrayBuffer)
    : (chunk.slice().buffer as ArrayBuffer);

/**
 * Saves `body` as a file named `name`: through the service worker, which the browser's own download reads as fast
 * as it writes to disk, or (see {@link saveMode}) gathered in memory. `onBytes` gets the bytes saved so far.
 * Resolves once the last byte was handed to the browser.
 */
export async function saveStream(
  body: ReadableStream<Uint8Array>,
  name: string,
  size: number | undefined,
  onBytes: (done: number) => void,
): Promise<void> {
  if (saveMode() === 'memory') return saveInMemory(body, name, size, onBytes);
  const worker = await downloadWorker();
  const id = crypto.randomUUID();
  const channel = new MessageChannel();
  const reader = body.getReader();
  let done = 0;
  const finished = new Promise<void>((resolve, reject) => {
    channel.port1.onmessage = async ({ data }) => {
      if (data.type === 'ready') {
        const frame = document.createElement('iframe');
        frame.hidden = true;
        frame.src = `/box/download/${id}`;
        document.body.append(frame);
        setTimeout(() => frame.remove(), 60_000);
      } else if (data.type === 'cancel') {
        await reader.cancel().catch(() => {});
        reject(new Error('The browser stopped the download.'));
      } else if (data.type === 'pull') {
        try {
          const next = await reader.read();
          if (next.done) {
            channel.port1.postMessage({ type: 'end' });
            resolve();
            return;
          }
          done += next.value.length;
          onBytes(done);
          const chunk = ownBuffer(next.value);
          channel.port1.postMessage({ type: 'chunk', chunk }, [chunk]);
        } catch (error) {
          channel.port1.postMessage({ type: 'error', message: (error as Error).message });
          reject(error);
        }
      }
    };
  });
  worker.postMessage({ type: 'download', id, name, size }, [channel.port2]);
  return finished;
}

/** Gathers `body` in memory (refusing more than {@link MEMORY_SAVE_LIMIT}) and saves it through a link. */
async function saveInMemory(
  body: ReadableStream<Uint8Array>,
  name: string,
  size: number | undefined,
  onBytes: (done: number) => void,
): Promise<void> {
  const tooLarge = () =>
    new Error(
      `This browser can stream a download to disk only over https (or on localhost); here the page holds it in memory, up to ${MEMORY_SAVE_LIMIT / 1024 ** 2} MiB, and ${name} is larger. Open the page over https, or use "deadrop call … fs get".`,
    );
  if (size !== undefined && size > MEMORY_SAVE_LIMIT) {
    await body.cancel().catch(() => {});
    throw tooLarge();
  }
  const parts: Uint8Array<ArrayBuffer>[] = [];
  let done = 0;
  const reader = body.getReader();
  for (;;) {
    const next = await reader.read();
    if (next.done) break;
    done += next.value.length;
    if (done > MEMORY_SAVE_LIMIT) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    parts.push(next.value as Uint8Array<ArrayBuffer>);
    onBytes(done);
  }
  const url = URL.createObjectURL(new Blob(parts, { type: 'application/octet-stream' }));
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
