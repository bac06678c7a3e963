// Where `drop get` keeps a fetch: a part file of the verified chunks and the claimed key beside it, both named
// after the drop, so that the same command resumes an interrupted fetch; moved to the target once verified.
import { createReadStream } from 'node:fs';
import { type FileHandle, link, open, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DropManifest, DropSink, KeptFetch } from '../../sdk/drop.js';

/** A drop's fetch in progress, kept in a directory. */
export interface FileSink extends DropSink {
  /** Bytes an earlier fetch kept (0 for a first fetch). */
  readonly keptBytes: number;
  /** Where the verified file went (once `complete` ran). */
  readonly target: () => string | undefined;
  /** Closes the part file and leaves it, with the key, for the next attempt. */
  keep(): Promise<void>;
  /** Removes the part file and the key: this fetch can never complete. */
  discard(): Promise<void>;
}

interface KeyFile {
  v: 1;
  privateKey: string;
}

const PRIVATE_KEY = /^[A-Za-z0-9_-]{32}$/;

/** The files a fetch of the drop at `publicKey` keeps in `dir`. */
export const fetchFiles = (dir: string, publicKey: string) => ({
  part: join(dir, `.deadrop-${publicKey}.part`),
  key: join(dir, `.deadrop-${publicKey}.key`),
  lock: join(dir, `.deadrop-${publicKey}.lock`),
});

/** Removes what an earlier fetch of a drop kept in `dir` (the drop is gone); true when there was something. */
export async function forgetFetch(dir: string, publicKey: string): Promise<boolean> {
  const files = fetchFiles(dir, publicKey);
  const removed = await Promise.all(
    [files.part, files.key].map((path) =>
      unlink(path).then(
        () => true,
        () => false,
      ),
    ),
  );
  return removed.includes(true);
}

const bytesOf = (manifest: DropManifest, chunks: number) =>
  Math.min(chunks * manifest.chunkSize, manifest.size);

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Takes the drop's lock in `dir`: two fetches of one drop would delete each other's chunks. */
async function lockFetch(path: string): Promise<() => Promise<void>> {
  for (let attempt = 0; ; attempt++) {
    try {
      await writeFile(path, String(process.pid), { flag: 'wx', mode: 0o600 });
      return () => unlink(path).catch(() => {});
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw error;
      const holder = Number(await readFile(path, 'utf8').catch(() => ''));
      if (Number.isSafeInteger(holder) && holder > 0 && isAlive(holder)) {
        throw new Error(
          `Another "deadrop drop get" (process ${holder}) is fetching this drop into ${path.slice(0, path.lastIndexOf('/'))}; let it finish, or stop it and run this again.`,
        );
      }
      await unlink(path).catch(() => {}); // left by a fetch that was killed
    }
  }
}

/** The key an earlier fetch claimed, or undefined; a damaged key file is said so. */
async function readKeyFile(path: string): Promise<KeyFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const saved = JSON.parse(text) as KeyFile;
    if (typeof saved.privateKey === 'string' && PRIVATE_KEY.test(saved.privateKey)) return saved;
  } catch {}
  throw new Error(
    `${path} is damaged, so the interrupted fetch of this drop cannot resume; the drop can no longer be fetched from here.`,
  );
}

/**
 * Opens (or resumes) the fetch of the drop at `publicKey` in `dir`; `chooseTarget` names the file once it is
 * verified (asked again if that name was taken meanwhile). The part file is opened before anything is claimed,
 * so a directory that cannot be written to fails before the drop is touched.
 */
export async function openFileSink(
  dir: string,
  publicKey: string,
  manifest: DropManifest,
  chooseTarget: () => Promise<string>,
): Promise<FileSink> {
  const files = fetchFiles(dir, publicKey);
  const unlock = await lockFetch(files.lock);
  try {
    const saved = await readKeyFile(files.key);
    const partSize = saved ? ((await stat(files.part).catch(() => undefined))?.size ?? 0) : 0;
    // Only whole chunks count: a chunk cut short by the interruption is read again.
    const keptChunks =
      partSize >= manifest.size ? manifest.chunks : Math.floor(partSize / manifest.chunkSize);
    const keptBytes = saved ? bytesOf(manifest, keptChunks) : 0;
    const file: FileHandle = await open(files.part, saved ? 'r+' : 'w', 0o600).catch(async (error) => {
      if (saved) return open(files.part, 'w', 0o600); // the key survived but not the part file: start over
      throw error;
    });
    await file.truncate(keptBytes);
    return fileSink({ files, manifest, file, saved, keptChunks, keptBytes, chooseTarget, unlock });
  } catch (error) {
    await unlock();
    throw error;
  }
}

function fileSink({
  files,
  manifest,
  file,
  saved,
  keptChunks,
  keptBytes,
  chooseTarget,
  unlock,
}: {
  files: ReturnType<typeof fetchFiles>;
  manifest: DropManifest;
  file: FileHandle;
  saved: KeyFile | undefined;
  keptChunks: number;
  keptBytes: number;
  chooseTarget: () => Promise<string>;
  unlock: () => Promise<void>;
}): FileSink {
  const kept: KeptFetch | undefined = saved && {
    privateKey: saved.privateKey,
    chunks: keptBytes === 0 ? 0 : keptChunks,
    bytes: () => (keptBytes === 0 ? emptyBytes() : createReadStream(files.part, { end: keptBytes - 1 })),
  };
  let target: string | undefined;
  let closed = false;
  const writeAt = async (position: number, bytes: Uint8Array) => {
    let written = 0;
    // A nearly full disk writes less than asked: what is not written is not saved.
    while (written < bytes.length) {
      const { bytesWritten } = await file.write(bytes, written, bytes.length - written, position + written);
      if (bytesWritten === 0) throw new Error(`Could not write to ${files.part}: is the disk full?`);
      written += bytesWritten;
    }
  };
  const close = async () => {
    if (closed) return;
    closed = true;
    await file.close().catch(() => {});
    await unlock();
  };

  return {
    keptBytes,
    target: () => target,
    resume: async () => kept,
    // Written beside and renamed: a kill never leaves half a key file.
    claimed: async (privateKey) => {
      const temporary = `${files.key}.${process.pid}`;
      await writeFile(temporary, JSON.stringify({ v: 1, privateKey } satisfies KeyFile), { mode: 0o600 });
      await rename(temporary, files.key);
    },
    write: (index, plain) => writeAt(index * manifest.chunkSize, plain),
    async writeParts(index, parts) {
      const position = index * manifest.chunkSize;
      const { bytesWritten } = await file.writev(parts as Uint8Array[], position);
      const total = parts.reduce((sum, part) => sum + part.length, 0);
      // The rest of a short write goes as one piece, which says whether the disk is full.
      if (bytesWritten < total)
        await writeAt(position + bytesWritten, Buffer.concat(parts).subarray(bytesWritten));
    },
    complete: async () => {
      await file.sync();
      // A hard link fails on a name that exists: nothing that appeared meanwhile is overwritten.
      for (let attempt = 0; ; attempt++) {
        const candidate = await chooseTarget();
        try {
          await link(files.part, candidate);
          target = candidate;
          break;
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP') {
            // A file system without hard links: a rename, after a last look at the name.
            if (
              await stat(candidate).then(
                () => false,
                () => true,
              )
            ) {
              await rename(files.part, candidate);
              target = candidate;
              break;
            }
          } else if (code !== 'EEXIST') throw error;
          if (attempt >= 3) throw error;
        }
      }
      await close();
      await unlink(files.part).catch(() => {});
      await unlink(files.key).catch(() => {});
    },
    keep: close,
    discard: async () => {
      await close();
      await unlink(files.key).catch(() => {});
      await unlink(files.part).catch(() => {});
    },
  };
}

async function* emptyBytes(): AsyncIterable<Uint8Array> {}
