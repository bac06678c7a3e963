// Find by name and by content: a breadth-first walk below a directory of a root that follows no links, capped.
import type { Dirent } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import picomatch from 'picomatch';
import { WorkerError } from '../../sdk/e2e/protocol.js';
import { type FsScope, type Located, requestPathOf } from './fs-paths.js';

/** The caps of one search (FsConfig's). */
export interface SearchLimits {
  maxResults: number;
  maxVisited: number;
  maxSearchFileBytes: number;
}

/** An entry found by name. */
export interface FoundEntry {
  path: string;
  type: 'file' | 'dir';
}

/** A line that holds the text searched for. */
export interface ContentMatch {
  path: string;
  line: number;
  text: string;
}

const MAX_PATTERN_CHARS = 256;
const MAX_TEXT_CHARS = 1024;
/** A line shown in a match is cut here: the point is to recognise the file, not to read it. */
const MAX_LINE_CHARS = 200;
/** A NUL in the first bytes marks a binary file, which a text search skips (as grep -I does). */
const BINARY_SNIFF_BYTES = 8000;

interface Walked {
  rel: string;
  real: string;
  entry: Dirent;
}

/**
 * Entries below `start`, parents first. Links are never followed: they could lead out of the root or in
 * circles. Excluded entries and what is below them are skipped. `budget.truncated` tells if it stopped early.
 */
async function* walk(
  scope: FsScope,
  start: Located,
  budget: { left: number; truncated: boolean },
): AsyncGenerator<Walked> {
  const queue = [{ rel: start.rel, real: start.real }];
  for (let dir = queue.shift(); dir; dir = queue.shift()) {
    const entries = await readdir(dir.real, { withFileTypes: true }).catch(() => [] as Dirent[]);
    for (const entry of entries) {
      if (budget.left-- <= 0) {
        budget.truncated = true;
        return;
      }
      const rel = dir.rel ? `${dir.rel}/${entry.name}` : entry.name;
      if (entry.isSymbolicLink() || scope.isExcluded(rel)) continue;
      const real = join(dir.real, entry.name);
      if (entry.isDirectory()) queue.push({ rel, real });
      yield { rel, real, entry };
    }
  }
}

function checkText(value: unknown, what: string, max: number): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) {
    throw new WorkerError('bad_request', `The ${what} must be a text of 1 to ${max} characters.`);
  }
  return value;
}

/** A glob matched case-insensitively against names, or against paths below the start when it has a "/". */
function nameMatcher(pattern: string): (rel: string) => boolean {
  return picomatch(pattern, { dot: true, basename: true, nocase: true });
}

const relBelow = (start: Located, rel: string) => (start.rel ? rel.slice(start.rel.length + 1) : rel);

/** Files (that the include patterns allow) and directories below `start` whose name matches `pattern`. */
export async function findByName(
  scope: FsScope,
  start: Located,
  pattern: unknown,
  limits: SearchLimits,
): Promise<{ results: FoundEntry[]; truncated: boolean }> {
  const matches = nameMatcher(checkText(pattern, 'pattern', MAX_PATTERN_CHARS));
  const budget = { left: limits.maxVisited, truncated: false };
  const results: FoundEntry[] = [];
  for await (const { rel, entry } of walk(scope, start, budget)) {
    const isDir = entry.isDirectory();
    if (!isDir && !(entry.isFile() && scope.isIncluded(rel))) continue;
    if (!matches(relBelow(start, rel))) continue;
    if (results.length === limits.maxResults) return { results, truncated: true };
    results.push({ path: requestPathOf(start.root, rel), type: isDir ? 'dir' : 'file' });
  }
  return { results, truncated: budget.truncated };
}

/**
 * Lines holding `text` in the files below `start` whose name matches `pattern` (all by default). Files over
 * the size cap and binary files are skipped and counted.
 */
export async function findByContent(
  scope: FsScope,
  start: Located,
  text: unknown,
  pattern: unknown,
  limits: SearchLimits,
): Promise<{ matches: ContentMatch[]; truncated: boolean; skipped: number }> {
  const needle = checkText(text, 'text', MAX_TEXT_CHARS);
  const matches =
    pattern === undefined ? () => true : nameMatcher(checkText(pattern, 'pattern', MAX_PATTERN_CHARS));
  const budget = { left: limits.maxVisited, truncated: false };
  const found: ContentMatch[] = [];
  let skipped = 0;
  for await (const { rel, real, entry } of walk(scope, start, budget)) {
    if (!entry.isFile() || !scope.isIncluded(rel) || !matches(relBelow(start, rel))) continue;
    const size = (await stat(real).catch(() => undefined))?.size ?? Number.POSITIVE_INFINITY;
    if (size > limits.maxSearchFileBytes) {
      skipped++;
      continue;
    }
    const bytes = await readFile(real).catch(() => undefined);
    if (!bytes || bytes.indexOf(needle) < 0) continue;
    if (bytes.subarray(0, BINARY_SNIFF_BYTES).includes(0)) {
      skipped++;
      continue;
    }
    const lines = bytes.toString('utf8').split(/\r?\n/);
    for (let at = 0; at < lines.length; at++) {
      const line = lines[at] as string;
      if (!line.includes(needle)) continue;
      if (found.length === limits.maxResults) return { matches: found, truncated: true, skipped };
      found.push({ path: requestPathOf(start.root, rel), line: at + 1, text: line.slice(0, MAX_LINE_CHARS) });
    }
  }
  return { matches: found, truncated: budget.truncated, skipped };
}
