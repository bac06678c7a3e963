// The relay client: every route of a deadrop relay over fetch, failing over between the URLs of one instance.

/** A key pair from `GET /keys`: the private key is a secret that owns both paths; the public one is shared. */
export interface KeyPair {
  private: string;
  public: string;
}

/** What the relay tells about a key it issued (`GET /keys/<key>`). */
export type KeyInfo = { type: 'private'; public: string } | { type: 'public' };

/** The figures of a key pair (`GET /private/<key>?stats`): queued items and seconds left. */
export interface Stats {
  consume: { count: number; ttl: number };
  publish: { ttl: number };
}

/** Options every call takes. */
export interface CallOptions {
  /** Aborts the call; the abort error is thrown as it is, not wrapped. */
  signal?: AbortSignal;
}

/** Options of the reads that may wait for data. */
export interface WaitOptions extends CallOptions {
  /** Seconds (0–60) the relay waits for data before answering that there is none. */
  wait?: number;
}

/** Options of the owner's reads: every private GET without `hook` forgets the webhook (Securelay). */
export interface HookOptions extends CallOptions {
  /** A URL that public posts are delivered to from now on (for `DEADROP_HOOK_TTL`). */
  hook?: string;
}

/** Options of {@link DeadropClient.drain}. */
export interface DrainOptions extends WaitOptions, HookOptions {}

/** Options of {@link DeadropClient.subscribe}; abort `signal` to stop. */
export interface SubscribeOptions extends HookOptions {
  /** Resume after this event id (the `id` an earlier subscription handed to its callback). */
  lastEventId?: string;
}

/** Options of {@link DeadropClient.pipeSend}. */
export interface PipeOptions extends CallOptions {
  /** The Content-Type the receiver gets; by default the body's own (a Blob's type, text for a string). */
  type?: string;
}

/** Options of {@link createClient}. */
export interface ClientOptions {
  /** The instance id to take the URLs of, when `endpoints` is an `endpoints.json` map. */
  id?: string;
  /** A fetch to use instead of the global one. */
  fetch?: typeof fetch;
}

/** One base URL, the URLs of one instance, or an `endpoints.json` map (`{"<id>":["https://a","https://b"]}`). */
export type Endpoints = string | readonly string[] | Readonly<Record<string, readonly string[]>>;

/**
 * Every failure of a call: a non-2xx answer (`status`, the relay's `serverMessage`, the `response`) or a
 * network error (`status` 0, the fetch error as `cause`). Keys in `url` and the message are cut to 4
 * characters, as in the relay's logs, so that logging an error does not leak a private key.
 */
export class DeadropError extends Error {
  /** The URL of the request, keys cut to 4 characters. */
  readonly url: string;

  /**
   * @param status HTTP status, or 0 when no complete answer came.
   * @param statusText The status's reason phrase.
   * @param method The request's method.
   * @param url The request's URL.
   * @param serverMessage The `message` of the relay's JSON error body (or, without one, the client's reason).
   * @param cause The network error.
   * @param response The answer, its body already read.
   */
  constructor(
    readonly status: number,
    statusText: string,
    readonly method: string,
    url: string,
    readonly serverMessage?: string,
    cause?: unknown,
    readonly response?: Response,
  ) {
    const shown = url.replace(/\/([\w-]{4})[\w-]{28}(?![\w-])/g, '/$1…');
    // undici's own message is only "fetch failed"; the reason is one level down.
    const failure = cause as { message?: string; cause?: { message?: string } } | undefined;
    const detail = serverMessage ?? failure?.cause?.message ?? failure?.message;
    super(
      `Request failed with ${status ? `status ${status} ${statusText}` : 'a network error'}: ${method} ${shown}${detail ? ` (${detail})` : ''}`,
      { cause },
    );
    this.name = 'DeadropError';
    this.url = shown;
  }
}

/** The client of one relay instance; see {@link createClient}. */
export interface DeadropClient {
  /** A new key pair. */
  keys(options?: CallOptions): Promise<KeyPair>;
  /** The type of a key, and for a private key its public key; a key this relay did not issue is a 400. */
  keyInfo(key: string, options?: CallOptions): Promise<KeyInfo>;
  /** The instance id: equal on every instance that serves the same data. */
  id(options?: CallOptions): Promise<string>;
  /** Key-value: publishes `value` (any JSON value) at the private key, replacing the earlier one. */
  publish(privateKey: string, value: unknown, options?: CallOptions): Promise<void>;
  /** Key-value: the value published for the public key, or `undefined` when there is none. */
  read<T = unknown>(publicKey: string, options?: CallOptions): Promise<T | undefined>;
  /** Key-value: restarts the published value's lifetime. */
  renew(privateKey: string, options?: CallOptions): Promise<void>;
  /** Key-value: deletes the published value. */
  unpublish(privateKey: string, options?: CallOptions): Promise<void>;
  /**
   * Aggregator: queues `value` for the owner; `webhook` is true when a webhook took it instead.
   * Never repeated on another URL unless the connection was never made (see README).
   */
  post(publicKey: string, value: unknown, options?: CallOptions): Promise<{ webhook: boolean }>;
  /** Aggregator: takes every queued item, oldest first; `[]` when none came (within `wait`). */
  drain<T = unknown>(privateKey: string, options?: DrainOptions): Promise<T[]>;
  /**
   * Aggregator: calls `onItem` with each item as it arrives (server-sent events, consumed when sent),
   * reconnecting with `Last-Event-ID` after a network error so that nothing is lost or repeated.
   * Resolves when `signal` aborts; rejects on an error answer (such as 401) or when `onItem` throws.
   */
  subscribe<T = unknown>(
    privateKey: string,
    onItem: (item: T, id: string) => void | Promise<void>,
    options?: SubscribeOptions,
  ): Promise<void>;
  /** The queue's figures; nothing is consumed. With `hook`, the way to register a webhook without draining. */
  stats(privateKey: string, options?: HookOptions): Promise<Stats>;
  /** One-to-one: leaves `value` at `uid` for one reader. */
  send(privateKey: string, uid: string, value: unknown, options?: CallOptions): Promise<void>;
  /** One-to-one: takes the value at `uid` (once), or `undefined` when none came (within `wait`). */
  receive<T = unknown>(publicKey: string, uid: string, options?: WaitOptions): Promise<T | undefined>;
  /** One-to-one: seconds until the value at `uid` expires; 0 when it is gone. */
  ttl(privateKey: string, uid: string, options?: CallOptions): Promise<number>;
  /** One-to-one: withdraws the value at `uid`. */
  withdraw(privateKey: string, uid: string, options?: CallOptions): Promise<void>;
  /**
   * Pipe: streams `body` to whoever receives at the other key of the pair; resolves when all of it is
   * through. A ReadableStream body needs a runtime whose fetch exposes redirects (Node, Deno, Bun): in
   * browsers pass a Blob, File or string.
   */
  pipeSend(
    key: string,
    body: ReadableStream<Uint8Array> | Blob | string,
    options?: PipeOptions,
  ): Promise<void>;
  /** Pipe: the answer carrying what the other side sends, once it is there (`body` is the stream). */
  pipeReceive(key: string, options?: CallOptions): Promise<Response>;
}

interface SendInit extends CallOptions {
  body?: BodyInit;
  headers?: Record<string, string>;
  redirect?: RequestRedirect;
  /** Not safe to repeat: fails over only when the connection was never made. */
  once?: boolean;
}

/** Errors that prove the request never reached a server, so that even a POST may go elsewhere. */
const NOT_CONNECTED = /^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|UND_ERR_CONNECT_TIMEOUT)$/;

const enc = encodeURIComponent;

const json = (value: unknown) => ({
  body: JSON.stringify(value),
  headers: { 'content-type': 'application/json' },
});

/** The DeadropError of an error answer, with the relay's message when its body is JSON, else `detail`. */
async function answerError(res: Response, method: string, detail?: string): Promise<DeadropError> {
  const body: { error?: string; message?: string } = await res.json().catch(() => ({}));
  return new DeadropError(
    res.status,
    body.error || res.statusText,
    method,
    res.url,
    body.message ?? detail,
    undefined,
    res,
  );
}

/** The DeadropError of a request that got no (complete) answer; an abort is left as it is. */
const networkError = (error: unknown, method: string, url: string, signal?: AbortSignal) =>
  signal?.aborted ? error : new DeadropError(0, '', method, url, undefined, error);

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, signal?.aborted ? 0 : ms);
    signal?.addEventListener('abort', done);
  });

/**
 * A client of the relay at `endpoints`. With several URLs (or an `endpoints.json` map and `options.id`)
 * a call that finds one URL dead (network error, 502, 503, 504) goes on to the next, and later calls
 * start at the URL that answered. A call that may have taken effect is never repeated: see README.
 */
export function createClient(endpoints: Endpoints, options: ClientOptions = {}): DeadropClient {
  const urls = (
    typeof endpoints === 'string'
      ? [endpoints]
      : Array.isArray(endpoints)
        ? endpoints
        : (endpoints as Record<string, string[]>)[options.id ?? '']
  )?.map((url: string) => url.replace(/\/+$/, ''));
  if (!urls?.length) throw new TypeError(`No relay URL for instance "${options.id}".`);
  const fetchUrl = options.fetch ?? fetch;
  let current = 0;

  const send = async (method: string, path: string, init: SendInit = {}): Promise<Response> => {
    let failure: unknown;
    for (let tried = 0; tried < urls.length; tried++) {
      const index = (current + tried) % urls.length;
      const url = urls[index] + path;
      let res: Response;
      try {
        res = await fetchUrl(url, { ...init, method });
      } catch (error) {
        failure = networkError(error, method, url, init.signal);
        if (failure === error) throw error;
        const code = (error as { cause?: { code?: string } }).cause?.code;
        if (init.once && !NOT_CONNECTED.test(code ?? '')) throw failure;
        continue;
      }
      if (!init.once && res.status > 501 && res.status < 505) {
        failure = await answerError(res, method);
        continue;
      }
      current = index;
      return res;
    }
    throw failure;
  };

  /** Sends and reads the JSON (or text) answer; `missing` makes a JSON 404 answer `undefined`. */
  const call = async (method: string, path: string, init?: SendInit, missing?: boolean) => {
    const res = await send(method, path, init);
    const type = res.headers.get('content-type') ?? '';
    if (res.status === 404 && missing && type.includes('json')) {
      await res.body?.cancel();
      return undefined;
    }
    if (!res.ok) throw await answerError(res, method);
    return res.status === 204 ? undefined : type.includes('json') ? res.json() : res.text();
  };

  const privatePath = (key: string, query: Record<string, string | number | undefined>) => {
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries(query)) if (value !== undefined) search.set(name, `${value}`);
    return `/private/${enc(key)}${`${search}` ? `?${search}` : ''}`;
  };

  return {
    keys: (o) => call('GET', '/keys', o),
    keyInfo: (key, o) => call('GET', `/keys/${enc(key)}`, o),
    id: (o) => call('GET', '/id', o),
    publish: (key, value, o) => call('POST', `/private/${enc(key)}`, { ...o, ...json(value) }),
    read: (key, o) => call('GET', `/public/${enc(key)}`, o, true),
    renew: (key, o) => call('PATCH', `/private/${enc(key)}`, o),
    unpublish: (key, o) => call('DELETE', `/private/${enc(key)}`, o),
    // Appending twice would queue a duplicate, so this POST is `once`.
    post: (key, value, o) => call('POST', `/public/${enc(key)}`, { ...o, ...json(value), once: true }),
    drain: async (key, o = {}) =>
      (await call('GET', privatePath(key, { wait: o.wait, hook: o.hook }), o, true)) ?? [],
    stats: (key, o = {}) => call('GET', privatePath(key, { stats: '', hook: o.hook }), o),
    send: (key, uid, value, o) => call('POST', `/private/${enc(key)}/${enc(uid)}`, { ...o, ...json(value) }),
    receive: (key, uid, o = {}) =>
      call('GET', `/public/${enc(key)}/${enc(uid)}${o.wait === undefined ? '' : `?wait=${o.wait}`}`, o, true),
    ttl: async (key, uid, o) => (await call('GET', `/private/${enc(key)}/${enc(uid)}`, o)).ttl,
    withdraw: (key, uid, o) => call('DELETE', `/private/${enc(key)}/${enc(uid)}`, o),

    subscribe: async (key, onItem, o = {}) => {
      const { signal } = o;
      let last = o.lastEventId;
      let retry = 1000;
      for (; !signal?.aborted; await sleep(retry, signal)) {
        let res: Response;
        try {
          const headers: Record<string, string> = { accept: 'text/event-stream' };
          if (last) headers['last-event-id'] = last;
          res = await send('GET', privatePath(key, { hook: o.hook }), { signal, headers });
          if (!res.ok || !res.headers.get('content-type')?.includes('event-stream')) {
            throw await answerError(res, 'GET');
          }
        } catch (error) {
          if (signal?.aborted) return;
          // A network error or a dead instance: reconnect; anything else is the caller's to see.
          if (error instanceof DeadropError && (!error.status || error.status > 499)) continue;
          throw error;
        }
        const reader = (res.body as ReadableStream<Uint8Array>).getReader();
        const decoder = new TextDecoder();
        let pending = '';
        let id = '';
        let data: string[] = [];
        try {
          for (;;) {
            // A cut connection ends the stream like a clean end: both reconnect from the last delivered id.
            const chunk = await reader.read().catch(() => undefined);
            if (!chunk || chunk.done) break;
            // A CR at the very end may be the first half of a CRLF split across chunks.
            const lines = (pending + decoder.decode(chunk.value, { stream: true })).split(/\r\n|\n|\r(?!$)/);
            pending = lines.pop() ?? '';
            for (const line of lines) {
              const colon = line.indexOf(':');
              const field = colon < 0 ? line : line.slice(0, colon);
              const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
              if (!line && data.length) {
                const item = JSON.parse(data.join('\n'));
                data = [];
                await onItem(item, id);
                last = id;
              } else if (field === 'data') data.push(value);
              else if (field === 'id') id = value;
              else if (field === 'retry' && /^\d+$/.test(value)) retry = +value;
            }
          }
        } finally {
          reader.cancel().catch(() => {});
        }
      }
    },

    pipeSend: async (key, body, o = {}) => {
      const { signal } = o;
      const init: SendInit = { signal, headers: o.type ? { 'content-type': o.type } : {}, once: true };
      const path = `/pipe/${enc(key)}`;
      let res: Response;
      if (body instanceof ReadableStream) {
        // fetch cannot re-send a stream after a redirect: ask for the 307 with no body, then stream to it.
        const hop = await send('POST', path, { signal, redirect: 'manual', once: true });
        const location = hop.headers.get('location');
        // A browser hides the redirect (an opaque answer): there, only a Blob or a string can be sent.
        if (!location)
          throw await answerError(hop, 'POST', 'no redirect to follow; in a browser send a Blob');
        await hop.body?.cancel();
        const url = new URL(location, hop.url).href;
        res = await fetchUrl(url, { ...init, body, method: 'POST', duplex: 'half' } as RequestInit).catch(
          (error) => {
            throw networkError(error, 'POST', url, signal);
          },
        );
      } else {
        res = await send('POST', path, { ...init, body });
      }
      if (!res.ok) throw await answerError(res, 'POST');
      // The relay answers as the transfer goes and cuts the answer short if it fails.
      await res.text().catch((error) => {
        throw networkError(error, 'POST', res.url, signal);
      });
    },

    pipeReceive: async (key, o) => {
      const res = await send('GET', `/pipe/${enc(key)}`, { ...o, once: true });
      if (!res.ok) throw await answerError(res, 'GET');
      return res;
    },
  };
}
