// Where the drop page keeps a fetch: the claimed key and each verified chunk in IndexedDB, per drop, so that
// opening the same link again in this browser resumes an interrupted fetch; the file is assembled from it.
import type { DropManifest } from './common.js';
import type { DropSink, KeptFetch } from './receive.js';

const DATABASE = 'deadrop-drop';
/** One row per drop being fetched, under its public key: `KeptRow`. */
const FETCHES = 'fetches';
/** One Blob per verified chunk, under `[public key, index]`. */
const CHUNKS = 'chunks';

interface KeptRow {
  privateKey: string;
  /** Chunks saved, from the first on; written in the same transaction as the last of them. */
  chunks: number;
}

/** A drop's fetch in progress, kept in this browser's IndexedDB. */
export interface BrowserSink extends DropSink {
  /** Bytes an earlier fetch kept (0 for a first fetch). */
  readonly keptBytes: number;
  /** The whole file, from the kept chunks; call it once the fetch verified. */
  file(type: string): Promise<Blob>;
  /** Deletes everything kept of this drop: after it was saved, or when its fetch can never complete. */
  forget(): Promise<void>;
}

let opened: Promise<IDBDatabase> | undefined;

function database(): Promise<IDBDatabase> {
  opened ??= new Promise((resolve, reject) => {
    const request = indexedDB.open(DATABASE, 1);
    request.onupgradeneeded = () => {
      request.result.createObjectStore(FETCHES);
      request.result.createObjectStore(CHUNKS);
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () =>
      reject(
        new Error(
          'This browser does not let the page keep data (IndexedDB), which a fetch needs; nothing was fetched. Allow site data for this relay or leave private browsing, or run `deadrop drop get <link>`.',
          { cause: request.error },
        ),
      );
  });
  return opened;
}

/**
 * Runs `work` in one transaction and answers what it returns once the transaction is complete. Writes are
 * `strict`: the relay deletes a chunk once its write resolves, so it must be on disk by then.
 */
async function inTransaction<T>(
  mode: IDBTransactionMode,
  work: (stores: { fetches: IDBObjectStore; chunks: IDBObjectStore }) => IDBRequest | undefined,
): Promise<T> {
  const db = await database();
  return new Promise<T>((resolve, reject) => {
    const transaction = db.transaction([FETCHES, CHUNKS], mode, { durability: 'strict' });
    const request = work({
      fetches: transaction.objectStore(FETCHES),
      chunks: transaction.objectStore(CHUNKS),
    });
    transaction.oncomplete = () => resolve(request?.result as T);
    transaction.onerror = () => reject(transaction.error ?? request?.error);
    transaction.onabort = () =>
      reject(transaction.error ?? new Error('The browser refused to keep the chunk.'));
  });
}

const chunksOf = (publicKey: string) =>
  IDBKeyRange.bound([publicKey, 0], [publicKey, Number.MAX_SAFE_INTEGER]);

/**
 * Opens (or resumes) the fetch of the drop at `publicKey` in this browser's IndexedDB. What an earlier,
 * interrupted fetch kept of it is handed to `fetchInto` through `resume()`.
 */
export async function openBrowserSink(
  publicKey: string,
  manifest: Pick<DropManifest, 'size' | 'chunks' | 'chunkSize'>,
): Promise<BrowserSink> {
  const row = await inTransaction<KeptRow | undefined>('readonly', ({ fetches }) => fetches.get(publicKey));
  const keptChunks = row ? Math.min(row.chunks, manifest.chunks) : 0;
  const kept: KeptFetch | undefined = row && {
    privateKey: row.privateKey,
    chunks: keptChunks,
    bytes: async function* () {
      for (let index = 0; index < keptChunks; index++) {
        const chunk = await inTransaction<Blob | undefined>('readonly', ({ chunks }) =>
          chunks.get([publicKey, index]),
        );
        // Cleared by another tab meanwhile: the whole-file check then fails, and the fetch says so.
        if (chunk) yield new Uint8Array(await chunk.arrayBuffer());
      }
    },
  };

  let privateKey = row?.privateKey;

  return {
    keptBytes: Math.min(keptChunks * manifest.chunkSize, manifest.size),
    resume: async () => kept,
    claimed: async (key) => {
      await inTransaction('readwrite', ({ fetches }) =>
        fetches.put({ privateKey: key, chunks: 0 } satisfies KeptRow, publicKey),
      );
      privateKey = key;
    },
    write: async (index, plain) => {
      // A Blob, so that the browser keeps it on disk and the file is assembled without copying it into memory.
      const chunk = new Blob([plain as BlobPart]);
      await inTransaction('readwrite', ({ fetches, chunks }) => {
        chunks.put(chunk, [publicKey, index]);
        return fetches.put(
          { privateKey: privateKey as string, chunks: index + 1 } satisfies KeptRow,
          publicKey,
        );
      });
    },
    file: async (type) => {
      const chunks = await inTransaction<Blob[]>('readonly', ({ chunks }) =>
        chunks.getAll(chunksOf(publicKey)),
      );
      const file = new Blob(chunks, { type });
      // Another tab (without Web Locks, over plain HTTP) may have deleted what this one kept.
      if (file.size !== manifest.size) {
        throw new Error(
          `This browser kept ${file.size} of the file's ${manifest.size} bytes: another tab or window fetched the same drop at the same time. Close the others and open the link again.`,
        );
      }
      return file;
    },
    forget: () => forgetKeptFetch(publicKey),
  };
}

/** Deletes everything this browser kept of the fetch of the drop at `publicKey`. */
export const forgetKeptFetch = (publicKey: string): Promise<void> =>
  inTransaction('readwrite', ({ fetches, chunks }) => {
    chunks.delete(chunksOf(publicKey));
    return fetches.delete(publicKey);
  });
