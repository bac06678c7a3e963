// Blobs on the Store port: how bytes are kept as a one-to-one value, and the byte quota of each key pair.
import { createKeyedLock } from './keyed-lock.js';
import type { Store } from './store.js';

// The store keeps JSON text, so a blob is kept as one: a reader that does not know blobs still gets JSON.
const BLOB_PREFIX = '{"$blob":"';
const BLOB_SUFFIX = '"}';
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** The value a blob is stored as: `{"$blob":"<base64>"}`. */
export function encodeBlob(bytes: Uint8Array): string {
  return `${BLOB_PREFIX}${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64')}${BLOB_SUFFIX}`;
}

/** The bytes of a stored blob, or undefined when the value is ordinary JSON. */
export function decodeBlob(value: string): Buffer | undefined {
  if (!value.startsWith(BLOB_PREFIX) || !value.endsWith(BLOB_SUFFIX)) return undefined;
  const base64 = value.slice(BLOB_PREFIX.length, -BLOB_SUFFIX.length);
  return BASE64.test(base64) ? Buffer.from(base64, 'base64') : undefined;
}

/** Byte counts of the live blobs of each key pair, to hold them to a quota. */
export interface BlobLedger {
  /**
   * Counts `bytes` for `uid` (replacing what `uid` counted) unless the key pair's live blobs would then
   * exceed `quota`; `used` is what the other blobs count. Call it before the blob is stored, so that the
   * count is never short.
   */
  reserve(
    pub: string,
    uid: string,
    bytes: number,
    ttlMs: number,
    quota: number,
  ): Promise<{ accepted: boolean; used: number }>;
  /** Stops counting `uid`; call after its blob was taken or deleted. */
  release(pub: string, uid: string): Promise<void>;
  /** Bytes counted for the key pair's live blobs. */
  used(pub: string): Promise<number>;
}

/** One entry per blob: its uid, its size and when it expires (ms since the epoch). */
type Entries = [uid: string, bytes: number, expires: number][];

/**
 * The ledger is the published-value slot of `<pub>#blobs`: not a key any client can name (`#` is not
 * base64url), readable without consuming it, and gone when its last blob expires. Updates are serialised
 * per key pair within this process; instances sharing a Redis can race, which the store-level count
 * proposed for the Store port would close.
 */
export function createBlobLedger(store: Store, now: () => number = Date.now): BlobLedger {
  const lock = createKeyedLock();
  const ledgerOf = (pub: string) => `${pub}#blobs`;

  const read = async (pub: string): Promise<Entries> => {
    const text = await store.readValue(ledgerOf(pub));
    const at = now();
    return text === undefined ? [] : (JSON.parse(text) as Entries).filter(([, , expires]) => expires > at);
  };
  const write = async (pub: string, entries: Entries) => {
    if (entries.length === 0) {
      await store.deleteValue(ledgerOf(pub));
      return;
    }
    const last = Math.max(...entries.map(([, , expires]) => expires));
    await store.publishValue(ledgerOf(pub), JSON.stringify(entries), Math.max(1, last - now()));
  };
  const sum = (entries: Entries) => entries.reduce((total, [, bytes]) => total + bytes, 0);

  return {
    reserve: (pub, uid, bytes, ttlMs, quota) =>
      lock(pub, async () => {
        const others = (await read(pub)).filter(([name]) => name !== uid);
        const used = sum(others);
        if (used + bytes > quota) return { accepted: false, used };
        await write(pub, [...others, [uid, bytes, now() + ttlMs]]);
        return { accepted: true, used };
      }),
    release: (pub, uid) =>
      lock(pub, async () => {
        const entries = await read(pub);
        const kept = entries.filter(([name]) => name !== uid);
        if (kept.length !== entries.length) await write(pub, kept);
      }),
    used: async (pub) => sum(await read(pub)),
  };
}
