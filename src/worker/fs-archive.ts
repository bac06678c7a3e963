// A folder download: the folder's entries chosen under the root's rules, streamed as a tar archive (node-tar), sealed.
import type { Stats } from 'node:fs';
import { constants } from 'node:fs';
import { type FileHandle, lstat, open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Header, Pack, ReadEntry } from 'tar';
import { sealTransform } from '../../sdk/e2e/node-streams.js';
import { readPipeReply, WorkerError } from '../../sdk/e2e/protocol.js';
import { type FsScope, type Located, locateExisting, requestPathOf } from './fs-paths.js';
import type { Outcome, PipeEnds } from './receiver.js';

// node-tar writes the headers (ustar, with pax records for long names) and the padding; the worker chooses every
// entry and hands it the bytes of files it opened itself (O_NOFOLLOW, inside the root), so that node-tar never
// opens a path on its own: a link swapped in after the walk is not followed.

/** One entry of the archive: its name inside it, and where its bytes are. */
interface ArchiveEntry {
  /** The name in the archive: the folder's name, then the path below it. */
  name: string;
  type: 'dir' | 'file';
  /** The real path to open (a file's, or the file a link inside the root leads to). */
  real: string;
  /** The request path, for sentences. */
  path: string;
  size: number;
  mode: number;
  mtime: Date;
}

const BLOCK = 512;
/** The tar size of the entries without pax records: a header each, data padded to blocks, two end blocks. */
const tarEstimate = (entries: ArchiveEntry[]) =>
  entries.reduce((sum, entry) => sum + BLOCK + Math.ceil(entry.size / BLOCK) * BLOCK, 2 * BLOCK);

/**
 * The entries below `dir`, parents first, depth first. Excluded entries and what is below them are left out, as
 * are files the include patterns leave out. A link is taken as the file it leads to when that file is inside the
 * root and visible; links to directories (which could loop) and links leading outside or nowhere are left out.
 * More than `maxEntries` is refused, so that an archive never starts that cannot be finished.
 */
async function collectEntries(
  scope: FsScope,
  dir: Located,
  folderName: string,
  maxEntries: number,
): Promise<ArchiveEntry[]> {
  const entries: ArchiveEntry[] = [];
  const add = (entry: ArchiveEntry) => {
    if (entries.length === maxEntries) {
      throw new WorkerError(
        'too_large',
        `${dir.path} holds more than ${maxEntries} entries, the most the worker archives at once; download a folder inside it.`,
      );
    }
    entries.push(entry);
  };
  const visit = async (rel: string, real: string, name: string) => {
    const names = (await readdir(real, { withFileTypes: true }).catch(() => [])).sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    );
    for (const entry of names) {
      const childRel = rel ? `${rel}/${entry.name}` : entry.name;
      if (scope.isExcluded(childRel)) continue;
      const childName = `${name}/${entry.name}`;
      const path = requestPathOf(dir.root, childRel);
      let childReal = join(real, entry.name);
      let info: Stats | undefined;
      if (entry.isSymbolicLink()) {
        const target = await locateExisting(scope, path).catch(() => undefined);
        info = target && (await stat(target.real).catch(() => undefined));
        if (!target || !info?.isFile() || !scope.isIncluded(target.rel)) continue;
        childReal = target.real;
      } else {
        info = await lstat(childReal).catch(() => undefined);
      }
      if (info?.isDirectory()) {
        add({
          name: `${childName}/`,
          type: 'dir',
          real: childReal,
          path,
          size: 0,
          mode: info.mode,
          mtime: info.mtime,
        });
        await visit(childRel, childReal, childName);
      } else if (info?.isFile() && scope.isIncluded(childRel)) {
        add({
          name: childName,
          type: 'file',
          real: childReal,
          path,
          size: info.size,
          mode: info.mode,
          mtime: info.mtime,
        });
      }
    }
  };
  const top = await stat(dir.real);
  add({
    name: `${folderName}/`,
    type: 'dir',
    real: dir.real,
    path: dir.path,
    size: 0,
    mode: top.mode,
    mtime: top.mtime,
  });
  await visit(dir.rel, dir.real, folderName);
  return entries;
}

/** Opens a file of the archive without following a link put in its place since the walk. */
async function openEntry(entry: ArchiveEntry): Promise<FileHandle> {
  const handle = await open(entry.real, constants.O_RDONLY | constants.O_NOFOLLOW);
  if (!(await handle.stat()).isFile()) {
    await handle.close();
    throw new Error(`${entry.path} is no longer a file.`);
  }
  return handle;
}

/** Hands `entry.size` bytes of the file to the archive, waiting while it is full; a file that shrank is an error. */
async function writeFileEntry(read: ReadEntry, entry: ArchiveEntry, buffer: Buffer): Promise<void> {
  const handle = await openEntry(entry);
  try {
    for (let left = entry.size; left > 0; ) {
      const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, left), null);
      if (bytesRead === 0) throw new Error(`${entry.path} became shorter while it was archived.`);
      left -= bytesRead;
      // The archive keeps what it is given until it is read: a copy, since the buffer is read into again.
      if (!read.write(Buffer.from(buffer.subarray(0, bytesRead)))) {
        await new Promise<void>((resolve) => read.once('drain', resolve));
      }
    }
  } finally {
    await handle.close();
  }
}

/** The archive of `entries` as a byte stream, each entry's bytes read only when the archive asks for more. */
function archiveOf(entries: ArchiveEntry[], signal: AbortSignal): Readable {
  const pack = new Pack({ portable: true });
  const buffer = Buffer.allocUnsafe(256 * 1024);
  const output = Readable.from(pack as AsyncIterable<Buffer>, { objectMode: false });
  (async () => {
    for (const entry of entries) {
      if (signal.aborted) throw signal.reason;
      const header = new Header({
        path: entry.name,
        type: entry.type === 'dir' ? 'Directory' : 'File',
        size: entry.size,
        mode: entry.mode & 0o7777,
        mtime: entry.mtime,
      });
      const read = new ReadEntry(header);
      pack.add(read);
      if (entry.type === 'file' && entry.size > 0) await writeFileEntry(read, entry, buffer);
      read.end();
    }
    pack.end();
  })().catch((error: unknown) => output.destroy(error as Error));
  return output;
}

/**
 * Answers the folder's name, file count and bytes now, then, once the answer is out, streams the folder as a tar
 * archive sealed to the pipe. The entries are chosen now: an archive that would be too large is refused at once.
 */
export async function startFolderDownload(
  scope: FsScope,
  dir: Located,
  reply: unknown,
  pipes: PipeEnds,
  signal: AbortSignal,
  maxEntries: number,
): Promise<Outcome> {
  const { pipe, key } = readPipeReply(reply);
  const name = dir.rel ? (dir.rel.split('/').at(-1) as string) : dir.root;
  const entries = await collectEntries(scope, dir, name, maxEntries);
  const files = entries.filter((entry) => entry.type === 'file');
  const bytes = files.reduce((sum, entry) => sum + entry.size, 0);
  return {
    answer: {
      ok: true,
      result: {
        path: dir.path,
        type: 'dir',
        format: 'tar',
        name: `${name}.tar`,
        files: files.length,
        bytes,
        estimate: tarEstimate(entries),
      },
    },
    after: async (delivered) => {
      if (!delivered) return;
      const stopping = new AbortController();
      const archive = archiveOf(entries, AbortSignal.any([signal, stopping.signal]));
      const sealed = archive.pipe(sealTransform(key));
      archive.once('error', (error) => sealed.destroy(error));
      try {
        await pipes.send(pipe, sealed, signal);
      } finally {
        stopping.abort();
        archive.destroy();
        sealed.destroy();
      }
    },
  };
}
