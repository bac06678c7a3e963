// WAL checkpoints on a worker thread: copying the WAL into the database file ends with an fsync, which
// on a busy disk takes tens of milliseconds; on the main thread every request would wait for it.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * Often enough that the WAL stays a few MiB under a burst of writes (a purge rewrites thousands of pages a
 * second), so that the main connection's own threshold is never reached; a checkpoint with nothing to
 * copy costs microseconds.
 */
const CHECKPOINT_INTERVAL_MS = 50;

// Plain CommonJS, evaluated by the worker: no build step, and it runs the same under tsx, vitest and dist.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { timeout: 1000 });
const checkpoint = () => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // Busy or failed: the next one catches up; the main connection's own threshold is the backstop.
  }
};
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', () => {
  clearInterval(timer);
  checkpoint();
  db.close();
  parentPort.close();
});
`;

export interface Checkpointer {
  /** Runs a last checkpoint and ends the thread. */
  stop(): Promise<void>;
}

/** Starts checkpointing the WAL of the database at `file` on its own connection and thread. */
export function startCheckpointer(file: string): Checkpointer {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { driver, file, intervalMs: CHECKPOINT_INTERVAL_MS },
  });
  worker.unref();
  worker.on('error', () => {}); // the main connection's own checkpoint threshold takes over
  return {
    async stop() {
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      // Held again while it stops: an unreferenced worker would let the process exit mid-shutdown.
      worker.ref();
      worker.postMessage('stop');
      await exited;
    },
  };
}
