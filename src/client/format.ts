// Human-readable output of `deadrop call`: sizes, rates, listings, search results and command results.
import type { WorkerOffer } from '../../sdk/e2e/protocol.js';
import type { ExecResult } from '../worker/exec-receiver.js';
import type { ContentMatch, FoundEntry } from '../worker/fs-search.js';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** `1536` → `1.5 KiB`. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${UNITS[unit]}`;
}

const date = (ms: number) => (ms ? new Date(ms).toISOString().slice(0, 16).replace('T', ' ') : '');

/** A directory listing: one line per entry, directories first, with size and modification time. */
export function formatListing(listing: {
  path: string;
  entries: { name: string; type: string; size: number; mtime: number }[];
  truncated: boolean;
}): string {
  const lines = listing.entries.map(
    (entry) =>
      `${entry.type === 'dir' ? 'd' : '-'}  ${(entry.type === 'dir' ? '' : formatBytes(entry.size)).padStart(10)}  ${date(entry.mtime).padEnd(16)}  ${entry.name}${entry.type === 'dir' ? '/' : ''}`,
  );
  if (listing.truncated) lines.push('… (more entries than the worker lists at once)');
  return lines.join('\n');
}

/** Paths found by name, one per line. */
export function formatFound(found: { results: FoundEntry[]; truncated: boolean }): string {
  const lines = found.results.map((entry) => `${entry.path}${entry.type === 'dir' ? '/' : ''}`);
  if (found.truncated) lines.push("… (the search stopped at the worker's limit)");
  return lines.join('\n');
}

/** Lines found by content, as grep prints them: path:line:text. */
export function formatMatches(found: {
  matches: ContentMatch[];
  truncated: boolean;
  skipped: number;
}): string {
  const lines = found.matches.map((match) => `${match.path}:${match.line}:${match.text}`);
  if (found.truncated) lines.push("… (the search stopped at the worker's limit)");
  if (found.skipped) lines.push(`(${found.skipped} binary or too large files were not searched)`);
  return lines.join('\n');
}

/** How a command ended, for stderr when it did not end well. */
export function describeExit(result: ExecResult): string | undefined {
  if (result.timedOut) return `${result.name}: stopped after its timeout`;
  if (result.signal) return `${result.name}: ended by ${result.signal}`;
  if (result.truncated) return `${result.name}: output cut at the worker's limit`;
  return result.exitCode === 0 ? undefined : `${result.name}: exit code ${result.exitCode}`;
}

/** What the user may use on a worker (`info`): roots and file operations, commands with their parameters, targets. */
export function formatOffer(offer: WorkerOffer): string {
  const lines = [`worker ${offer.id}`];
  if (offer.fs) {
    lines.push(
      `fs: ${offer.fs.operations.join(', ')} in ${offer.fs.roots.map((root) => `/${root}`).join(', ')}`,
    );
  }
  for (const command of offer.exec) {
    const params = command.params.map(
      (param) => `${param.name}=${param.values ? param.values.join('|') : `<${param.pattern}>`}`,
    );
    lines.push(`exec ${command.name}${params.length ? ` ${params.join(' ')}` : ''}`);
  }
  for (const target of offer.wol) lines.push(`wol ${target}`);
  if (lines.length === 1) lines.push('(nothing is granted to you here)');
  return lines.join('\n');
}
