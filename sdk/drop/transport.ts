// A drop's requests to its relay: each answer read once, 429s waited out as Retry-After says, safe requests
// retried through a short outage, and every other failure a DeadropError that names the request.
import { DeadropError } from '../index.js';
import { CLAIM_UID, chunkUid, UPLOADED_UID } from './common.js';

/** Why a transfer is waiting, for a progress line: the relay asked to slow down, or the relay is away. */
export type DropWait = { reason: 'rate_limited' | 'relay_unavailable'; seconds: number };

/** The relay's bounds a drop is planned with (GET /limits). */
export interface RelayLimits {
  ttl: number;
  blobLimit: number;
  keyQuota: number;
  maxFields: number;
}

/** The defaults of a relay too old to answer /limits. */
const DEFAULT_LIMITS: RelayLimits = {
  ttl: 86_400,
  blobLimit: 1_048_576,
  keyQuota: 67_108_864,
  maxFields: 1000,
};

/** 429s in a row before a request gives up: far past any Retry-After a relay gives one client. */
const MAX_RATE_LIMITED = 60;
/** Waits before each retry of a safe request through a 503 or a network failure: about a minute in all. */
const OUTAGE_BACKOFF_S = [0.5, 1, 2, 4, 8, 15, 30];

/** One HTTP exchange, as a drop needs it: {@link fetchHttp} anywhere, or a leaner one in Node (fewer copies). */
export type DropHttp = (url: string, init: DropHttpInit) => Promise<DropHttpAnswer>;

export interface DropHttpInit {
  method: string;
  body?: Uint8Array | string;
  contentType?: string;
  signal?: AbortSignal | undefined;
}

type RequestInit = Omit<DropHttpInit, 'method'> & { unabortable?: boolean };

/** An answer whose body is read (or discarded) once. */
export interface DropHttpAnswer {
  status: number;
  statusText: string;
  header(name: 'retry-after' | 'content-type'): string | undefined;
  json(): Promise<unknown>;
  bytes(): Promise<Uint8Array>;
  discard(): Promise<void>;
}

/** {@link DropHttp} on `fetch`. */
export const fetchHttp =
  (fetchImpl: typeof fetch): DropHttp =>
  async (url, { method, body, contentType, signal }) => {
    const res = await fetchImpl(url, {
      method,
      ...(body !== undefined && { body: body as BodyInit }),
      ...(contentType && { headers: { 'content-type': contentType } }),
      ...(signal && { signal }),
    });
    return {
      status: res.status,
      statusText: res.statusText,
      header: (name) => res.headers.get(name) ?? undefined,
      json: () => res.json(),
      bytes: async () => new Uint8Array(await res.arrayBuffer()),
      discard: async () => {
        await res.body?.cancel();
      },
    };
  };

export interface DropTransportOptions {
  fetch?: typeof fetch | undefined;
  /** How requests go; on `fetch` (the option's, or the global one) by default. */
  http?: DropHttp | undefined;
  signal?: AbortSignal | undefined;
  /** Told when a request waits before it is tried again. */
  onWait?: ((wait: DropWait) => void) | undefined;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener('abort', abort);
      resolve();
    }
    function abort() {
      clearTimeout(timer);
      reject(signal?.reason);
    }
    signal?.addEventListener('abort', abort, { once: true });
  });

/** The DeadropError of a relay's error answer (its body is read). */
async function answerError(res: DropHttpAnswer, method: string, url: string): Promise<DeadropError> {
  const body = ((await res.json().catch(() => ({}))) ?? {}) as { error?: string; message?: string };
  return new DeadropError(res.status, body.error || res.statusText, method, url, body.message);
}

const isOk = (res: DropHttpAnswer) => res.status >= 200 && res.status < 300;

/** How a request may be retried: `safe` ones (the same effect twice) through outages, every one through a 429. */
type Retry = 'safe' | 'once';

/** The requests a drop makes, on one relay. */
export function dropTransport(relay: string, options: DropTransportOptions = {}) {
  const base = relay.replace(/\/+$/, '');
  const http =
    options.http ?? fetchHttp(options.fetch ?? ((...args: Parameters<typeof fetch>) => fetch(...args)));
  const { signal, onWait } = options;
  let reached = false;

  /** The answer to `method path`, after waiting out 429s (and, when `safe`, outages); never throws an HTTP status. */
  async function request(
    method: string,
    path: string,
    { unabortable, ...init }: RequestInit = {},
    retry: Retry = 'safe',
  ): Promise<DropHttpAnswer> {
    const url = base + path;
    let limited = 0;
    let outages = 0;
    for (;;) {
      let res: DropHttpAnswer;
      try {
        res = await http(url, { ...init, method, signal: unabortable ? undefined : signal });
      } catch (error) {
        if (signal?.aborted) throw error;
        // A relay that never answered is not there (a wrong URL, not started): said at once, not in a minute.
        const wait = reached ? OUTAGE_BACKOFF_S[outages++] : undefined;
        if (retry !== 'safe' || wait === undefined)
          throw new DeadropError(0, '', method, url, undefined, error);
        onWait?.({ reason: 'relay_unavailable', seconds: wait });
        await sleep(wait * 1000, signal);
        continue;
      }
      reached = true;
      if (res.status === 429 && limited++ < MAX_RATE_LIMITED) {
        await res.discard();
        // A 429 consumed nothing, so every request may be tried again once the relay's window allows it.
        const seconds = Math.min(600, Math.max(1, Number(res.header('retry-after')) || 1));
        onWait?.({ reason: 'rate_limited', seconds });
        await sleep(seconds * 1000, signal);
        continue;
      }
      const wait = res.status === 503 && retry === 'safe' ? OUTAGE_BACKOFF_S[outages++] : undefined;
      if (wait !== undefined) {
        await res.discard();
        onWait?.({ reason: 'relay_unavailable', seconds: wait });
        await sleep(wait * 1000, signal);
        continue;
      }
      return res;
    }
  }

  /** The answer when it is a 2xx; the relay's error otherwise. */
  async function ok(
    method: string,
    path: string,
    init?: Omit<DropHttpInit, 'method'>,
    retry?: Retry,
  ): Promise<DropHttpAnswer> {
    const res = await request(method, path, init, retry);
    if (!isOk(res)) throw await answerError(res, method, base + path);
    return res;
  }

  /** The answer to a GET of `path` when it is there; undefined on a 404 (nothing there); another status is thrown. */
  async function found(path: string, init?: RequestInit, retry?: Retry): Promise<DropHttpAnswer | undefined> {
    const res = await request('GET', path, init, retry);
    if (res.status === 404) {
      await done(res);
      return undefined;
    }
    if (!isOk(res)) throw await answerError(res, 'GET', base + path);
    return res;
  }

  const json = (value: unknown) => ({ body: JSON.stringify(value), contentType: 'application/json' });
  const done = (res: DropHttpAnswer) => res.discard();

  return {
    relay: base,
    http,

    /** The relay's bounds; a relay without /limits has the defaults. */
    async limits(): Promise<RelayLimits> {
      const res = await found('/limits');
      return res ? { ...DEFAULT_LIMITS, ...((await res.json()) as Partial<RelayLimits>) } : DEFAULT_LIMITS;
    },

    keys: async () => (await (await ok('GET', '/keys')).json()) as { private: string; public: string },

    /** The public key of a private key. */
    publicKeyOf: async (privateKey: string) =>
      ((await (await ok('GET', `/keys/${privateKey}`)).json()) as { public: string }).public,

    /** The value published at the drop's key; undefined when none. A 401 (a mistyped key) is thrown. */
    readRecord: async (publicKey: string): Promise<unknown> => (await found(`/public/${publicKey}`))?.json(),

    publishRecord: async (privateKey: string, value: unknown) =>
      done(await ok('POST', `/private/${privateKey}`, json(value))),

    unpublishRecord: async (privateKey: string) => done(await ok('DELETE', `/private/${privateKey}`)),

    putClaim: async (privateKey: string, value: unknown) =>
      done(await ok('POST', `/private/${privateKey}/${CLAIM_UID}`, json(value))),

    /**
     * Takes the claim (once, so never retried after it may have been taken); undefined when another fetch
     * took it first.
     */
    async takeClaim(publicKey: string): Promise<unknown> {
      // Never cut short: a claim the relay handed over must reach the receiver, or it is lost to everyone.
      return (await found(`/public/${publicKey}/${CLAIM_UID}`, { unabortable: true }, 'once'))?.json();
    },

    /** Writes a JSON one-to-one value at `uid` of the key pair. */
    putValue: async (privateKey: string, uid: string, value: unknown) =>
      done(await ok('POST', `/private/${privateKey}/${uid}`, json(value))),

    /** The JSON value at `uid`, left on the relay; undefined when none. */
    peekValue: async (privateKey: string, uid: string): Promise<unknown> =>
      (await found(`/private/${privateKey}/${uid}?peek`))?.json(),

    /** Takes the JSON value at `uid`, waiting up to `waitSeconds` for it; undefined when none came. */
    takeValue: async (publicKey: string, uid: string, waitSeconds: number): Promise<unknown> =>
      (await found(`/public/${publicKey}/${uid}?wait=${waitSeconds}`, {}, 'once'))?.json(),

    markUploaded: async (privateKey: string) =>
      done(await ok('POST', `/private/${privateKey}/${UPLOADED_UID}`, json(true))),

    putChunk: async (privateKey: string, index: number, sealed: Uint8Array) =>
      done(
        await ok('POST', `/private/${privateKey}/${chunkUid(index)}`, {
          body: sealed,
          contentType: 'application/octet-stream',
        }),
      ),

    /** Chunk `index`, left on the relay; waits up to `waitSeconds` for it; undefined when it is not there. */
    async peekChunk(privateKey: string, index: number, waitSeconds: number): Promise<Uint8Array | undefined> {
      const wait = waitSeconds > 0 ? `&wait=${waitSeconds}` : '';
      return (await found(`/private/${privateKey}/${chunkUid(index)}?peek${wait}`))?.bytes();
    },

    /** Seconds until the one-to-one value at `uid` expires; 0 when it is gone (taken, deleted or expired). */
    fieldTtl: async (privateKey: string, uid: string) =>
      ((await (await ok('GET', `/private/${privateKey}/${uid}`)).json()) as { ttl: number }).ttl,

    deleteField: async (privateKey: string, uid: string) =>
      done(await ok('DELETE', `/private/${privateKey}/${uid}`)),

    /** Seconds until the published value expires; 0 when there is none. */
    recordTtl: async (privateKey: string) =>
      ((await (await ok('GET', `/private/${privateKey}?stats`)).json()) as { publish: { ttl: number } })
        .publish.ttl,
  };
}

export type DropTransport = ReturnType<typeof dropTransport>;
