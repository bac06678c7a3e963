// Fetching a drop: the link and the password are proven on the drop's record (nothing burns), then one claim
// is taken, and each chunk is read, verified, saved by the caller and only then deleted, so a fetch resumes.
import { bytesToHex, concatBytes } from '@noble/hashes/utils.js';
import {
  CHUNK_SEAL_OVERHEAD,
  openChunk,
  openChunkParts,
  openRecord,
  sealRecord,
} from '../e2e/drop-chunks.js';
import { nobleSuite } from '../e2e/noble-suite.js';
import type { CipherSuite } from '../e2e/suite.js';
import { DeadropError } from '../index.js';
import {
  chunkLength,
  chunkUid,
  createWindow,
  DropError,
  type DropManifest,
  parseDropLink,
  UPLOADED_UID,
} from './common.js';
import {
  byteReader,
  type DropPipe,
  LIVE_HEAD_BYTES,
  LIVE_ID_BYTES,
  LIVE_REQUEST_UID,
  LIVE_UID,
  liveRequestValue,
  PIPE_REFUSALS,
  readLiveHead,
} from './live.js';
import { checkRecord, type DropRecord, openManifestOf, unlockRecord } from './record.js';
import { type DropHttp, type DropTransport, type DropWait, dropTransport } from './transport.js';

/** Chunks read ahead of the one being saved. */
const READS_AHEAD = 4;
/** A read of a chunk the sender has not uploaded yet waits this long on the relay before it asks again. */
const CHUNK_WAIT_S = 25;
/** Chunks an interrupted fetch may have saved without deleting them yet (its deletes run this far behind). */
const DELETES_IN_FLIGHT = 8;
/** How long a fetch waits for a sender who stopped uploading before it gives up (what it has is kept). */
const DEFAULT_SENDER_TIMEOUT_S = 600;
const PRIVATE_KEY_PATTERN = /^[A-Za-z0-9_-]{32}$/;

/** Options of {@link openDrop}. */
export interface OpenDropOptions {
  /** The drop's password, when it has one. */
  password?: string | undefined;
  signal?: AbortSignal | undefined;
  fetch?: typeof fetch;
  /** How requests go (Node's CLI passes a leaner one than fetch); on `fetch` by default. */
  http?: DropHttp;
  /** The primitives; @noble's by default, Node passes its native suite (the same bytes). */
  cipher?: CipherSuite;
  /**
   * The relay's pipe: with it, the chunks a sender who is online has not stored are asked of it and stream
   * through the pipe, rather than waiting for room in the relay's store (Node's CLI passes one).
   */
  pipe?: Pick<DropPipe, 'receive'>;
}

/** What an earlier, interrupted fetch of this drop kept. */
export interface KeptFetch {
  /** The key its claim gave. */
  privateKey: string;
  /** The chunks it saved, from the first on. */
  chunks: number;
  /** Their bytes in order, for the whole file's SHA-256. */
  bytes(): AsyncIterable<Uint8Array>;
}

/** Where a fetch keeps what it verified, so that it survives an interruption. */
export interface DropSink {
  /** What an earlier fetch of this drop kept; undefined for a first fetch. */
  resume?(): Promise<KeptFetch | undefined>;
  /** Keeps the claimed key; called before any chunk is read. */
  claimed(privateKey: string): Promise<void>;
  /** Saves chunk `index` (verified, in order); once this resolves, the chunk is deleted from the relay. */
  write(index: number, plain: Uint8Array): Promise<void>;
  /** `write`, with the chunk in the pieces a stream gave, for a sink that saves them without joining them. */
  writeParts?(index: number, parts: readonly Uint8Array[]): Promise<void>;
  /**
   * The whole file verified: put it where it belongs. Called before the drop is marked fetched on the relay, so
   * a failure here leaves the drop resumable rather than burned with the file out of reach.
   */
  complete?(): Promise<void>;
}

/** Why a fetch is waiting: for the relay (a 429, an outage) or for a sender still uploading. */
export type FetchWait = DropWait | { reason: 'sender'; seconds: 0 };

/** Options of {@link OpenedDrop.fetchInto}. */
export interface FetchDropOptions {
  /** Called after each chunk is saved, with the bytes saved so far (kept ones included). */
  onProgress?: (received: number, total: number) => void;
  onWait?: (wait: FetchWait) => void;
  signal?: AbortSignal | undefined;
  /** Seconds without a new chunk from a sender still uploading before the fetch gives up; 600 by default. */
  senderTimeoutSeconds?: number;
}

/** A drop whose link and password were proven; nothing of it was consumed yet. */
export interface OpenedDrop extends DropManifest {
  relay: string;
  publicKey: string;
  /**
   * Claims the drop (or resumes the claim `sink` kept), then reads every chunk not kept yet, verifies it,
   * hands it to `sink` and deletes it from the relay; ends with the whole file's SHA-256 check, then marks the
   * drop fetched. A DropError says why the fetch cannot complete; after any other failure it can resume.
   */
  fetchInto(sink: DropSink, options?: FetchDropOptions): Promise<{ sha256: string }>;
}

/** The drop's record, or the DropError that says why there is none to open. */
async function readOpenableRecord(t: DropTransport, publicKey: string): Promise<DropRecord> {
  let stored: unknown;
  try {
    stored = await t.readRecord(publicKey);
  } catch (error) {
    if (error instanceof DeadropError && (error.status === 401 || error.status === 400)) {
      throw new DropError(
        'bad_link',
        "This link's key is not one the relay issued: a character of it is wrong, or it is for another relay. Nothing was fetched.",
      );
    }
    throw error;
  }
  if (stored === undefined) {
    throw new DropError(
      'gone',
      'There is no drop at this link: it was fetched, revoked or expired (or the link is for another relay).',
    );
  }
  const record = checkRecord(stored);
  if (record.fetched !== undefined) {
    throw new DropError(
      'gone',
      `This drop was already fetched, at ${new Date(record.fetched).toISOString()}: it opens once. If that was not you, someone else had the link.`,
    );
  }
  return record;
}

/** Whether the drop behind `link` needs a password; reads nothing that a fetch would burn. */
export async function dropNeedsPassword(
  link: string,
  options: Pick<OpenDropOptions, 'fetch' | 'http' | 'signal'> = {},
): Promise<boolean> {
  const { relay, publicKey } = parseDropLink(link);
  const record = await readOpenableRecord(dropTransport(relay, options), publicKey);
  return record.password !== undefined;
}

/**
 * Opens the drop behind `link`: proves the link and the password on the drop's record and opens its
 * manifest. Nothing is consumed, so a mistyped link or a wrong password burns nothing.
 */
export async function openDrop(link: string, options: OpenDropOptions = {}): Promise<OpenedDrop> {
  const { relay, publicKey, key: linkSecret } = parseDropLink(link);
  const cipher = options.cipher ?? nobleSuite;
  const t = dropTransport(relay, options);
  const record = await readOpenableRecord(t, publicKey);
  const { key, manifest } = await unlockRecord(record, linkSecret, publicKey, options.password, cipher);
  const { name, size, type, chunks, chunkSize } = manifest;
  const opened: DropManifest = { name, size, type, chunks, chunkSize };
  return {
    ...opened,
    relay: t.relay,
    publicKey,
    fetchInto: (sink, fetchOptions = {}) =>
      fetchChunks(
        {
          relay,
          publicKey,
          key,
          manifest: opened,
          cipher,
          fetch: options.fetch,
          http: options.http,
          pipe: options.pipe,
        },
        sink,
        fetchOptions,
      ),
  };
}

interface FetchPlan {
  relay: string;
  publicKey: string;
  key: Uint8Array;
  manifest: DropManifest;
  cipher: CipherSuite;
  fetch?: typeof fetch | undefined;
  http?: DropHttp | undefined;
  pipe?: Pick<DropPipe, 'receive'> | undefined;
}

/** The sender's stream: its chunks from `start` on; `reading` once this fetch read from it. */
interface LiveStream {
  reader: ReturnType<typeof byteReader>;
  start: number;
  reading?: boolean;
}

async function fetchChunks(plan: FetchPlan, sink: DropSink, options: FetchDropOptions) {
  const { publicKey, key, manifest, cipher } = plan;
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  const t = dropTransport(plan.relay, { fetch: plan.fetch, http: plan.http, signal, onWait: options.onWait });
  const senderTimeoutMs = (options.senderTimeoutSeconds ?? DEFAULT_SENDER_TIMEOUT_S) * 1000;
  try {
    const kept = await sink.resume?.();
    const privateKey = kept ? kept.privateKey : await claim(t, plan, sink);
    const from = kept ? Math.min(kept.chunks, manifest.chunks) : 0;
    const hash = cipher.sha256();
    let received = 0;
    if (kept) {
      for await (const bytes of kept.bytes()) {
        hash.update(bytes);
        received += bytes.length;
      }
    }
    const deletes = createWindow(DELETES_IN_FLIGHT);
    // An interrupted fetch saved these, but may have stopped before it deleted them.
    for (let index = Math.max(0, from - DELETES_IN_FLIGHT - READS_AHEAD); index < from; index++) {
      await deletes.add(t.deleteField(privateKey, chunkUid(index)));
    }

    let lastChunkAt = Date.now();
    const stalled = (index: number) =>
      new DropError(
        'stalled',
        `The sender has not uploaded part ${index + 1} of ${manifest.chunks} for ${Math.round(senderTimeoutMs / 1000)} s: it may have stopped. What was fetched is kept; run the same fetch again to resume once the sender is back.`,
      );

    /** The live lane's private key, when the sender offers one and this fetch can use it. */
    let lane: Promise<string | undefined> | undefined;
    /** The lane was given up, by the sender or by this fetch: the rest comes through the store. */
    let laneGone = false;
    const laneKey = async () => {
      lane ??= plan.pipe ? readLaneKey(t, plan, privateKey) : Promise.resolve(undefined);
      return laneGone ? undefined : lane;
    };

    /**
     * Chunk `index` as the relay holds it, waiting for a sender that is still uploading; undefined when it is
     * not stored and the sender offers to stream it.
     */
    const readChunk = async (index: number): Promise<Uint8Array | undefined> => {
      // The first look does not wait: a chunk that is not there may be one that can never come.
      for (let wait = 0; ; wait = CHUNK_WAIT_S) {
        const sealed = await t.peekChunk(privateKey, index, wait);
        if (sealed) {
          lastChunkAt = Date.now();
          return sealed;
        }
        await senderStillUploading(t, plan, privateKey, index);
        if (await laneKey()) return undefined;
        if (wait > 0 && Date.now() - lastChunkAt > senderTimeoutMs) throw stalled(index);
        if (wait > 0) options.onWait?.({ reason: 'sender', seconds: 0 });
      }
    };

    /** The chunk this fetch needs next. */
    let position = from;

    /**
     * Asks the sender for the chunks this fetch does not have, until its stream begins: the chunks from `start`
     * on (those before it are in the store). Asked again while nobody answers, from where the fetch then stands.
     */
    const askSender = async (key: string, lost: boolean): Promise<LiveStream | undefined> => {
      const pipe = plan.pipe as Pick<DropPipe, 'receive'>;
      /** Answers the relay refused at once, in a row (its pipe does not work: none there, a buffering proxy). */
      let refused = 0;
      const request = (id: Uint8Array, store = false) =>
        sealRecord(
          plan.key,
          publicKey,
          'live-request',
          liveRequestValue({ from: position, id, lost, store }),
          cipher,
        );
      for (;;) {
        const id = cipher.randomBytes(LIVE_ID_BYTES);
        // An earlier request nobody took (this fetch's, or an interrupted one's) makes way for this one.
        await t.deleteField(key, LIVE_REQUEST_UID);
        await t.putValue(key, LIVE_REQUEST_UID, request(id));
        // A stream for an older request may come first; the sender answers this one next.
        for (let attempt = 0; attempt < 3; attempt++) {
          const began = Date.now();
          let reader: ReturnType<typeof byteReader>;
          try {
            reader = byteReader(await pipe.receive(key, signal));
          } catch (error) {
            if (signal.aborted) throw error;
            // Nobody came within the pipe's wait (408), or the relay refused at once: then not asked again at once.
            const status = error instanceof DeadropError ? error.status : 0;
            refused = status >= 400 && status !== 408 ? refused + 1 : 0;
            if (refused >= PIPE_REFUSALS) {
              // The sender is told to store the rest, and this fetch waits for it there.
              await t.deleteField(key, LIVE_REQUEST_UID);
              await t.putValue(key, LIVE_REQUEST_UID, request(cipher.randomBytes(LIVE_ID_BYTES), true));
              laneGone = true;
              return undefined;
            }
            if (Date.now() - began < 1000) await new Promise((resolve) => setTimeout(resolve, 1000));
            break;
          }
          refused = 0;
          const head = readLiveHead(await reader.read(LIVE_HEAD_BYTES).catch(() => undefined), id);
          if (head) return { reader, start: head.start };
          await reader.close().catch(() => {});
        }
        // A sender that gave the lane up (its side of the pipe refused) took its key away: the store it is.
        if ((await readLaneKey(t, plan, privateKey)) === undefined) {
          laneGone = true;
          return undefined;
        }
        await senderStillUploading(t, plan, privateKey, position);
        if (Date.now() - lastChunkAt > senderTimeoutMs) throw stalled(position);
        options.onWait?.({ reason: 'sender', seconds: 0 });
      }
    };

    /** The sender's answer, asked for in the background while stored chunks are read. */
    let asking: Promise<LiveStream | undefined> | undefined;
    const ask = (key: string, lost = false) => {
      asking = askSender(key, lost);
      asking.catch(() => {}); // awaited when the store runs out
    };
    // A sender still online streams what it has not stored: asked at once, so that it stores no more.
    const laneAtStart = await laneKey();
    if (laneAtStart && from < manifest.chunks && (await t.fieldTtl(privateKey, UPLOADED_UID)) === 0) {
      // A first chunk that is not stored (not yet, or taken then lost) comes from the stream, with all after it.
      ask(laneAtStart, (await t.fieldTtl(privateKey, chunkUid(from))) === 0);
    }

    let saving: Promise<void> = Promise.resolve();
    const reading = new Map<number, Promise<Uint8Array | undefined>>();
    let live: LiveStream | undefined;
    let next = from;
    for (let index = from; index < manifest.chunks; index++) {
      position = index;
      const final = index === manifest.chunks - 1;
      const sealedLength = chunkLength(manifest, index) + CHUNK_SEAL_OVERHEAD;
      /** Whole from the store; in the pieces it came in from a stream. */
      let sealed: Uint8Array | Uint8Array[] | undefined;
      let streamed = false;
      while (sealed === undefined) {
        if (live && index >= live.start) {
          // The stream starts where this fetch stands (the chunks before it come from the store), never after.
          if (index === live.start || live.reading) {
            live.reading = true;
            sealed = await live.reader.readParts(sealedLength).catch(() => undefined);
          }
          if (sealed) {
            streamed = true;
            lastChunkAt = Date.now();
            break;
          }
          // The stream broke, or is not the one asked for: the sender is asked again from here.
          await live.reader.close().catch(() => {});
          live = undefined;
          next = index;
          const key = await laneKey();
          if (key) ask(key);
          continue;
        }
        const storeEnd = live?.start ?? manifest.chunks;
        while (next < storeEnd && next < index + READS_AHEAD) {
          const read = readChunk(next);
          read.catch(() => {}); // awaited in its turn; a failed fetch never awaits the rest
          reading.set(next++, read);
        }
        sealed = await (reading.get(index) ?? readChunk(index));
        reading.delete(index);
        if (sealed) break;
        if (live) {
          // A look read ahead before the sender answered may have come before the chunk: one more look.
          sealed = await t.peekChunk(privateKey, index, 0);
          if (sealed) break;
          // Stored chunks before the stream's start: this one was taken from the store, then not kept (a power
          // cut). The sender sends it again, with all after it.
          await live.reader.close().catch(() => {});
          live = undefined;
          const key = await laneKey();
          if (key) ask(key, true);
        }
        if (!asking) {
          const key = await laneKey();
          if (key) ask(key);
        }
        live = await asking;
        asking = undefined;
        // What was read ahead before the sender answered may have missed chunks it stored meanwhile.
        reading.clear();
        next = index;
      }
      let plain: Uint8Array[];
      try {
        const place = { publicKey, index, final };
        plain =
          sealed instanceof Uint8Array
            ? [openChunk(key, place, sealed, cipher)]
            : openChunkParts(key, place, sealed, cipher);
      } catch {
        throw new DropError(
          'tampered',
          `Chunk ${index + 1} of ${manifest.chunks} does not open: it was altered, moved or cut short.`,
        );
      }
      const length = plain.reduce((sum, part) => sum + part.length, 0);
      if (length !== chunkLength(manifest, index)) {
        throw new DropError('tampered', `Chunk ${index + 1} of ${manifest.chunks} has the wrong length.`);
      }
      for (const part of plain) hash.update(part);
      // One chunk is saved while the next is read and verified; chunks are saved in order, one at a time.
      await saving;
      saving = (async () => {
        if (sink.writeParts) await sink.writeParts(index, plain);
        else await sink.write(index, plain.length === 1 ? (plain[0] as Uint8Array) : concatBytes(...plain));
        received += length;
        options.onProgress?.(received, manifest.size);
        if (!streamed) await deletes.add(t.deleteField(privateKey, chunkUid(index)));
      })();
      saving.catch(() => {}); // awaited before the next chunk is saved, and after the last
    }
    await saving;
    await live?.reader.close().catch(() => {});

    const sha256 = bytesToHex(hash.digest());
    const record = await currentRecord(t, plan, manifest.chunks - 1);
    if (openManifestOf(record, key, publicKey, cipher).sha256 !== sha256) {
      throw new DropError('tampered', "The file's SHA-256 does not match its manifest.", false);
    }
    await deletes.finish();
    await sink.complete?.();
    // Burned: a later fetch with the link learns when the drop was fetched. The file is in place already, so
    // a relay that fails now costs the record, not the file.
    await t.publishRecord(privateKey, { v: 2, link: record.link, fetched: Date.now() }).catch(() => {});
    await t.deleteField(privateKey, UPLOADED_UID).catch(() => {});
    // The lane's key and a request nobody took are of no use any more.
    if (lane) {
      const key = await lane;
      await t.deleteField(privateKey, LIVE_UID).catch(() => {});
      if (key) await t.deleteField(key, LIVE_REQUEST_UID).catch(() => {});
    }
    return { sha256 };
  } finally {
    stop.abort();
  }
}

/** Takes the drop's claim and keeps its key in `sink`; a DropError `gone` when another fetch took it first. */
async function claim(t: DropTransport, plan: FetchPlan, sink: DropSink): Promise<string> {
  const sealed = await t.takeClaim(plan.publicKey);
  if (sealed === undefined) {
    await readOpenableRecord(t, plan.publicKey); // fetched, revoked or expired say so themselves
    throw new DropError(
      'gone',
      'Someone else began fetching this drop first, so it no longer opens for you: a drop opens once. If that was not you on another device, someone else had the link.',
    );
  }
  let privateKey: unknown;
  try {
    privateKey = (openRecord(plan.key, plan.publicKey, 'claim', sealed, plan.cipher) as { key?: unknown })
      .key;
  } catch {}
  if (typeof privateKey !== 'string' || !PRIVATE_KEY_PATTERN.test(privateKey)) {
    throw new DropError('tampered', 'The claim of this drop does not open: it was tampered with.');
  }
  await sink.claimed(privateKey);
  return privateKey;
}

/** The drop's record while it is being fetched; a DropError `gone` when it was revoked or expired meanwhile. */
async function currentRecord(t: DropTransport, plan: FetchPlan, index: number): Promise<DropRecord> {
  const stored = await t.readRecord(plan.publicKey);
  const record = stored === undefined ? undefined : checkRecord(stored);
  if (!record?.manifest) {
    throw new DropError(
      'gone',
      `The drop was revoked or expired while it was being fetched, at part ${index + 1} of ${plan.manifest.chunks}.`,
    );
  }
  return record;
}

/** Throws when chunk `index` can never come: the drop was revoked or expired, or its sender had uploaded it. */
async function senderStillUploading(
  t: DropTransport,
  plan: FetchPlan,
  privateKey: string,
  index: number,
): Promise<void> {
  await currentRecord(t, plan, index);
  // The marker comes after every chunk is stored: the chunk may have arrived while the marker was being read.
  if (
    (await t.fieldTtl(privateKey, UPLOADED_UID)) > 0 &&
    (await t.peekChunk(privateKey, index, 0)) === undefined
  ) {
    throw new DropError(
      'missing',
      `Part ${index + 1} of ${plan.manifest.chunks} is no longer on the relay (it expired, or was deleted): this fetch cannot complete.`,
    );
  }
}

/** The sender's live lane key, read with the claimed key; undefined when the sender offers none. */
async function readLaneKey(
  t: DropTransport,
  plan: FetchPlan,
  privateKey: string,
): Promise<string | undefined> {
  const sealed = await t.peekValue(privateKey, LIVE_UID);
  if (sealed === undefined) return undefined;
  let key: unknown;
  try {
    key = (openRecord(plan.key, plan.publicKey, 'live', sealed, plan.cipher) as { key?: unknown }).key;
  } catch {}
  // A lane that does not open is not the sender's: the chunks are waited for in the store.
  return typeof key === 'string' && PRIVATE_KEY_PATTERN.test(key) ? key : undefined;
}
