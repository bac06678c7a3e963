// A fetch for the CLI's small JSON requests on node:http. Node 20's global fetch loads and compiles undici and
// its WebAssembly HTTP parser on first use, ~0.25 s of a command that otherwise takes a tenth of that; node:http
// is already in the process. Anything it does not cover (a streamed body, a manual redirect) goes to fetch.
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';

const MAX_REDIRECTS = 5;
/** Kept connections idle this long are closed before the relay (5 s by default) closes them under a request. */
const KEEP_IDLE_MS = 4_000;
/** Idle connections are kept for the next request, never to hold the process open. */
const agents = {
  http: new HttpAgent({ keepAlive: true, timeout: KEEP_IDLE_MS }),
  https: new HttpsAgent({ keepAlive: true, timeout: KEEP_IDLE_MS }),
};
/** Statuses whose answer has no body. */
const NO_BODY = new Set([204, 205, 304]);

/** How long a connection may take to open, and a request may go without a byte either way, as undici's fetch. */
export interface NodeFetchTimeouts {
  connectMs: number;
  /** Far above the relay's longest wait (`?wait=` up to 25 s, answered by then). */
  idleMs: number;
}
const DEFAULT_TIMEOUTS: NodeFetchTimeouts = { connectMs: 10_000, idleMs: 120_000 };

const coded = (message: string, code: string) => Object.assign(new Error(message), { code });

type Body = string | Uint8Array | undefined;

/** The part of a Response the relay client reads. */
class LeanResponse {
  readonly ok: boolean;
  readonly status: number;
  readonly statusText: string;
  readonly redirected: boolean;
  readonly headers: { get(name: string): string | null; has(name: string): boolean };
  #message: IncomingMessage;
  #signal: AbortSignal | undefined;
  #used = false;
  #stream: ReadableStream<Uint8Array> | undefined;

  constructor(
    readonly url: string,
    message: IncomingMessage,
    redirected: boolean,
    signal: AbortSignal | undefined,
    head: boolean,
  ) {
    this.#message = message;
    this.#signal = signal;
    // Nothing will read an empty body: let it end, so its connection goes back to the pool at once.
    if (head || NO_BODY.has(message.statusCode ?? 0)) message.resume();
    this.status = message.statusCode ?? 0;
    this.ok = this.status >= 200 && this.status < 300;
    this.statusText = message.statusMessage ?? '';
    this.redirected = redirected;
    const value = (name: string) => {
      const header = message.headers[name.toLowerCase()];
      return header === undefined ? null : Array.isArray(header) ? header.join(', ') : header;
    };
    this.headers = { get: value, has: (name) => value(name) !== null };
  }

  get bodyUsed() {
    return this.#used;
  }

  /** The body as a web stream, made only when asked for. */
  get body(): ReadableStream<Uint8Array> {
    this.#used = true;
    this.#stream ??= Readable.toWeb(this.#message) as ReadableStream<Uint8Array>;
    return this.#stream;
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const bytes = await this.bytes();
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  }

  async bytes(): Promise<Buffer> {
    if (this.#used) throw new TypeError('Body is unusable: Body has already been read');
    this.#used = true;
    const parts: Buffer[] = [];
    try {
      for await (const part of this.#message) parts.push(part as Buffer);
    } catch (error) {
      // An abort is the signal's reason, as with fetch; a connection cut short is fetch's "terminated".
      if (this.#signal?.aborted) throw this.#signal.reason;
      throw new TypeError('terminated', { cause: error });
    }
    return Buffer.concat(parts);
  }

  async text(): Promise<string> {
    return (await this.bytes()).toString('utf8');
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }
}

/** One request and its answer's head; a failure to connect is a TypeError "fetch failed", as fetch's. */
function exchange(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: Body,
  signal: AbortSignal | undefined,
  timeouts: NodeFetchTimeouts,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      return reject(new TypeError('fetch failed', { cause: new Error('unknown scheme') }));
    }
    const secure = url.protocol === 'https:';
    const send = secure ? httpsRequest : httpRequest;
    const sized =
      body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) };
    const outgoing = send(url, { method, headers: sized, agent: secure ? agents.https : agents.http });
    outgoing.once('socket', (socket) => {
      if (!socket.connecting) return; // a kept connection
      const timer = setTimeout(
        () => outgoing.destroy(coded('connect timed out', 'UND_ERR_CONNECT_TIMEOUT')),
        timeouts.connectMs,
      );
      timer.unref();
      socket.once('connect', () => clearTimeout(timer));
      socket.once('close', () => clearTimeout(timer));
    });
    // Covers the answer's body too: the socket stays the request's until the body has been read.
    outgoing.setTimeout(timeouts.idleMs, () =>
      outgoing.destroy(coded(`no byte for ${timeouts.idleMs / 1000} s`, 'ETIMEDOUT')),
    );
    const abort = () => {
      reject(signal?.reason);
      outgoing.destroy();
    };
    signal?.addEventListener('abort', abort, { once: true });
    // Every error is listened to (a settled promise ignores the later ones): a socket cut after the answer
    // began is the body's failure, not the process's.
    outgoing.on('error', (error) => {
      signal?.removeEventListener('abort', abort);
      reject(signal?.aborted ? signal.reason : new TypeError('fetch failed', { cause: error }));
    });
    outgoing.once('response', (message) => {
      signal?.removeEventListener('abort', abort);
      // An abort after the head cuts the body, as fetch does.
      if (signal) {
        const cut = () => message.destroy(signal.reason);
        signal.addEventListener('abort', cut, { once: true });
        message.once('close', () => signal.removeEventListener('abort', cut));
      }
      resolve(message);
    });
    outgoing.end(body);
  });
}

const headersOf = (given: HeadersInit | undefined): Record<string, string> => {
  if (given === undefined) return {};
  if (Array.isArray(given)) return Object.fromEntries(given);
  if (typeof (given as Headers).forEach === 'function') {
    const flat: Record<string, string> = {};
    (given as Headers).forEach((value, name) => {
      flat[name] = value;
    });
    return flat;
  }
  return { ...(given as Record<string, string>) };
};

/**
 * A fetch for string and byte bodies, following redirects as fetch does; everything else is fetch's own.
 * `timeouts` for tests; the CLI takes {@link nodeFetch}.
 */
export const createNodeFetch = (timeouts: NodeFetchTimeouts = DEFAULT_TIMEOUTS) =>
  (async (input: string | URL | Request, init: RequestInit = {}) => {
    const body = init.body ?? undefined;
    const plain = body === undefined || typeof body === 'string' || body instanceof Uint8Array;
    if (typeof input === 'object' && !(input instanceof URL)) return fetch(input, init);
    if (!plain || (init.redirect ?? 'follow') !== 'follow') return fetch(input, init);
    let url = new URL(input);
    let method = (init.method ?? 'GET').toUpperCase();
    let sent: Body = body as Body;
    const headers = headersOf(init.headers);
    const signal = init.signal ?? undefined;
    for (let hops = 0; ; hops++) {
      const message = await exchange(url, method, headers, sent, signal, timeouts);
      const location = message.headers.location;
      if (!location || ![301, 302, 303, 307, 308].includes(message.statusCode ?? 0)) {
        return new LeanResponse(
          url.href,
          message,
          hops > 0,
          signal,
          method === 'HEAD',
        ) as unknown as Response;
      }
      message.resume();
      if (hops >= MAX_REDIRECTS)
        throw new TypeError('fetch failed', { cause: new Error('redirect count exceeded') });
      try {
        url = new URL(location, url);
      } catch (error) {
        throw new TypeError('fetch failed', { cause: error });
      }
      const status = message.statusCode as number;
      if (
        (status === 303 && method !== 'HEAD') ||
        ((status === 301 || status === 302) && method === 'POST')
      ) {
        method = 'GET';
        sent = undefined;
        delete headers['content-type'];
      }
    }
  }) as typeof fetch;

/** The CLI's fetch, with undici's connect timeout and an idle timeout above the relay's longest wait. */
export const nodeFetch = createNodeFetch();
