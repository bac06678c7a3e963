// Sending a drop: the link works before the first chunk is uploaded, and a drop larger than the relay holds
// for one key pair streams through that room while the receiver takes chunks out of it.
import { bytesToHex } from '@noble/hashes/utils.js';
import { DROP_CHUNK_SIZE, sealChunk, sealRecord } from '../e2e/drop-chunks.js';
import { nobleSuite } from '../e2e/noble-suite.js';
import type { CipherSuite } from '../e2e/suite.js';
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
import { createRecord, type DropRecord, type SealedManifestValue, withManifest } from './record.js';
import { type DropHttp, type DropTransport, type DropWait, dropTransport } from './transport.js';

/** Chunk uploads in flight at once: enough to hide a round trip, few enough to keep memory flat. */
const UPLOADS_IN_FLIGHT = 4;
const SEAL_OVERHEAD = 40;
/** How often a sender whose room on the relay is full looks whether the receiver took a chunk. */
const POLL_FIRST_MS = 20;
const POLL_MAX_MS = 1000;

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
  const room = roomFor(limits, chunkSize + SEAL_OVERHEAD);
  if (room < 1) {
    throw new DropError('unsupported', `The relay at ${t.relay} holds no file chunks (DEADROP_KEY_QUOTA).`);
  }
  const size = file.size;
  const chunks = chunkCount(size, chunkSize);
  const pair = await t.keys();
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
    options.onReady?.(drop);
    await uploadChunks(t, drop, { file, key, room, record, manifest, cipher, options }, (count) => {
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
}

async function uploadChunks(
  t: DropTransport,
  drop: ReadyDrop,
  { file, key, room, record, manifest, cipher, options }: Upload,
  onStarted: (count: number) => void,
) {
  const { size, chunks } = drop;
  const { chunkSize } = manifest;
  const hash = cipher.sha256();
  const window = createWindow(UPLOADS_IN_FLIGHT);
  const uploads = new Map<number, Promise<void>>();
  /** Chunks before this one are known to be taken by the receiver. */
  let taken = 0;
  let sent = 0;

  /** Waits until the receiver took chunk `taken`, looking at its TTL less often the longer it waits. */
  const waitForReceiver = async () => {
    let pause = POLL_FIRST_MS;
    let told = false;
    for (;;) {
      await uploads.get(taken)?.catch(() => {});
      if ((await t.fieldTtl(drop.privateKey, chunkUid(taken))) === 0) {
        // A chunk is gone when the receiver took it, but also when the drop was revoked or expired: once per
        // room's worth of chunks the record tells which, so no upload goes on into a dead drop.
        if (taken % room === 0 && (await t.readRecord(drop.publicKey)) === undefined) {
          throw new DropError(
            'gone',
            'The drop was revoked or expired while it was being sent; the rest of it was not uploaded.',
          );
        }
        taken++;
        return;
      }
      if (!told) options.onWait?.({ reason: 'receiver', seconds: 0 });
      told = true;
      await new Promise((resolve) => setTimeout(resolve, pause));
      options.signal?.throwIfAborted();
      pause = Math.min(POLL_MAX_MS, pause * 1.5);
    }
  };

  for (let index = 0; index < chunks; index++) {
    while (index - taken >= room) await waitForReceiver();
    const start = index * chunkSize;
    const plain = await readRange(file, start, Math.min(size, start + chunkSize));
    if (plain.length !== chunkLength(manifest, index)) {
      throw new DropError('file_changed', 'The file changed while it was being sent; send it again.');
    }
    hash.update(plain);
    const final = index === chunks - 1;
    if (final) {
      // The receiver reads the file's SHA-256 once it has the last chunk, so it is published before it.
      const whole = { ...manifest, sha256: bytesToHex(hash.digest()) };
      await t.publishRecord(drop.privateKey, withManifest(record, key, drop.publicKey, whole, cipher));
    }
    const sealed = sealChunk(key, { publicKey: drop.publicKey, index, final }, plain, cipher);
    onStarted(index + 1);
    const upload = t.putChunk(drop.privateKey, index, sealed).then(() => {
      uploads.delete(index);
      sent += plain.length;
      options.onProgress?.(sent, size);
    });
    uploads.set(index, upload);
    await window.add(upload);
  }
  await window.finish();
  // Now a receiver that misses a chunk knows it will not come, rather than wait for it. Only that: the drop is
  // whole (a receiver may even have it already), so failing here must not withdraw it.
  await t.markUploaded(drop.privateKey).catch(() => {});
}
