// Drops: a file sealed in chunks on one-to-one fields, read once; the key travels only in the link's fragment.
import { argon2idAsync } from '@noble/hashes/argon2.js';
import { bytesToHex, concatBytes } from '@noble/hashes/utils.js';
import {
  DROP_BLOB_LIMIT,
  DROP_CHUNK_SIZE,
  deriveDropKeys,
  openChunk,
  openManifest,
  sealChunk,
  sealManifest,
} from './e2e/drop-chunks.js';
import { fromBase64url, toBase64url } from './e2e/encoding.js';
import { nobleSuite } from './e2e/noble-suite.js';
import type { CipherSuite } from './e2e/suite.js';
import { createClient, type DeadropClient, DeadropError } from './index.js';

export { DROP_BLOB_LIMIT, DROP_CHUNK_SIZE };
/** RFC 9106 §4, second recommended option: t=3, p=4, 64 MiB; about a second in JavaScript. */
export const DEFAULT_ARGON2: Argon2Params = { t: 3, m: 65_536, p: 4 };
/** Bounds on the parameters a receiver accepts, so that a forged record cannot make it spend 4 GiB. */
const MAX_ARGON2: Argon2Params = { t: 16, m: 1_048_576, p: 16 };

const MANIFEST_UID = 'm';
const chunkUid = (index: number) => `c${index}`;
/** Chunks in flight at once each way: enough to hide a round trip, few enough to keep memory flat. */
const WINDOW = 4;
const LINK_PATTERN = /^([A-Za-z0-9_-]{32})\.([A-Za-z0-9_-]{43})$/;
const OWNER_PATTERN = /^([A-Za-z0-9_-]{32})\.(\d{1,9})$/;

/** Argon2id cost: `t` passes over `m` KiB in `p` lanes. */
export interface Argon2Params {
  t: number;
  m: number;
  p: number;
}

/** What the receiver learns once the manifest opens. */
export interface DropManifest {
  name: string;
  size: number;
  type: string;
  chunks: number;
  chunkSize: number;
  /** SHA-256 of the whole file, lowercase hex. */
  sha256: string;
}

/** Why a drop could not be sent or fetched; `code` is stable, the message says what to do. */
export type DropErrorCode =
  | 'bad_link'
  | 'password_required'
  | 'wrong_password'
  | 'gone'
  | 'missing'
  | 'tampered'
  | 'file_changed';

/** A drop that cannot be sent or fetched. Relay and network failures are DeadropErrors. */
export class DropError extends Error {
  /**
   * @param code What went wrong.
   * @param message What went wrong, and what to do.
   */
  constructor(
    readonly code: DropErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'DropError';
  }
}

/** The parts of a drop link: the relay, the drop's public key and the 32-byte key. */
export interface DropLink {
  relay: string;
  publicKey: string;
  key: Uint8Array;
}

/** `<relay>/drop#<public key>.<key>`. */
export function formatDropLink(relay: string, publicKey: string, key: Uint8Array): string {
  return `${relay.replace(/\/+$/, '')}/drop#${publicKey}.${toBase64url(key)}`;
}

/** The parts of `<relay>/drop#<public key>.<key>`; anything else is a DropError `bad_link`. */
export function parseDropLink(link: string): DropLink {
  const bad = () =>
    new DropError(
      'bad_link',
      'This is not a drop link; it looks like https://relay.example/drop#<key>.<key>.',
    );
  let url: URL;
  try {
    url = new URL(link.trim());
  } catch {
    throw bad();
  }
  const match = LINK_PATTERN.exec(url.hash.slice(1));
  if (!match || !/\/drop\/?$/.test(url.pathname) || !/^https?:$/.test(url.protocol)) throw bad();
  let key: Uint8Array;
  try {
    key = fromBase64url(match[2] as string);
  } catch {
    throw bad();
  }
  return { relay: url.origin + url.pathname.replace(/\/drop\/?$/, ''), publicKey: match[1] as string, key };
}

/** What the sender keeps to follow and revoke a drop: the private key and the chunk count. */
export interface DropOwner {
  relay: string;
  privateKey: string;
  chunks: number;
}

/** `<private key>.<chunks>`: the owner's token, for {@link dropStatus} and {@link revokeDrop}. */
export const formatOwnerToken = (owner: Pick<DropOwner, 'privateKey' | 'chunks'>) =>
  `${owner.privateKey}.${owner.chunks}`;

/** The owner of a drop from its token and relay; a malformed token is a DropError `bad_link`. */
export function parseOwnerToken(token: string, relay: string): DropOwner {
  const match = OWNER_PATTERN.exec(token.trim());
  if (!match) throw new DropError('bad_link', 'A sender token looks like <private key>.<chunk count>.');
  return { relay: relay.replace(/\/+$/, ''), privateKey: match[1] as string, chunks: Number(match[2]) };
}

/** The password record published at the drop's key: only the Argon2id parameters, a salt and a check. */
interface PasswordRecord {
  v: 1;
  kdf: 'argon2id';
  t: number;
  m: number;
  p: number;
  salt: string;
  check: string;
}

const stretch = (password: string, salt: Uint8Array, params: Argon2Params) =>
  argon2idAsync(password.normalize('NFC'), salt, { t: params.t, m: params.m, p: params.p, dkLen: 32 });

const chunkCount = (size: number, chunkSize: number) => Math.max(1, Math.ceil(size / chunkSize));

/** The plaintext length chunk `index` must have. */
const chunkLength = (manifest: Pick<DropManifest, 'size' | 'chunks' | 'chunkSize'>, index: number) =>
  index < manifest.chunks - 1
    ? manifest.chunkSize
    : manifest.size - manifest.chunkSize * (manifest.chunks - 1);

/** Keeps at most `limit` tasks running; the first failure is thrown by `add` or `finish`. */
function createWindow(limit: number) {
  const running = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  const settle = async () => {
    await Promise.allSettled(running);
  };
  return {
    async add(task: Promise<void>) {
      const tracked = task.then(
        () => {
          running.delete(tracked);
        },
        (error: unknown) => {
          running.delete(tracked);
          failure ??= { error };
        },
      );
      running.add(tracked);
      while (running.size >= limit && !failure) await Promise.race(running);
      if (failure) {
        await settle();
        throw failure.error;
      }
    },
    async finish() {
      await settle();
      if (failure) throw failure.error;
    },
    settle,
  };
}

interface Transport {
  client: DeadropClient;
  fetch: typeof fetch;
  relay: string;
}

function transport(relay: string, fetchImpl: typeof fetch = (...args) => fetch(...args)): Transport {
  const base = relay.replace(/\/+$/, '');
  return { client: createClient(base, { fetch: fetchImpl }), fetch: fetchImpl, relay: base };
}

/** The DeadropError of a relay's error answer. */
async function answerError(res: Response, method: string): Promise<DeadropError> {
  const body: { error?: string; message?: string } = await res.json().catch(() => ({}));
  return new DeadropError(
    res.status,
    body.error || res.statusText,
    method,
    res.url,
    body.message,
    undefined,
    res,
  );
}

async function request(t: Transport, method: string, path: string, init: RequestInit): Promise<Response> {
  const url = t.relay + path;
  try {
    return await t.fetch(url, { ...init, method });
  } catch (error) {
    if (init.signal?.aborted) throw error;
    throw new DeadropError(0, '', method, url, undefined, error);
  }
}

async function putBlob(
  t: Transport,
  privateKey: string,
  uid: string,
  bytes: Uint8Array,
  signal?: AbortSignal,
) {
  const res = await request(t, 'POST', `/private/${privateKey}/${uid}`, {
    body: bytes as BodyInit,
    headers: { 'content-type': 'application/octet-stream' },
    signal,
  });
  if (!res.ok) throw await answerError(res, 'POST');
  await res.body?.cancel();
}

/** Takes a blob (once); undefined when nothing is there. */
async function takeBlob(
  t: Transport,
  publicKey: string,
  uid: string,
  signal?: AbortSignal,
): Promise<Uint8Array | undefined> {
  const res = await request(t, 'GET', `/public/${publicKey}/${uid}`, { signal });
  if (res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  if (!res.ok) throw await answerError(res, 'GET');
  if (!res.headers.get('content-type')?.startsWith('application/octet-stream')) {
    await res.body?.cancel();
    throw new DropError('tampered', `Part ${uid} of the drop is not a blob: the relay does not serve drops.`);
  }
  return new Uint8Array(await res.arrayBuffer());
}

/** Options of {@link sendDrop}. */
export interface SendDropOptions {
  /** The file's name; a File's own by default. */
  name?: string;
  /** The file's media type; the Blob's own, or application/octet-stream. */
  type?: string;
  /** Stretched with Argon2id into the key: the link alone no longer opens the drop. */
  password?: string;
  /** Argon2id cost; {@link DEFAULT_ARGON2} by default. */
  argon2?: Argon2Params;
  /** Plaintext bytes per chunk: a sealed chunk is 40 bytes more and must fit the relay's blob limit. */
  chunkSize?: number;
  /** Called after each chunk is stored, with the plaintext bytes stored so far. */
  onProgress?: (sent: number, total: number) => void;
  signal?: AbortSignal;
  fetch?: typeof fetch;
  /** The primitives; @noble's by default, Node passes its native suite (the same bytes). */
  cipher?: CipherSuite;
}

/** A drop that was sent: the link for the receiver, and what the sender keeps to follow or revoke it. */
export interface SentDrop extends DropOwner {
  link: string;
  publicKey: string;
  size: number;
}

/**
 * Encrypts `file` under a fresh key pair and a random 256-bit key, one sealed chunk per one-to-one field,
 * then the sealed manifest; answers the link `<relay>/drop#<public key>.<key>`. A failure withdraws what
 * was stored. The file is read one chunk at a time, so memory stays flat whatever its size.
 */
export async function sendDrop(relay: string, file: Blob, options: SendDropOptions = {}): Promise<SentDrop> {
  const t = transport(relay, options.fetch);
  const { signal } = options;
  const cipher = options.cipher ?? nobleSuite;
  const chunkSize = options.chunkSize ?? DROP_CHUNK_SIZE;
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1)
    throw new RangeError('chunkSize must be a positive integer.');
  const size = file.size;
  const chunks = chunkCount(size, chunkSize);
  const pair = await t.client.keys({ signal });
  const secret = cipher.randomBytes(32);
  let stretched = new Uint8Array(0);
  let record: PasswordRecord | undefined;
  if (options.password) {
    const params = options.argon2 ?? DEFAULT_ARGON2;
    const salt = cipher.randomBytes(16);
    stretched = await stretch(options.password, salt, params);
    record = { v: 1, kdf: 'argon2id', ...params, salt: toBase64url(salt), check: '' };
  }
  const { key, check } = deriveDropKeys(concatBytes(secret, stretched), pair.public, cipher);
  const owner: DropOwner = { relay: t.relay, privateKey: pair.private, chunks };

  const hash = cipher.sha256();
  const window = createWindow(WINDOW);
  let started = 0;
  let sent = 0;
  try {
    for (let index = 0; index < chunks; index++) {
      const start = index * chunkSize;
      const plain = new Uint8Array(await file.slice(start, Math.min(size, start + chunkSize)).arrayBuffer());
      if (plain.length !== chunkLength({ size, chunks, chunkSize }, index)) {
        throw new DropError('file_changed', 'The file changed while it was being sent; send it again.');
      }
      hash.update(plain);
      const place = { publicKey: pair.public, index, final: index === chunks - 1 };
      const sealed = sealChunk(key, place, plain, cipher);
      started = index + 1;
      await window.add(
        putBlob(t, pair.private, chunkUid(index), sealed, signal).then(() => {
          sent += plain.length;
          options.onProgress?.(sent, size);
        }),
      );
    }
    await window.finish();
    if (record) await t.client.publish(pair.private, { ...record, check: toBase64url(check) }, { signal });
    const manifest: DropManifest = {
      name: options.name ?? (file as { name?: string }).name ?? 'file',
      size,
      type: options.type ?? (file.type || 'application/octet-stream'),
      chunks,
      chunkSize,
      sha256: bytesToHex(hash.digest()),
    };
    const sealed = sealManifest(key, pair.public, { v: 1, ...manifest }, cipher);
    await t.client.send(pair.private, MANIFEST_UID, sealed, { signal });
  } catch (error) {
    await window.settle();
    await revokeDrop({ ...owner, chunks: started }, { fetch: t.fetch }).catch(() => {});
    throw error;
  }
  return { ...owner, link: formatDropLink(t.relay, pair.public, secret), publicKey: pair.public, size };
}

/** Options of {@link openDrop}. */
export interface OpenDropOptions {
  /** The drop's password, when it has one. */
  password?: string;
  /** Called after each chunk is verified, with the plaintext bytes verified so far. */
  onProgress?: (received: number, total: number) => void;
  signal?: AbortSignal;
  fetch?: typeof fetch;
  /** The primitives; @noble's by default, Node passes its native suite (the same bytes). */
  cipher?: CipherSuite;
}

/** An opened drop: its manifest, and its bytes as a stream that fetches (and burns) chunk after chunk. */
export interface OpenedDrop extends DropManifest {
  /**
   * The file, each chunk verified before it is handed on; the stream errors with a DropError when a chunk
   * is missing, altered, moved or cut, or when the whole file's SHA-256 differs, and that check comes
   * before the last chunk is handed on. Keep nothing until the stream ends without an error.
   */
  body: ReadableStream<Uint8Array>;
}

/** Whether the drop behind `link` needs a password; this reads nothing that a fetch would burn. */
export async function dropNeedsPassword(
  link: string,
  options: Pick<OpenDropOptions, 'fetch' | 'signal'> = {},
) {
  const { relay, publicKey } = parseDropLink(link);
  return (
    (await transport(relay, options.fetch).client.read(publicKey, { signal: options.signal })) !== undefined
  );
}

/** The salt of a valid password record, or undefined. */
function saltOf(record: PasswordRecord): Uint8Array | undefined {
  try {
    const salt = fromBase64url(record.salt);
    return salt.length === 16 ? salt : undefined;
  } catch {
    return undefined;
  }
}

function checkRecord(value: unknown): PasswordRecord & { saltBytes: Uint8Array } {
  const record = value as PasswordRecord;
  const within = (name: keyof Argon2Params) =>
    Number.isSafeInteger(record[name]) && record[name] >= 1 && record[name] <= MAX_ARGON2[name];
  if (
    record?.v !== 1 ||
    record.kdf !== 'argon2id' ||
    !within('t') ||
    !within('m') ||
    !within('p') ||
    typeof record.salt !== 'string' ||
    typeof record.check !== 'string'
  ) {
    throw new DropError(
      'tampered',
      'The password record of this drop is not valid; ask the sender for a new drop.',
    );
  }
  const saltBytes = saltOf(record);
  if (!saltBytes)
    throw new DropError(
      'tampered',
      'The password record of this drop is not valid; ask the sender for a new drop.',
    );
  return { ...record, saltBytes };
}

function checkManifest(value: unknown): DropManifest {
  const m = value as DropManifest & { v?: unknown };
  const valid =
    m?.v === 1 &&
    typeof m.name === 'string' &&
    typeof m.type === 'string' &&
    typeof m.sha256 === 'string' &&
    /^[0-9a-f]{64}$/.test(m.sha256) &&
    Number.isSafeInteger(m.size) &&
    m.size >= 0 &&
    Number.isSafeInteger(m.chunkSize) &&
    m.chunkSize >= 1 &&
    m.chunks === chunkCount(m.size, m.chunkSize);
  if (!valid) throw new DropError('tampered', 'The manifest of this drop is not valid.');
  return {
    name: m.name,
    size: m.size,
    type: m.type,
    chunks: m.chunks,
    chunkSize: m.chunkSize,
    sha256: m.sha256,
  };
}

/**
 * Opens the drop behind `link`: checks the password first (nothing is burned by a wrong one), then takes
 * and opens the manifest. A drop already fetched, revoked or expired is a DropError `gone`. Read `body`
 * to fetch the file; every chunk read is gone from the relay.
 */
export async function openDrop(link: string, options: OpenDropOptions = {}): Promise<OpenedDrop> {
  const { relay, publicKey, key: secret } = parseDropLink(link);
  const t = transport(relay, options.fetch);
  const cipher = options.cipher ?? nobleSuite;
  const { signal } = options;

  let stretched = new Uint8Array(0);
  const published = await t.client.read(publicKey, { signal });
  if (published !== undefined) {
    const record = checkRecord(published);
    if (!options.password) {
      throw new DropError(
        'password_required',
        'This drop is protected by a password; give it to open the drop.',
      );
    }
    stretched = await stretch(options.password, record.saltBytes, record);
    if (
      toBase64url(deriveDropKeys(concatBytes(secret, stretched), publicKey, cipher).check) !== record.check
    ) {
      throw new DropError('wrong_password', 'The password is wrong; nothing was fetched, so try again.');
    }
  }
  const { key } = deriveDropKeys(concatBytes(secret, stretched), publicKey, cipher);

  const envelope = await t.client.receive(publicKey, MANIFEST_UID, { signal });
  if (envelope === undefined) {
    throw new DropError('gone', 'This drop was already fetched or expired, or its sender revoked it.');
  }
  let manifest: DropManifest;
  try {
    manifest = checkManifest(openManifest(key, publicKey, envelope, cipher));
  } catch (error) {
    if (error instanceof DropError) throw error;
    throw new DropError(
      'tampered',
      'The manifest of this drop does not open: the link is not complete, or the drop was tampered with.',
    );
  }
  return { ...manifest, body: chunkStream(t, publicKey, key, manifest, cipher, options) };
}

/** The file's bytes, fetched `WINDOW` chunks ahead and verified in order. */
function chunkStream(
  t: Transport,
  publicKey: string,
  key: Uint8Array,
  manifest: DropManifest,
  cipher: CipherSuite,
  options: OpenDropOptions,
): ReadableStream<Uint8Array> {
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  const pending: Promise<Uint8Array | undefined>[] = [];
  const hash = cipher.sha256();
  let requested = 0;
  let index = 0;
  let received = 0;
  return new ReadableStream<Uint8Array>(
    {
      pull: async (controller) => {
        while (pending.length < WINDOW && requested < manifest.chunks) {
          const taking = takeBlob(t, publicKey, chunkUid(requested++), signal);
          taking.catch(() => {}); // awaited in turn below; a stream that errored never awaits the rest
          pending.push(taking);
        }
        const sealed = await (pending.shift() as Promise<Uint8Array | undefined>);
        const final = index === manifest.chunks - 1;
        if (sealed === undefined) {
          stop.abort();
          throw new DropError(
            'missing',
            `Chunk ${index + 1} of ${manifest.chunks} is missing: it was already fetched, revoked or expired.`,
          );
        }
        let plain: Uint8Array;
        try {
          plain = openChunk(key, { publicKey, index, final }, sealed, cipher);
        } catch {
          stop.abort();
          throw new DropError(
            'tampered',
            `Chunk ${index + 1} of ${manifest.chunks} does not open: it was altered, moved or cut short.`,
          );
        }
        if (plain.length !== chunkLength(manifest, index)) {
          stop.abort();
          throw new DropError('tampered', `Chunk ${index + 1} of ${manifest.chunks} has the wrong length.`);
        }
        hash.update(plain);
        if (final && bytesToHex(hash.digest()) !== manifest.sha256) {
          throw new DropError('tampered', "The file's SHA-256 does not match its manifest.");
        }
        index++;
        received += plain.length;
        options.onProgress?.(received, manifest.size);
        controller.enqueue(plain);
        if (final) controller.close();
      },
      cancel: () => stop.abort(),
    },
    { highWaterMark: 0 },
  );
}

/** What the sender sees of a drop: `waiting` (not fetched), `partial` (a fetch began) or `gone`. */
export interface DropStatus {
  state: 'waiting' | 'partial' | 'gone';
  /** Seconds until the unfetched drop expires; 0 when it is gone. */
  expiresIn: number;
}

/**
 * Whether the drop was fetched, from the TTLs of its manifest and last chunk (a receiver takes the
 * manifest first and the last chunk last). `gone` means fetched, revoked or expired.
 */
export async function dropStatus(
  owner: DropOwner,
  options: { fetch?: typeof fetch; signal?: AbortSignal } = {},
): Promise<DropStatus> {
  const { client } = transport(owner.relay, options.fetch);
  const [manifest, last] = await Promise.all([
    client.ttl(owner.privateKey, MANIFEST_UID, options),
    client.ttl(owner.privateKey, chunkUid(owner.chunks - 1), options),
  ]);
  const state: DropStatus['state'] = manifest > 0 ? 'waiting' : last > 0 ? 'partial' : 'gone';
  return { state, expiresIn: Math.max(manifest, last) };
}

/** Deletes whatever of the drop is still on the relay: its manifest, its chunks and its password record. */
export async function revokeDrop(
  owner: DropOwner,
  options: { fetch?: typeof fetch; signal?: AbortSignal } = {},
): Promise<void> {
  const { client } = transport(owner.relay, options.fetch);
  await client.withdraw(owner.privateKey, MANIFEST_UID, options);
  await client.unpublish(owner.privateKey, options);
  const window = createWindow(WINDOW * 2);
  for (let index = 0; index < owner.chunks; index++) {
    await window.add(client.withdraw(owner.privateKey, chunkUid(index), options));
  }
  await window.finish();
}
