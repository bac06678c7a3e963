// The request ids the worker has taken, each kept until its request expires, so that a replay is refused.

/** `new` the first time a rid is seen, `replayed` after; `full` when no more can be remembered. */
export type Admission = 'new' | 'replayed' | 'full';

export interface ReplayCache {
  /** Records `rid` until `expSeconds` (its request's `exp`) unless it was seen before. */
  admit(rid: string, expSeconds: number, nowMs: number): Admission;
  readonly size: number;
}

/** Expired ids are dropped at most this often, so that admitting stays O(1) most of the time. */
const PRUNE_INTERVAL_MS = 1000;

/**
 * A cache of at most `maxEntries` ids. When it is full of unexpired ids, new requests are refused rather
 * than forgetting one early: forgetting would let that one be replayed.
 */
export function createReplayCache(maxEntries: number): ReplayCache {
  const seen = new Map<string, number>();
  let prunedAt = 0;
  const prune = (nowMs: number) => {
    prunedAt = nowMs;
    for (const [rid, expMs] of seen) if (expMs <= nowMs) seen.delete(rid);
  };
  return {
    admit(rid, expSeconds, nowMs) {
      if (nowMs - prunedAt >= PRUNE_INTERVAL_MS || seen.size >= maxEntries) prune(nowMs);
      const expMs = seen.get(rid);
      if (expMs !== undefined && expMs > nowMs) return 'replayed';
      if (seen.size >= maxEntries) return 'full';
      seen.set(rid, expSeconds * 1000);
      return 'new';
    },
    get size() {
      return seen.size;
    },
  };
}
