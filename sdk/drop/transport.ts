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

export interface DropTransportOptions {
  fetch?: typeof fetch;
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
async function answerError(res: Response, method: string, url: string): Promise<DeadropError> {
  const body: { error?: string; message?: string } = await res.json().catch(() => ({}));
  return new DeadropError(
    res.status,
    body.error || res.statusText,
    method,
    url,
    body.message,
    undefined,
    res,
  );
}

/** How a request may be retried: `safe` ones (the same effect twice) through outages, every one through a 429. */
type Retry = 'safe' | 'once';

/** The requests a drop makes, on one relay. */
export function dropTransport(relay: string, options: DropTransportOptions = {}) {
  const base = relay.replace(/\/+$/, '');
  const fetchImpl = options.fetch ?? ((...args: Parameters<typeof fetch>) => fetch(...args));
  const { signal, onWait } = options;

  /** The answer to `method path`, after waiting out 429s (and, when `safe`, outages); never throws an HTTP status. */
  async function request(method: string, path: string, init: RequestInit = {}, retry: Retry = 'safe') {
    const url = base + path;
    let limited = 0;
    let outages = 0;
    for (;;) {
      let res: Response;
      try {
        res = await fetchImpl(url, { ...init, method, signal: init.signal ?? signal });
      } catch (error) {
        if (signal?.aborted || init.signal?.aborted) throw error;
        const wait = OUTAGE_BACKOFF_S[outages++];
        if (retry !== 'safe' || wait === undefined)
          throw new DeadropError(0, '', method, url, undefined, error);
        onWait?.({ reason: 'relay_unavailable', seconds: wait });
        await sleep(wait * 1000, signal);
        continue;
      }
      if (res.status === 429 && limited++ < MAX_RATE_LIMITED) {
        await res.body?.cancel();
        // A 429 consumed nothing, so every request may be tried again once the relay's window allows it.
        const seconds = Math.min(600, Math.max(1, Number(res.headers.get('retry-after')) || 1));
        onWait?.({ reason: 'rate_limited', seconds });
        await sleep(seconds * 1000, signal);
        continue;
      }
      const wait = res.status === 503 && retry === 'safe' ? OUTAGE_BACKOFF_S[outages++] : undefined;
      if (wait !== undefined) {
        await res.body?.cancel();
        onWait?.({ reason: 'relay_unavailable', seconds: wait });
        await sleep(wait * 1000, signal);
        continue;
      }
      return res;
    }
  }

  /** The answer when it is a 2xx; the relay's error otherwise. */
  async function ok(method: string, path: string, init?: RequestInit, retry?: Retry): Promise<Response> {
    const res = await request(method, path, init, retry);
    if (!res.ok) throw await answerError(res, method, base + path);
    return res;
  }

  const json = (value: unknown): RequestInit => ({
    body: JSON.stringify(value),
    headers: { 'content-type': 'application/json' },
  });
  const done = async (res: Response) => {
    await res.body?.cancel();
  };

  return {
    relay: base,
    fetch: fetchImpl,

    /** The relay's bounds; a relay without /limits has the defaults. */
    async limits(): Promise<RelayLimits> {
      const res = await request('GET', '/limits');
      if (res.status === 404) {
        await done(res);
        return DEFAULT_LIMITS;
      }
      if (!res.ok) throw await answerError(res, 'GET', `${base}/limits`);
      return { ...DEFAULT_LIMITS, ...((await res.json()) as Partial<RelayLimits>) };
    },

    keys: async () => (await (await ok('GET', '/keys')).json()) as { private: string; public: string },

    /** The public key of a private key. */
    publicKeyOf: async (privateKey: string) =>
      ((await (await ok('GET', `/keys/${privateKey}`)).json()) as { public: string }).public,

    /** The value published at the drop's key; undefined when none. A 401 (a mistyped key) is thrown. */
    async readRecord(publicKey: string): Promise<unknown> {
      const res = await request('GET', `/public/${publicKey}`);
      if (res.status === 404) {
        await done(res);
        return undefined;
      }
      if (!res.ok) throw await answerError(res, 'GET', `${base}/public/${publicKey}`);
      return res.json();
    },

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
      const res = await request('GET', `/public/${publicKey}/${CLAIM_UID}`, {}, 'once');
      if (res.status === 404) {
        await done(res);
        return undefined;
      }
      if (!res.ok) throw await answerError(res, 'GET', `${base}/public/${publicKey}/${CLAIM_UID}`);
      return res.json();
    },

    markUploaded: async (privateKey: string) =>
      done(await ok('POST', `/private/${privateKey}/${UPLOADED_UID}`, json(true))),

    putChunk: async (privateKey: string, index: number, sealed: Uint8Array) =>
      done(
        await ok('POST', `/private/${privateKey}/${chunkUid(index)}`, {
          body: sealed as BodyInit,
          headers: { 'content-type': 'application/octet-stream' },
        }),
      ),

    /** Chunk `index`, left on the relay; waits up to `waitSeconds` for it; undefined when it is not there. */
    async peekChunk(privateKey: string, index: number, waitSeconds: number): Promise<Uint8Array | undefined> {
      const path = `/private/${privateKey}/${chunkUid(index)}?peek${waitSeconds > 0 ? `&wait=${waitSeconds}` : ''}`;
      const res = await request('GET', path);
      if (res.status === 404) {
        await done(res);
        return undefined;
      }
      if (!res.ok) throw await answerError(res, 'GET', base + path);
      return new Uint8Array(await res.arrayBuffer());
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
