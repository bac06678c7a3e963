// The file receiver: list, stat, find, grep, download (a folder as tar), upload, mkdir and delete inside the roots.
import type { Stats } from 'node:fs';
import { lstat, mkdir, readdir, rmdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { type FsOperation, WorkerError } from '../../sdk/e2e/protocol.js';
import { isRecord } from './config-fields.js';
import { startFolderDownload } from './fs-archive.js';
import {
  createFsScope,
  type FsScope,
  type Located,
  locateEntry,
  locateExisting,
  requestPathOf,
} from './fs-paths.js';
import { type ContentMatch, type FoundEntry, findByContent, findByName } from './fs-search.js';
import { receiveUpload, startDownload } from './fs-transfer.js';
import { type Outcome, ok, type PipeEnds } from './receiver.js';
import type { FsConfig } from './receiver-config.js';

/** One entry of a directory listing. */
export interface ListedEntry {
  name: string;
  type: 'file' | 'dir';
  size: number;
  mtime: number;
}

/** The file receiver of one worker. */
export interface FsReceiver {
  readonly operations: readonly FsOperation[];
  /** The names of the roots, sorted. */
  readonly roots: string[];
  /** Carries out `operation` with the request's `body` and `reply`; throws a WorkerError to refuse. */
  handle(operation: FsOperation, body: unknown, reply: unknown, signal: AbortSignal): Promise<Outcome>;
}

const typeOf = (info: Stats): 'file' | 'dir' | undefined =>
  info.isDirectory() ? 'dir' : info.isFile() ? 'file' : undefined;

async function requireDirectory(dir: Located): Promise<void> {
  if (!(await stat(dir.real)).isDirectory())
    throw new WorkerError('bad_request', `${dir.path} is not a directory.`);
}

/**
 * The entries of a directory that a user may see: excluded ones, files the include patterns leave out, and
 * links that lead outside the root (or nowhere) are left out.
 */
async function listDirectory(scope: FsScope, dir: Located, maxResults: number) {
  await requireDirectory(dir);
  const entries: ListedEntry[] = [];
  let truncated = false;
  for (const entry of await readdir(dir.real, { withFileTypes: true })) {
    const rel = dir.rel ? `${dir.rel}/${entry.name}` : entry.name;
    if (scope.isExcluded(rel)) continue;
    const real = join(dir.real, entry.name);
    let info: Stats | undefined;
    if (entry.isSymbolicLink()) {
      const target = await locateExisting(scope, requestPathOf(dir.root, rel)).catch(() => undefined);
      info = target && (await stat(target.real).catch(() => undefined));
    } else {
      info = await lstat(real).catch(() => undefined);
    }
    const type = info && typeOf(info);
    if (!info || !type || (type === 'file' && !scope.isIncluded(rel))) continue;
    if (entries.length === maxResults) {
      truncated = true;
      break;
    }
    entries.push({ name: entry.name, type, size: type === 'file' ? info.size : 0, mtime: info.mtimeMs });
  }
  entries.sort((a, b) => (a.type === b.type ? a.name.localeCompare(b.name) : a.type === 'dir' ? -1 : 1));
  return { path: dir.path, entries, truncated };
}

/** An existing file or directory that the patterns let the user see. */
async function locateVisible(scope: FsScope, path: unknown): Promise<Located & { info: Stats }> {
  const found = await locateExisting(scope, path);
  const info = await stat(found.real);
  if (info.isFile() && !scope.isIncluded(found.rel))
    throw new WorkerError('not_found', `${found.path} does not exist.`);
  return { ...found, info };
}

const field = (body: unknown, name: string): unknown => (isRecord(body) ? body[name] : undefined);

/** Builds the file receiver; the roots' real paths are resolved now. */
export async function createFsReceiver(config: FsConfig, pipes: PipeEnds): Promise<FsReceiver> {
  const scope = await createFsScope(config);
  const isTop = (path: unknown) => typeof path === 'string' && /^\/*$/.test(path);
  /** The directory a search starts from, or every root for "/". */
  const searchStarts = async (path: unknown): Promise<Located[]> => {
    const starts = isTop(path ?? '/')
      ? await Promise.all([...scope.roots.keys()].map((root) => locateExisting(scope, `/${root}`)))
      : [await locateExisting(scope, path)];
    for (const start of starts) await requireDirectory(start);
    return starts;
  };
  const roots = () =>
    [...scope.roots.keys()].sort().map((name) => ({ name, type: 'dir', size: 0, mtime: 0 }));

  const operations: Record<
    FsOperation,
    (body: unknown, reply: unknown, signal: AbortSignal) => Promise<Outcome>
  > = {
    async list(body) {
      const path = field(body, 'path') ?? '/';
      if (isTop(path)) return ok({ path: '/', entries: roots(), truncated: false });
      return ok(await listDirectory(scope, await locateExisting(scope, path), config.maxResults));
    },
    async stat(body) {
      const path = field(body, 'path');
      if (isTop(path)) return ok({ path: '/', type: 'dir', size: 0, mtime: 0 });
      const found = await locateVisible(scope, path);
      const type = typeOf(found.info) ?? 'other';
      return ok({
        path: found.path,
        type,
        size: type === 'file' ? found.info.size : 0,
        mtime: found.info.mtimeMs,
      });
    },
    async find(body) {
      const results: FoundEntry[] = [];
      let truncated = false;
      for (const start of await searchStarts(field(body, 'path'))) {
        const limits = { ...config, maxResults: config.maxResults - results.length };
        const found = await findByName(scope, start, field(body, 'pattern'), limits);
        results.push(...found.results);
        truncated ||= found.truncated;
      }
      return ok({ results, truncated });
    },
    async grep(body) {
      const matches: ContentMatch[] = [];
      let truncated = false;
      let skipped = 0;
      for (const start of await searchStarts(field(body, 'path'))) {
        const limits = { ...config, maxResults: config.maxResults - matches.length };
        const found = await findByContent(scope, start, field(body, 'text'), field(body, 'pattern'), limits);
        matches.push(...found.matches);
        truncated ||= found.truncated;
        skipped += found.skipped;
      }
      return ok({ matches, truncated, skipped });
    },
    async download(body, reply, signal) {
      const found = await locateVisible(scope, field(body, 'path'));
      if (found.info.isDirectory()) {
        return startFolderDownload(scope, found, reply, pipes, signal, config.maxVisited);
      }
      if (!found.info.isFile())
        throw new WorkerError('bad_request', `${found.path} is not a file or a folder.`);
      return startDownload(found, reply, pipes, signal);
    },
    async upload(body, reply, signal) {
      const target = await locateEntry(scope, field(body, 'path'));
      if (!scope.isIncluded(target.rel)) {
        throw new WorkerError('forbidden', `${target.path} is not matched by the worker's include patterns.`);
      }
      const request = {
        size: field(body, 'size'),
        overwrite: field(body, 'overwrite'),
        reply,
        maxBytes: config.maxUploadBytes,
      };
      return receiveUpload(target, request, pipes, signal);
    },
    async mkdir(body) {
      const target = await locateEntry(scope, field(body, 'path'));
      if (target.exists) throw new WorkerError('conflict', `${target.path} exists already.`);
      await mkdir(target.real);
      return ok({ path: target.path });
    },
    async delete(body) {
      const target = await locateEntry(scope, field(body, 'path'));
      if (!target.exists) throw new WorkerError('not_found', `${target.path} does not exist.`);
      // The entry itself, never what a link points to: removing a link inside the root touches nothing else.
      const info = await lstat(target.real);
      if (info.isDirectory()) {
        await rmdir(target.real).catch((error: NodeJS.ErrnoException) => {
          throw error.code === 'ENOTEMPTY'
            ? new WorkerError(
                'conflict',
                `${target.path} is not empty; only files and empty directories are deleted.`,
              )
            : error;
        });
      } else {
        if (info.isFile() && !scope.isIncluded(target.rel))
          throw new WorkerError('not_found', `${target.path} does not exist.`);
        await unlink(target.real);
      }
      return ok({ path: target.path });
    },
  };

  return {
    operations: config.operations,
    roots: [...scope.roots.keys()].sort(),
    handle: (operation, body, reply, signal) => operations[operation](body, reply, signal),
  };
}
