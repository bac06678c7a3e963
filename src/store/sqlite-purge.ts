// The embedded store's purge: expired rows go in small batches through the expiry indexes, and the freed
// pages go back to the file system, each step short enough that requests never wait long behind it.
import { setImmediate as yieldToRequests } from 'node:timers/promises';
import type { Database } from 'better-sqlite3';
import { EXPIRING_TABLES } from './sqlite-schema.js';

/** Once a minute: expired rows are invisible to reads anyway, the purge only gives the space back. */
const DEFAULT_PURGE_INTERVAL_MS = 60_000;
/**
 * A step (a batch of deletes, or of pages given back) should take about this long; its size follows, since
 * rows of blobs cost more than rows of JSON and a busy disk more than an idle one. Requests wait at most
 * one step.
 */
const STEP_TARGET_MS = 2;
const MIN_BATCH = 8;
const MAX_BATCH = 1024;
const MIN_PAGES = 16;
const MAX_PAGES = 1024;

/** The next step size: halved after a slow step, doubled after a quick one, within bounds. */
const nextSize = (size: number, tookMs: number, min: number, max: number) =>
  tookMs > STEP_TARGET_MS
    ? Math.max(min, size >> 1)
    : tookMs < STEP_TARGET_MS / 2
      ? Math.min(max, size << 1)
      : size;

export interface Purger {
  /** Runs one purge now (or joins the one running); resolves with the number of rows deleted. */
  purge(): Promise<number>;
  /** Stops the timer and waits for a running purge to finish. */
  stop(): Promise<void>;
}

/**
 * Purges `db` every `intervalMs` (0: only when asked), measuring expiry with `now`; `onStep` hears how
 * long each step held the thread (what a request may have waited), as `stepClock` (ms) measures it.
 */
export function createPurger(
  db: Database,
  now: () => number,
  intervalMs = DEFAULT_PURGE_INTERVAL_MS,
  onStep: (ms: number) => void = () => {},
  stepClock: () => number = () => performance.now(),
): Purger {
  const deleteExpired = Object.fromEntries(
    EXPIRING_TABLES.map((table) => [
      table,
      db.prepare(
        `DELETE FROM ${table} WHERE rowid IN (SELECT rowid FROM ${table} WHERE expires <= ? LIMIT ?)`,
      ),
    ]),
  );
  const freePages = db.prepare('SELECT freelist_count FROM pragma_freelist_count()').pluck();
  let running: Promise<number> | undefined;
  let stopped = false;

  const run = async (): Promise<number> => {
    let deleted = 0;
    const cutoff = now();
    let batch = 64;
    for (const table of EXPIRING_TABLES) {
      for (;;) {
        if (stopped) return deleted;
        const started = stepClock();
        const { changes } = deleteExpired[table]?.run(cutoff, batch) ?? { changes: 0 };
        const tookMs = stepClock() - started;
        onStep(tookMs);
        deleted += changes;
        if (changes < batch) break;
        batch = nextSize(batch, tookMs, MIN_BATCH, MAX_BATCH);
        await yieldToRequests();
      }
      await yieldToRequests();
    }
    let pages = 64;
    while (!stopped && (freePages.get() as number) > 0) {
      const started = stepClock();
      db.pragma(`incremental_vacuum(${pages})`);
      const tookMs = stepClock() - started;
      onStep(tookMs);
      pages = nextSize(pages, tookMs, MIN_PAGES, MAX_PAGES);
      await yieldToRequests();
    }
    return deleted;
  };

  const purge = () => {
    running ??= run().finally(() => {
      running = undefined;
    });
    return running;
  };
  const timer =
    intervalMs > 0
      ? setInterval(() => {
          purge().catch(() => {}); // a failed purge leaves rows for the next one; reads ignore them anyway
        }, intervalMs).unref()
      : undefined;

  return {
    purge,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running?.catch(() => {});
    },
  };
}
