// Exponential backoff with jitter for a relay that is away, a wait that a probe of the relay cuts short, and a sleep.

/** Delays that double from `minMs` to `maxMs` with each failure, until `reset()` after a success. */
export interface Backoff {
  /** The delay before the next attempt; counts a failure. */
  next(): number;
  reset(): void;
}

export function createBackoff({ minMs, maxMs }: { minMs: number; maxMs: number }): Backoff {
  let failures = 0;
  return {
    next() {
      const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(failures++, 30));
      // Jitter in the upper half, so that workers cut off together do not all come back at once.
      return ceiling / 2 + (Math.random() * ceiling) / 2;
    },
    reset() {
      failures = 0;
    },
  };
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * How often a relay that is away is asked whether it is back. A probe is one small request (a refused
 * connection while the relay is down), so the worker is back within about this long of the relay's return,
 * however long the backoff grew.
 */
export const PROBE_INTERVAL_MS = 500;

/** Asks the relay whether it answers; true when it does. Never throws. */
export type RelayProbe = (signal: AbortSignal) => Promise<boolean>;

/**
 * Waits up to `ms` before the next full attempt, but asks `probe` every {@link PROBE_INTERVAL_MS} whether the
 * relay answers again: true as soon as it does, false when the wait ran out (or `signal` aborted).
 */
export async function waitForRelay(ms: number, probe: RelayProbe, signal: AbortSignal): Promise<boolean> {
  const until = Date.now() + ms;
  for (let left = ms; left > 0 && !signal.aborted; left = until - Date.now()) {
    const step = Math.ceil(Math.min(left, PROBE_INTERVAL_MS));
    const started = Date.now();
    // A probe is cut at the step's length: a relay that holds the connection is not back.
    if (await probe(AbortSignal.any([signal, AbortSignal.timeout(step)]))) return true;
    await sleep(step - (Date.now() - started), signal);
  }
  return false;
}
