// The /box page's service worker (served at /box/sw.js, scope /box/): it answers /box/download/<id> with a stream the
// page feeds chunk by chunk, so the browser saves a download of any size to disk as it arrives.

// Typed here rather than with the WebWorker lib, which cannot be combined with the DOM lib of the rest of sdk/.
interface FetchEvent extends Event {
  request: Request;
  respondWith(response: Promise<Response> | Response): void;
}
interface ExtendableEvent extends Event {
  waitUntil(promise: Promise<unknown>): void;
}
interface Scope {
  addEventListener(type: 'fetch', listener: (event: FetchEvent) => void): void;
  addEventListener(type: 'install' | 'activate', listener: (event: ExtendableEvent) => void): void;
  addEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
  skipWaiting(): Promise<void>;
  clients: { claim(): Promise<void> };
}
const scope = self as unknown as Scope;

/** A download the page announced: its port, name and size (when known). */
interface Announced {
  port: MessagePort;
  name: string;
  size?: number;
}
const announced = new Map<string, Announced>();

scope.addEventListener('install', (event) => event.waitUntil(scope.skipWaiting()));
scope.addEventListener('activate', (event) => event.waitUntil(scope.clients.claim()));

scope.addEventListener('message', (event) => {
  const data = event.data as { type?: string; id?: string; name?: string; size?: number };
  const port = event.ports[0];
  if (data?.type !== 'download' || typeof data.id !== 'string' || !port) return;
  announced.set(data.id, { port, name: String(data.name ?? 'download'), size: data.size });
  port.postMessage({ type: 'ready' });
});

/** The stream the page fills: each pull asks it for one chunk, so the page reads only as fast as the disk takes. */
function streamFrom(port: MessagePort): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>(
    {
      pull: (controller) =>
        new Promise<void>((resolve) => {
          port.onmessage = ({ data }) => {
            if (data.type === 'chunk') controller.enqueue(new Uint8Array(data.chunk as ArrayBuffer));
            else if (data.type === 'end') controller.close();
            else controller.error(new Error(String(data.message ?? 'The download failed.')));
            resolve();
          };
          port.postMessage({ type: 'pull' });
        }),
      cancel: () => port.postMessage({ type: 'cancel' }),
    },
    { highWaterMark: 1 },
  );
}

scope.addEventListener('fetch', (event) => {
  const match = /\/box\/download\/([\w-]{8,64})$/.exec(new URL(event.request.url).pathname);
  if (!match) return;
  const download = announced.get(match[1] as string);
  announced.delete(match[1] as string);
  if (!download) {
    event.respondWith(new Response('This download is over; start it again from the page.', { status: 404 }));
    return;
  }
  const headers: Record<string, string> = {
    'content-type': 'application/octet-stream',
    'content-disposition': `attachment; filename*=UTF-8''${encodeURIComponent(download.name)}`,
    'x-content-type-options': 'nosniff',
  };
  if (download.size !== undefined) headers['content-length'] = String(download.size);
  event.respondWith(new Response(streamFrom(download.port), { headers }));
});
