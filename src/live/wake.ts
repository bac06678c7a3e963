// A wake-up latch for one waiter: set by notifications, awaited with a deadline and an abort signal.

export interface Wake {
  /** Marks that something arrived; wakes the waiter if it waits. */
  set(): void;
  /** Forgets earlier wake-ups: call before looking at the store, so none that follows is missed. */
  reset(): void;
  /** Resolves at the next wake-up (at once if one came since reset), after `ms`, or on abort. */
  wait(ms: number, signal: AbortSignal): Promise<void>;
}

export function createWake(): Wake {
  let pending = false;
  let release: (() => void) | undefined;
  return {
    set() {
      pending = true;
      release?.();
    },
    reset() {
      pending = false;
    },
    wait(ms, signal) {
      if (pending || signal.aborted) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          release = undefined;
          resolve();
        };
        const timer = setTimeout(done, ms);
        signal.addEventListener('abort', done, { once: true });
        release = done;
      });
    },
  };
}
