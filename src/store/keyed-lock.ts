// Serialises async work per key inside one process: the atomicity of the embedded stores (DESIGN §3).

/** Runs `task` after every earlier task of the same key has settled. */
export type KeyedLock = <T>(key: string, task: () => Promise<T>) => Promise<T>;

/** Builds a lock whose bookkeeping is dropped as soon as a key has no task waiting. */
export function createKeyedLock(): KeyedLock {
  const tails = new Map<string, Promise<unknown>>();
  return async (key, task) => {
    const previous = tails.get(key) ?? Promise.resolve();
    const run = previous.then(task);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    tails.set(key, tail);
    try {
      return await run;
    } finally {
      if (tails.get(key) === tail) tails.delete(key);
    }
  };
}
