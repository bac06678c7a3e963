// The live lane of a drop: while its sender is online, the receiver asks it for the chunks from where it stands,
// and they stream through the relay's /pipe/ rather than through its store. Stored chunks stay what serves a
// receiver while the sender is away, and what a sender without a pipe (the page) sends.
//
// The lane has its own key pair, created by the sender: its private key is a sealed field of the drop (`l`),
// read only with the drop's private key, so only whoever claimed the drop learns it. The receiver writes a sealed
// request (the chunk it needs, a random id) at the lane's private path as soon as it begins fetching; the sender,
// long-polling the lane's public path, stops storing chunks and answers on `/pipe/<lane public key>`, which pairs
// with the receiver's GET of `/pipe/<lane private key>`. The stream is the id and the index of its first chunk
// (the first one the sender did not store), then the sealed chunks in order, byte for byte what the store would
// have held: no one but the claimant can ask, and no one without the drop's key can forge a chunk.
import { concatBytes } from '@noble/hashes/utils.js';
import { fromBase64url, toBase64url } from '../e2e/encoding.js';

/** The relay's pipe, as the drop's live lane uses it. Node's CLI passes one; without it a drop uses the store only. */
export interface DropPipe {
  /**
   * Streams `body` (of `length` bytes) to `/pipe/<key>`; resolves once all of it is through, rejects when the
   * stream is cut.
   */
  send(key: string, body: AsyncIterable<Uint8Array>, length: number, signal?: AbortSignal): Promise<void>;
  /** What the other side streams to `/pipe/<key>`, once it is there. */
  receive(key: string, signal?: AbortSignal): Promise<AsyncIterable<Uint8Array>>;
}

/** The drop's field holding the sealed lane key (`{ v: 2, key }`). */
export const LIVE_UID = 'l';
/** The lane's field holding the receiver's sealed request (`{ v: 2, from, id }`). */
export const LIVE_REQUEST_UID = 'r';
/** Bytes of a request's id, the first bytes of its stream. */
export const LIVE_ID_BYTES = 16;
/** Refusals of the relay's pipe in a row after which a sender or receiver gives the lane up for the store. */
export const PIPE_REFUSALS = 3;
/** A stream's head: the request's id, then the index of its first chunk (4 bytes, big-endian). */
export const LIVE_HEAD_BYTES = LIVE_ID_BYTES + 4;

export function liveHead(id: Uint8Array, start: number): Uint8Array {
  const head = new Uint8Array(LIVE_HEAD_BYTES);
  head.set(id);
  new DataView(head.buffer).setUint32(LIVE_ID_BYTES, start);
  return head;
}

/**
 * The first chunk of a stream whose head is `head`; undefined when it answers another request than `id`'s. A
 * head that lies about its start gains nothing: each chunk's index is sealed with it.
 */
export function readLiveHead(head: Uint8Array | undefined, id: Uint8Array): { start: number } | undefined {
  if (head?.length !== LIVE_HEAD_BYTES) return undefined;
  for (let at = 0; at < LIVE_ID_BYTES; at++) if (head[at] !== id[at]) return undefined;
  return { start: new DataView(head.buffer, head.byteOffset, head.byteLength).getUint32(LIVE_ID_BYTES) };
}

/**
 * What the receiver asks: the chunks from `from` on, on a stream that begins with `id`. Those the sender stored
 * come from the store, unless the receiver `lost` them (taken from the store, then not kept: a power cut). With
 * `store`, the receiver gives the lane up (the relay refuses its side of the pipe): the rest goes through the
 * store.
 */
export interface LiveRequest {
  from: number;
  id: Uint8Array;
  lost?: boolean;
  store?: boolean;
}

export const liveRequestValue = (request: LiveRequest) => ({
  v: 2,
  from: request.from,
  id: toBase64url(request.id),
  ...(request.lost && { lost: true }),
  ...(request.store && { store: true }),
});

/** The request in a sealed value; undefined when it is not one. */
export function parseLiveRequest(value: unknown, chunks: number): LiveRequest | undefined {
  const { from, id, lost, store } = (value ?? {}) as Record<string, unknown>;
  if (!Number.isSafeInteger(from) || (from as number) < 0 || (from as number) >= chunks) return undefined;
  if (typeof id !== 'string') return undefined;
  try {
    const bytes = fromBase64url(id);
    if (bytes.length !== LIVE_ID_BYTES) return undefined;
    return { from: from as number, id: bytes, lost: lost === true, store: store === true };
  } catch {
    return undefined;
  }
}

/** Reads a byte stream in pieces of exact sizes. */
export function byteReader(source: AsyncIterable<Uint8Array>) {
  const iterator = source[Symbol.asyncIterator]();
  const parts: Uint8Array[] = [];
  let buffered = 0;
  return {
    /** The next `length` bytes as the stream gave them, without copying; undefined when it ends first. */
    async readParts(length: number): Promise<Uint8Array[] | undefined> {
      while (buffered < length) {
        const next = await iterator.next();
        if (next.done) return undefined;
        if (next.value.length === 0) continue;
        parts.push(next.value);
        buffered += next.value.length;
      }
      const out: Uint8Array[] = [];
      let taken = 0;
      while (taken < length) {
        const part = parts[0] as Uint8Array;
        const take = Math.min(part.length, length - taken);
        out.push(take === part.length ? part : part.subarray(0, take));
        taken += take;
        if (take === part.length) parts.shift();
        else parts[0] = part.subarray(take);
      }
      buffered -= length;
      return out;
    },
    /** The next `length` bytes in one array; undefined when the stream ends first. */
    async read(length: number): Promise<Uint8Array | undefined> {
      const parts = await this.readParts(length);
      if (parts === undefined) return undefined;
      return parts.length === 1 ? (parts[0] as Uint8Array) : concatBytes(...parts);
    },
    /** Stops reading: the stream is let go. */
    async close(): Promise<void> {
      await iterator.return?.();
    },
  };
}
