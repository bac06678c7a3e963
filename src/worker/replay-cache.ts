// The request ids the worker has taken, each kept until its request expires (and across restarts), so that a replay is refused.
import { closeSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';

/** `new` the first time a rid is seen, `replayed` after; `full` when no more can be remembered. */
export type Admission = 'new' | 'replayed' | 'full';

export interface ReplayCache {
  /** Records `rid` until `expSeconds` (its request's `exp`) unless it was seen before. */
  admit(rid: string, expSeconds: number, nowMs: number): Admission;
  readonly size: number;
  /** Closes the journal file, if any. */
  close(): void;
}

/** Expired ids are dropped at most this often, so that admitting stays O(1) most of the time. */
const PRUNE_INTERVAL_MS = 1000;

/**
 * A cache of at most `maxEntries` ids. When it is full of unexpired ids, new requests are refused rather
 * than forgetting one early: forgetting would let that one be replayed.
 *
 * With `journal` (a file beside the worker's key file) every admitted id is appended to it, before the
 * request is carried out, and the ids still valid are read back on start: a restarted worker refuses a
 * replay as the running one did. The file is rewritten with only the live ids once it holds twice as many
 * lines as the cache, so it stays within about 2 × `maxEntries` lines of 60 bytes.
 */
export function createReplayCache(maxEntries: number, journal?: string, nowMs = Date.now()): ReplayCache {
  const seen = new Map<string, number>();
  let prunedAt = 0;
  const prune = (now: number) => {
    prunedAt = now;
    for (const [rid, expMs] of seen) if (expMs <= now) seen.delete(rid);
  };

  let fd: number | undefined;
  let lines = 0;
  if (journal) {
    for (const line of readJournal(journal)) {
      const [rid, exp] = line.split(' ');
      const expMs = Number(exp) * 1000;
      if (rid && expMs > nowMs && seen.size < maxEntries) seen.set(rid, expMs);
    }
    rewrite(journal, seen);
    lines = seen.size;
    fd = openSync(journal, 'a', 0o600);
  }
  const record = (rid: string, expSeconds: number) => {
    if (fd === undefined || !journal) return;
    // Synchronous: the id is on disk before the request is carried out, so a crash cannot let it be replayed.
    writeSync(fd, `${rid} ${expSeconds}\n`);
    if (++lines > 2 * Math.max(seen.size, 1024)) {
      closeSync(fd);
      rewrite(journal, seen);
      lines = seen.size;
      fd = openSync(journal, 'a', 0o600);
    }
  };

  return {
    admit(rid, expSeconds, now) {
      if (now - prunedAt >= PRUNE_INTERVAL_MS || seen.size >= maxEntries) prune(now);
      const expMs = seen.get(rid);
      if (expMs !== undefined && expMs > now) return 'replayed';
      if (seen.size >= maxEntries) return 'full';
      seen.set(rid, expSeconds * 1000);
      record(rid, expSeconds);
      return 'new';
    },
    get size() {
      return seen.size;
    },
    close() {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}

/** The journal's lines; none when it does not exist yet. */
function readJournal(path: string): string[] {
  try {
    return readFileSync(path, 'utf8').split('\n');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

/** Writes the live ids to a new file and puts it in place whole. */
function rewrite(path: string, seen: Map<string, number>): void {
  const temporary = `${path}.tmp`;
  const fd = openSync(temporary, 'w', 0o600);
  try {
    let text = '';
    for (const [rid, expMs] of seen) text += `${rid} ${expMs / 1000}\n`;
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
}
