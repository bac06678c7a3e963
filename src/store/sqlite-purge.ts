// The embedded store's purge: expired rows go in small batches through the expiry indexes, and the freed
// pages go back to the file system, each step short enough that requests never wait long behind it.
import { setImmediate as yieldToRequests } from 'node:timers/promises';
import type { Database } from 'better-sqlite3';
import { EXPIRING_TABLES } from './sqlite-schema.js';

/** Once a minute: expired rows are invisible to reads anyway, the purge only gives the space back. */
const DEFAULT_PURGE_INTERVAL_MS = 60_000;
/** A batch should take about this long; the batch size follows (rows of blobs cost more than rows of JSON). */
const BATCH_TARGET_MS = 5;
const MIN_BATCH = 8;
const MAX_BATCH = 4096;
/** Pages handed back to the file system per step (1 MiB with 4 KiB pages). */
const VACUUM_PAGES_PER_STEP = 256;

export interface Purger {
  /** Runs one purge now (or joins the one running); resolves with the number of rows deleted. */
  purge(): Promise<number>;
  /** Stops the timer and waits for a running purge to finish. */
  stop(): Promise<void>;
}

/** Purges `db` every `intervalMs` (0: only when asked), measuring expiry with `now`. */
export function createPurger(
  db: Database,
  now: () => number,
  intervalMs = DEFAULT_PURGE_INTERVAL_MS,
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
    for (const table of EXPIRING_TABLES) {
      let batch = 256;
      for (;;) {
        if (stopped) return deleted;
        const started = performance.now();
        const { changes } = deleteExpired[table]?.run(cutoff, batch) ?? { changes: 0 };
        const tookMs = performance.now() - started;
        deleted += changes;
        if (changes < batch) break;
        batch = tookMs > BATCH_TARGET_MS ? Math.max(MIN_BATCH, batch >> 1) : Math.min(MAX_BATCH, batch << 1);
        await yieldToRequests();
      }
      await yieldToRequests();
    }
    while (!stopped && (freePages.get() as number) > 0) {
      db.pragma(`incremental_vacuum(${VACUUM_PAGES_PER_STEP})`);
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
