// Exponential backoff with jitter for a relay that is away, and a sleep that an abort ends early.

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
