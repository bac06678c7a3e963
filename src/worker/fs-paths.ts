// Request paths mapped into the configured roots: nothing outside a root is reached, whatever the path or links say.
import { lstat, realpath } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import picomatch from 'picomatch';
import { WorkerError } from '../../sdk/e2e/protocol.js';
import type { FsConfig } from './receiver-config.js';

/** The roots (by real path) and the include/exclude patterns, matched against paths relative to a root. */
export interface FsScope {
  roots: ReadonlyMap<string, string>;
  /** Whether the path, or a directory on the way to it, matches an exclude pattern. */
  isExcluded(rel: string): boolean;
  /** Whether a file at the path matches an include pattern (directories are always walked into). */
  isIncluded(rel: string): boolean;
}

/** An entry inside a root: its root, its path relative to the root, its real path and its request path. */
export interface Located {
  root: string;
  rootReal: string;
  rel: string;
  real: string;
  path: string;
}

const MAX_PATH_CHARS = 4096;

/** Resolves the roots to their real paths, so that containment is checked against what links lead to. */
export async function createFsScope(config: FsConfig): Promise<FsScope> {
  const roots = new Map<string, string>();
  for (const [name, dir] of config.roots) roots.set(name, await realpath(dir));
  const excluded = config.exclude.length ? picomatch(config.exclude, { dot: true }) : () => false;
  const included = picomatch(config.include, { dot: true });
  return {
    roots,
    isExcluded(rel) {
      if (rel === '') return false;
      const parts = rel.split('/');
      return parts.some((_, at) => excluded(parts.slice(0, at + 1).join('/')));
    },
    isIncluded: (rel) => included(rel),
  };
}

/** The request path of `rel` in `root`. */
export const requestPathOf = (root: string, rel: string) => `/${root}${rel ? `/${rel}` : ''}`;

/**
 * Splits a request path, "/" or "/<root>/<segments>", refusing anything that could name a place by other
 * means than walking down: "..", ".", backslashes and NUL. A leading "/" is the top of the roots, never "/"
 * of the machine: "/etc/passwd" asks for a root named "etc".
 */
export function splitRequestPath(value: unknown): { root?: string; segments: string[] } {
  if (typeof value !== 'string' || !value.startsWith('/') || value.length > MAX_PATH_CHARS) {
    throw new WorkerError('bad_request', 'A path must start with "/", such as /docs/report.txt.');
  }
  if (value.includes('\0') || value.includes('\\')) {
    throw new WorkerError('bad_request', 'A path may not contain backslashes or NUL characters.');
  }
  const [root, ...segments] = value.split('/').filter((segment) => segment !== '');
  if (root === '..' || root === '.' || segments.some((segment) => segment === '..' || segment === '.')) {
    throw new WorkerError('forbidden', 'A path may not contain "." or ".." segments.');
  }
  return root === undefined ? { segments: [] } : { root, segments };
}

const isInside = (rootReal: string, real: string) =>
  real === rootReal || real.startsWith(rootReal.endsWith(sep) ? rootReal : rootReal + sep);

const relOf = (rootReal: string, real: string) => relative(rootReal, real).split(sep).join('/');

function rootOf(scope: FsScope, path: string, root: string | undefined): string {
  if (root === undefined) {
    throw new WorkerError('bad_request', 'This needs a path inside a root, such as /docs/report.txt.');
  }
  const rootReal = scope.roots.get(root);
  if (rootReal === undefined) {
    throw new WorkerError('not_found', `${path} is not in any root; list "/" to see the roots.`);
  }
  return rootReal;
}

const notFound = (path: string) => new WorkerError('not_found', `${path} does not exist.`);

/**
 * An existing entry, links followed. Its real path must be inside its root, and neither the path asked for
 * nor the one links lead to may be excluded (excluded entries are reported as missing).
 */
export async function locateExisting(scope: FsScope, path: unknown): Promise<Located> {
  const { root, segments } = splitRequestPath(path);
  const shown = requestPathOf(root ?? '', segments.join('/'));
  const rootReal = rootOf(scope, shown, root);
  let real: string;
  try {
    real = await realpath(join(rootReal, ...segments));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM')
      throw new WorkerError('forbidden', `${shown} may not be read.`);
    throw notFound(shown);
  }
  if (!isInside(rootReal, real)) throw new WorkerError('forbidden', `${shown} leads outside its root.`);
  const rel = segments.join('/');
  if (scope.isExcluded(rel) || scope.isExcluded(relOf(rootReal, real))) throw notFound(shown);
  return { root: root as string, rootReal, rel, real, path: shown };
}

/**
 * An entry to create or remove by name: its parent must exist inside the root (links followed), and the entry
 * itself is not followed, so a link there is the link, never where it points. `link` tells if it is one.
 */
export async function locateEntry(
  scope: FsScope,
  path: unknown,
): Promise<Located & { exists: boolean; link: boolean }> {
  const { root, segments } = splitRequestPath(path);
  const name = segments.at(-1);
  if (root === undefined || name === undefined) {
    throw new WorkerError('forbidden', 'Roots are set by the worker and cannot be created or removed.');
  }
  const parent = await locateExisting(scope, requestPathOf(root, segments.slice(0, -1).join('/')));
  const real = join(parent.real, name);
  const rel = segments.join('/');
  const shown = requestPathOf(root, rel);
  if (scope.isExcluded(rel) || scope.isExcluded(relOf(parent.rootReal, real))) {
    throw new WorkerError('forbidden', `${shown} is excluded by the worker's patterns.`);
  }
  const info = await lstat(real).catch(() => undefined);
  return {
    ...parent,
    rel,
    real,
    path: shown,
    exists: info !== undefined,
    link: info?.isSymbolicLink() ?? false,
  };
}
