// Sending a drop: the link works before the first chunk is uploaded, and a drop larger than the relay holds
// for one key pair streams through that room while the receiver takes chunks out of it.
import { bytesToHex } from '@noble/hashes/utils.js';
import {
  CHUNK_SEAL_OVERHEAD,
  DROP_CHUNK_SIZE,
  openRecord,
  sealChunk,
  sealChunkParts,
  sealRecord,
} from '../e2e/drop-chunks.js';
import { nobleSuite } from '../e2e/noble-suite.js';
import type { CipherSuite } from '../e2e/suite.js';
import { DeadropError } from '../index.js';
import {
  type Argon2Params,
  chunkCount,
  chunkLength,
  chunkUid,
  createWindow,
  DropError,
  type DropOwner,
  formatDropLink,
} from './common.js';
import { revokeDrop } from './follow.js';
import {
  type DropPipe,
  LIVE_HEAD_BYTES,
  LIVE_REQUEST_UID,
  LIVE_UID,
  type LiveRequest,
  liveHead,
  PIPE_REFUSALS,
  parseLiveRequest,
} from './live.js';
import { createRecord, type DropRecord, type SealedManifestValue, withManifest } from './record.js';
import { type DropHttp, type DropTransport, type DropWait, dropTransport } from './transport.js';

/** Chunk uploads in flight at once: enough to hide a round trip, few enough to keep memory flat. */
const UPLOADS_IN_FLIGHT = 4;
const SEAL_OVERHEAD = CHUNK_SEAL_OVERHEAD;
/** How often a sender whose room on the relay is full looks whether the receiver took a chunk. */
const POLL_FIRST_MS = 20;
const POLL_MAX_MS = 1000;
/** How long one look for a receiver's live request waits on the relay. */
const REQUEST_WAIT_S = 25;

/** Why a sender is waiting: the relay's, or the receiver's (the drop's room on the relay is full). */
export type SendWait = DropWait | { reason: 'receiver'; seconds: 0 };

/** Options of {@link sendDrop}. */
export interface SendDropOptions {
  /** The file's name; a File's own by default. */
  name?: string;
  /** The file's media type; the Blob's own, or application/octet-stream. */
  type?: string;
  /** Stretched with Argon2id into the key: the link alone no longer opens the drop. */
  password?: string;
  /** Argon2id cost. */
  argon2?: Argon2Params;
  /** Plaintext bytes per chunk; at most the relay's blob limit less 40 (the default). */
  chunkSize?: number;
  /** Called once the link works, before the first chunk is uploaded: show the link now. */
  onReady?: (drop: ReadyDrop) => void;
  /** Called after each chunk is stored, with the plaintext bytes stored so far. */
  onProgress?: (sent: number, total: number) => void;
  /** Called when the upload waits: for the relay (a 429, an outage) or for the receiver to take chunks. */
  onWait?: (wait: SendWait) => void;
  signal?: AbortSignal;
  fetch?: typeof fetch;
  /** How requests go (Node's CLI passes a leaner one than fetch); on `fetch` by default. */
  http?: DropHttp;
  /** The primitives; @noble's by default, Node passes its native suite (the same bytes). */
  cipher?: CipherSuite;
  /**
   * The relay's pipe, to stream chunks to a receiver who asks for them while this sender is online, rather
   * than through the relay's store (Node's CLI passes one; a browser cannot stream a request body).
   */
  pipe?: Pick<DropPipe, 'send'>;
}

/**
 * A file to send that reads its bytes by range, where a Blob would cost more: in Node, a Blob of a file reads
 * 64 KiB at a time and joins the pieces, a file handle reads a chunk at once.
 */
export interface DropSource {
  size: number;
  name?: string;
  type?: string;
  /** Bytes `start` to `end` (exclusive); fewer when the file is shorter by then. */
  read(start: number, end: number): Promise<Uint8Array>;
}

const readRange = async (file: Blob | DropSource, start: number, end: number) =>
  'read' in file ? file.read(start, end) : new Uint8Array(await file.slice(start, end).arrayBuffer());

/** A drop whose link works: what the sender shows and keeps. */
export interface ReadyDrop extends DropOwner {
  link: string;
  publicKey: string;
  size: number;
  /**
   * The largest drop the relay holds whole for a receiver who is offline (its per-key-pair room). A larger
   * drop needs its sender online until the receiver has taken all but that much.
   */
  offlineLimit: number;
}

/** A drop that was sent: everything of it is on the relay, or already taken by its receiver. */
export type SentDrop = ReadyDrop;

/** Chunks of `sealedSize` bytes that one key pair may hold at once, the claim's uid aside. */
export const roomFor = (limits: { keyQuota: number; maxFields: number }, sealedSize: number) =>
  Math.min(Math.floor(limits.keyQuota / sealedSize), limits.maxFields - 1);

/**
 * Encrypts `file` under a fresh key pair and a random 256-bit key, one sealed chunk per one-to-one field.
 * The record (link check, password parameters, sealed manifest) and the claim are published first, so the
 * link opens while the chunks upload. At most the relay's room for one key pair is uploaded ahead of the
 * receiver; beyond it, the sender waits for the receiver to take chunks. A failure withdraws everything.
 */
export async function sendDrop(
  relay: string,
  file: Blob | DropSource,
  options: SendDropOptions = {},
): Promise<SentDrop> {
  const { signal } = options;
  const t = dropTransport(relay, {
    fetch: options.fetch,
    http: options.http,
    signal,
    onWait: options.onWait,
  });
  const cipher = options.cipher ?? nobleSuite;
  const limits = await t.limits();
  if (limits.blobLimit <= SEAL_OVERHEAD) {
    throw new DropError(
      'unsupported',
      `The relay at ${t.relay} does not take file chunks (DEADROP_BLOB_LIMIT).`,
    );
  }
  const chunkSize = Math.min(options.chunkSize ?? DROP_CHUNK_SIZE, limits.blobLimit - SEAL_OVERHEAD);
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1)
    throw new RangeError('chunkSize must be a positive integer.');
  const fits = roomFor(limits, chunkSize + SEAL_OVERHEAD);
  // The live lane's key takes the place of a chunk; a relay with room for one chunk only goes without it.
  const pipe = fits > 1 ? options.pipe : undefined;
  const room = fits - (pipe ? 1 : 0);
  if (room < 1) {
    throw new DropError('unsupported', `The relay at ${t.relay} holds no file chunks (DEADROP_KEY_QUOTA).`);
  }
  const size = file.size;
  const chunks = chunkCount(size, chunkSize);
  const pair = await t.keys();
  const lane = pipe ? await t.keys() : undefined;
  const linkSecret = cipher.randomBytes(32);
  const { record, key } = await createRecord(
    linkSecret,
    pair.public,
    cipher,
    options.password,
    options.argon2,
  );
  const manifest: SealedManifestValue = {
    v: 2,
    name: options.name ?? (file as { name?: string }).name ?? 'file',
    size,
    type: options.type ?? (file.type || 'application/octet-stream'),
    chunks,
    chunkSize,
  };
  const drop: ReadyDrop = {
    relay: t.relay,
    privateKey: pair.private,
    chunks,
    link: formatDropLink(t.relay, pair.public, linkSecret),
    publicKey: pair.public,
    size,
    offlineLimit: room * chunkSize,
  };

  let started = 0;
  try {
    await t.publishRecord(pair.private, withManifest(record, key, pair.public, manifest, cipher));
    await t.putClaim(
      pair.private,
      sealRecord(key, pair.public, 'claim', { v: 2, key: pair.private }, cipher),
    );
    if (lane) {
      // Read by whoever claimed the drop (with the key the claim gives), never by its claim alone.
      await t.putValue(
        pair.private,
        LIVE_UID,
        sealRecord(key, pair.public, 'live', { v: 2, key: lane.private }, cipher),
      );
    }
    options.onReady?.(drop);
    const live = lane && pipe ? { pipe, publicKey: lane.public } : undefined;
    await uploadChunks(t, drop, { file, key, room, record, manifest, cipher, options, live }, (count) => {
      started = count;
    });
  } catch (error) {
    await revokeQuietly(t, pair.private, started);
    throw error;
  }
  return drop;
}

/** Withdraws what a failed upload wrote, with requests no abort can cut short. */
async function revokeQuietly(t: DropTransport, privateKey: string, chunks: number) {
  await revokeDrop({ relay: t.relay, privateKey, chunks }, { http: t.http }).catch(() => {});
}

interface Upload {
  file: Blob | DropSource;
  key: Uint8Array;
  room: number;
  record: DropRecord;
  manifest: SealedManifestValue;
  cipher: CipherSuite;
  options: SendDropOptions;
  /** The live lane: the pipe, and the lane's public key the receiver's requests arrive at. */
  live: { pipe: Pick<DropPipe, 'send'>; publicKey: string } | undefined;
}

/** The receiver's live requests, taken from the lane as they come; the latest one wins. */
function listenForRequests(
  t: DropTransport,
  lanePublicKey: string,
  open: (value: unknown) => LiveRequest | undefined,
  signal: AbortSignal | undefined,
) {
  const stop = new AbortController();
  const lane = dropTransport(t.relay, {
    http: t.http,
    signal: signal ? AbortSignal.any([signal, stop.signal]) : stop.signal,
  });
  let pending: LiveRequest | undefined;
  let wake: (() => void) | undefined;
  void (async () => {
    while (!stop.signal.aborted && !signal?.aborted) {
      try {
        const request = open(await lane.takeValue(lanePublicKey, LIVE_REQUEST_UID, REQUEST_WAIT_S));
        if (request) {
          pending = request;
          wake?.();
        }
      } catch {
        // The relay away or slow: the upload's own requests say so; this one looks again a little later.
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  })();
  return {
    has: () => pending !== undefined,
    take() {
      const request = pending;
      pending = undefined;
      return request;
    },
    /** Resolves when a request comes, or after `ms`. */
    wait: (ms: number) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          wake = undefined;
          resolve();
        }
        wake = done;
      }),
    stop: () => stop.abort(),
  };
}

/**
 * Uploads the chunks to the relay's store, at most its room ahead of the receiver. With a live lane, a request
 * from the receiver turns the upload into a stream: nothing more is stored, and the chunks after what is stored
 * (or after where the receiver stands) go through the pipe. A stream that breaks leaves the sender waiting for
 * the next request, until the receiver has all of it.
 */
async function uploadChunks(
  t: DropTransport,
  drop: ReadyDrop,
  { file, key, room, record, manifest, cipher, options, live }: Upload,
  onStarted: (count: number) => void,
) {
  const { size, chunks } = drop;
  const { chunkSize } = manifest;
  const hash = cipher.sha256();
  /** Chunks before this one went into the hash; a chunk sent again is not hashed again. */
  let hashed = 0;
  /** The manifest with the file's SHA-256, once the last chunk was read; published before the last chunk goes. */
  let whole: SealedManifestValue | undefined;
  let published = false;
  const window = createWindow(UPLOADS_IN_FLIGHT);
  const uploads = new Map<number, Promise<void>>();
  /** Chunks before this one are known to be taken by the receiver. */
  let taken = 0;
  /** The next chunk to store; from the first request on, nothing more is stored. */
  let next = 0;
  let streaming = false;
  /** The chunks before this one are stored (once streaming); a stream starts here at the earliest. */
  let storeEnd = 0;
  let reported = 0;
  const progress = (through: number) => {
    if (through <= reported) return;
    reported = through;
    options.onProgress?.(through, size);
  };
  let requests = live
    ? listenForRequests(
        t,
        live.publicKey,
        (value) => {
          try {
            return parseLiveRequest(openRecord(key, drop.publicKey, 'live-request', value, cipher), chunks);
          } catch {
            return undefined; // not sealed with this drop's key: not the receiver's
          }
        },
        options.signal,
      )
    : undefined;

  /** Chunk `index` read, checked and hashed (the first time), with its place in the drop, to be sealed. */
  const produce = async (index: number) => {
    const start = index * chunkSize;
    const plain = await readRange(file, start, Math.min(size, start + chunkSize));
    if (plain.length !== chunkLength(manifest, index)) {
      throw new DropError('file_changed', 'The file changed while it was being sent; send it again.');
    }
    if (index === hashed) {
      hash.update(plain);
      hashed++;
    }
    const final = index === chunks - 1;
    if (final && !published) {
      // The receiver reads the file's SHA-256 once it has the last chunk, so it is published before it. A drop
      // revoked meanwhile (`drop revoke`, or a fetch that broke while this chunk was read ahead) is not brought
      // back by it: the record is looked at first. (The relay has no conditional write; this leaves a window
      // of one round trip, not of the whole last read.)
      await fetchedOrGone();
      whole ??= { ...manifest, sha256: bytesToHex(hash.digest()) };
      await t.publishRecord(drop.privateKey, withManifest(record, key, drop.publicKey, whole, cipher));
      published = true;
    }
    return { plain, place: { publicKey: drop.publicKey, index, final } };
  };

  /** Throws when the drop was revoked or expired; true when its receiver had all of it. */
  const gone = () =>
    new DropError(
      'gone',
      'The drop was revoked or expired while it was being sent; the rest of it was not uploaded.',
    );
  const fetchedOrGone = async (): Promise<boolean> => {
    const stored = await t.readRecord(drop.publicKey);
    if (stored === undefined) throw gone();
    return (stored as { fetched?: unknown }).fetched !== undefined;
  };

  /** Waits until the receiver took chunk `taken` (or asks for a stream), looking less often the longer it waits. */
  const waitForReceiver = async () => {
    let pause = POLL_FIRST_MS;
    let told = false;
    for (;;) {
      await uploads.get(taken)?.catch(() => {});
      if (requests?.has()) return;
      if ((await t.fieldTtl(drop.privateKey, chunkUid(taken))) === 0) {
        // A chunk is gone when the receiver took it, but also when the drop was revoked or expired: once per
        // room's worth of chunks the record tells which, so no upload goes on into a dead drop.
        if (taken % room === 0) await fetchedOrGone();
        taken++;
        return;
      }
      if (!told) options.onWait?.({ reason: 'receiver', seconds: 0 });
      told = true;
      await (requests ? requests.wait(pause) : new Promise((resolve) => setTimeout(resolve, pause)));
      options.signal?.throwIfAborted();
      pause = Math.min(POLL_MAX_MS, pause * 1.5);
    }
  };

  /** The chunk a stream reads ahead of the one it sends, sealed in pieces. */
  let ahead: Promise<Uint8Array[]> | undefined;
  const produceParts = async (index: number) => {
    const { plain, place } = await produce(index);
    return sealChunkParts(key, place, plain, cipher);
  };
  /** Streams the relay refused at once, in a row: its pipe does not work (none there, or a proxy that buffers). */
  let refused = 0;

  /**
   * The lane is given up (the relay's pipe does not work, at either end): the chunks from `from` on go through
   * the store, and the receiver, which finds the lane's key gone, waits for them there.
   */
  const backToStore = async (from: number) => {
    requests?.stop();
    requests = undefined;
    await t.deleteField(drop.privateKey, LIVE_UID).catch(() => {});
    if (streaming) {
      streaming = false;
      next = Math.max(storeEnd, from);
      taken = Math.max(taken, Math.min(from, storeEnd));
    }
  };

  /**
   * Streams the chunks the receiver needs and the store does not hold through the pipe, until they are all
   * through or the stream breaks.
   */
  const stream = async (request: LiveRequest, pipe: Pick<DropPipe, 'send'>, laneKey: string) => {
    const { from, id, lost } = request;
    // A chunk a broken stream was still reading ahead is hashed before this stream reads any.
    await ahead?.catch(() => {});
    if (request.store) {
      await backToStore(from);
      return;
    }
    // From the first request on nothing more is stored: what is stored is there before the stream answers.
    await window.finish();
    // All of it stored already: the receiver reads it from the store, and this sender is done.
    if (!streaming && next >= chunks && !lost) return;
    if (!streaming) {
      storeEnd = next;
      next = chunks;
      streaming = true;
    }
    // A receiver that lost stored chunks it had taken (a power cut) gets them from the stream too.
    const start = lost ? from : Math.max(from, storeEnd);
    // A request beyond what was ever read is not an honest receiver's; it is left unanswered.
    if (start > hashed || start >= chunks) return;
    let failure: { error: unknown } | undefined;
    async function* body() {
      yield liveHead(id, start);
      ahead = produceParts(start);
      for (let index = start; index < chunks; index++) {
        let sealed: Uint8Array[];
        try {
          sealed = await (ahead as Promise<Uint8Array[]>);
        } catch (error) {
          failure = { error };
          throw error;
        }
        // The next chunk is read from the file and sealed while this one goes out. (A chunk read twice, by a
        // stream that broke and the next one, is hashed once: `hashed` is checked and moved in one step.)
        ahead = index + 1 < chunks ? produceParts(index + 1) : undefined;
        ahead?.catch(() => {}); // awaited in its turn, or by the next stream
        // A stream cut while this waits throws here (Readable.from throws its error into the generator).
        for (const part of sealed) yield part;
        progress(Math.min(size, (index + 1) * chunkSize));
      }
    }
    try {
      // With its length the stream goes as it is, not in HTTP chunks: a chunk header less per buffer, at each hop.
      let length = LIVE_HEAD_BYTES;
      for (let index = start; index < chunks; index++) length += chunkLength(manifest, index) + SEAL_OVERHEAD;
      await pipe.send(laneKey, body(), length, options.signal);
      refused = 0;
    } catch (error) {
      if (failure) throw failure.error; // the file, not the stream
      options.signal?.throwIfAborted();
      // A refusal is an answer of the relay's (404, 405, 429…); the receiver not coming is not one (408, a cut).
      const status = error instanceof DeadropError ? error.status : 0;
      refused = status >= 400 && status !== 408 ? refused + 1 : 0;
      if (refused >= PIPE_REFUSALS) await backToStore(from);
    }
  };

  /** How long a sender that streamed waits for the next request before it looks whether the drop is fetched. */
  let pause = POLL_FIRST_MS;
  try {
    for (;;) {
      const request = requests?.take();
      if (request && live) {
        await stream(request, live.pipe, live.publicKey);
        pause = POLL_FIRST_MS;
        continue;
      }
      if (streaming && requests) {
        // Once streaming, the sender stays until the receiver has it all: a stream that broke, or whose tail the
        // receiver lost, is asked for again from where the receiver stands.
        if (await fetchedOrGone()) break;
        // A revoke deletes the lane's key too, so a record a last publish brought back across a revoke is not
        // mistaken for the drop. (The receiver deletes the key only once the record says fetched.)
        if ((await t.fieldTtl(drop.privateKey, LIVE_UID)) === 0) {
          if (await fetchedOrGone()) break;
          throw gone();
        }
        if (pause >= POLL_MAX_MS) options.onWait?.({ reason: 'receiver', seconds: 0 });
        await requests.wait(pause);
        options.signal?.throwIfAborted();
        pause = Math.min(POLL_MAX_MS * 2, pause * 2);
        continue;
      }
      if (next >= chunks) break;
      if (next - taken >= room) {
        await waitForReceiver();
        continue;
      }
      const index = next++;
      const { plain, place } = await produce(index);
      const sealed = sealChunk(key, place, plain, cipher);
      const length = chunkLength(manifest, index);
      onStarted(index + 1);
      const upload = t.putChunk(drop.privateKey, index, sealed).then(() => {
        uploads.delete(index);
        progress(Math.min(size, reported + length));
      });
      uploads.set(index, upload);
      await window.add(upload);
    }
    await window.finish();
  } finally {
    requests?.stop();
  }
  // Now a receiver that misses a chunk knows it will not come, rather than wait for it. Only that: the drop is
  // whole (a receiver may even have it already), so failing here must not withdraw it.
  await t.markUploaded(drop.privateKey).catch(() => {});
}
