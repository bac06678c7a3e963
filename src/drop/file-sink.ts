// Where `drop get` keeps a fetch: a part file of the verified chunks and the claimed key beside it, both named
// after the drop, so that the same command resumes an interrupted fetch; renamed to the target once verified.
import { createReadStream } from 'node:fs';
import { type FileHandle, open, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DropManifest, DropSink, KeptFetch } from '../../sdk/drop.js';

/** A drop's fetch in progress, kept in a directory. */
export interface FileSink extends DropSink {
  /** Bytes an earlier fetch kept (0 for a first fetch). */
  readonly keptBytes: number;
  readonly partPath: string;
  /** Moves the verified file to `target` and forgets the fetch. */
  finish(target: string): Promise<void>;
  /** Closes the part file and leaves it, with the key, for the next attempt. */
  keep(): Promise<void>;
  /** Removes the part file and the key: this fetch can never complete. */
  discard(): Promise<void>;
}

interface KeyFile {
  v: 1;
  privateKey: string;
}

const bytesOf = (manifest: DropManifest, chunks: number) =>
  Math.min(chunks * manifest.chunkSize, manifest.size);

/**
 * Opens (or resumes) the fetch of the drop at `publicKey` in `dir`. The part file is opened before anything
 * is claimed, so a directory that cannot be written to fails before the drop is touched.
 */
export async function openFileSink(
  dir: string,
  publicKey: string,
  manifest: DropManifest,
): Promise<FileSink> {
  const partPath = join(dir, `.deadrop-${publicKey}.part`);
  const keyPath = join(dir, `.deadrop-${publicKey}.key`);
  const saved = await readFile(keyPath, 'utf8').then(
    (text) => JSON.parse(text) as KeyFile,
    () => undefined,
  );
  const partSize = saved ? ((await stat(partPath).catch(() => undefined))?.size ?? 0) : 0;
  // Only whole chunks count: a chunk cut short by the interruption is read again.
  const keptChunks = partSize >= manifest.size ? manifest.chunks : Math.floor(partSize / manifest.chunkSize);
  const keptBytes = saved ? bytesOf(manifest, keptChunks) : 0;
  const file: FileHandle = await open(partPath, saved ? 'r+' : 'w', 0o600).catch(async (error) => {
    if (saved) return open(partPath, 'w', 0o600); // the key survived but not the part file: start over
    throw error;
  });
  await file.truncate(keptBytes);

  const kept: KeptFetch | undefined = saved && {
    privateKey: saved.privateKey,
    chunks: keptBytes === 0 ? 0 : keptChunks,
    bytes: () => (keptBytes === 0 ? emptyBytes() : createReadStream(partPath, { end: keptBytes - 1 })),
  };
  const forget = async () => {
    await file.close().catch(() => {});
    await unlink(keyPath).catch(() => {});
  };

  return {
    keptBytes,
    partPath,
    resume: async () => kept,
    claimed: (privateKey) =>
      writeFile(keyPath, JSON.stringify({ v: 1, privateKey } satisfies KeyFile), { mode: 0o600, flag: 'w' }),
    write: async (index, plain) => {
      await file.write(plain, 0, plain.length, index * manifest.chunkSize);
    },
    finish: async (target) => {
      await file.close();
      await rename(partPath, target);
      await unlink(keyPath).catch(() => {});
    },
    keep: async () => {
      await file.close().catch(() => {});
    },
    discard: async () => {
      await forget();
      await unlink(partPath).catch(() => {});
    },
  };
}

async function* emptyBytes(): AsyncIterable<Uint8Array> {}
