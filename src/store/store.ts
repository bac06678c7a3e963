// The storage port: what the relay needs from a store, with one adapter per backend (Keyv, Redis).
import { errors } from '../errors.js';

/** Queue figures for `?stats`. */
export interface QueueStats {
  /** Items queued and not expired. */
  count: number;
  /** Milliseconds until the newest item expires; 0 when none. */
  ttlMs: number;
}

/** An item sent on a live stream, with the id the client acknowledges through Last-Event-ID. */
export interface LogEntry {
  id: number;
  item: string;
}

/**
 * Everything of one key pair lives under its public key (DESIGN §3). Values are JSON text, stored and
 * returned as given. Every method throws `errors.storeUnavailable` when the backend cannot be reached.
 */
export interface Store {
  /** Appends to the aggregator queue; false (nothing stored) when `max` live items are queued already. */
  appendToQueue(pub: string, item: string, ttlMs: number, max: number): Promise<boolean>;
  /**
   * Like appendToQueue, unless the key pair has a webhook: then nothing is stored and its record is
   * returned, in the same round trip (a public post's common case costs one).
   */
  appendUnlessHooked(
    pub: string,
    item: string,
    ttlMs: number,
    max: number,
  ): Promise<boolean | { hook: string }>;
  /** Removes and returns every live queued item, oldest first, in one atomic step. */
  drainQueue(pub: string): Promise<string[]>;
  queueStats(pub: string): Promise<QueueStats>;

  /** Stores (replaces) the published value. */
  publishValue(pub: string, value: string, ttlMs: number): Promise<void>;
  readValue(pub: string): Promise<string | undefined>;
  /** Restarts the value's TTL; false when nothing is published. */
  renewValue(pub: string, ttlMs: number): Promise<boolean>;
  deleteValue(pub: string): Promise<void>;
  /** Milliseconds until the value expires; 0 when none. */
  valueTtl(pub: string): Promise<number>;

  /** Stores a one-to-one value; false (nothing stored) when `max` other uids hold one already. */
  putField(pub: string, uid: string, value: string, ttlMs: number, max: number): Promise<boolean>;
  /** Returns the value and removes it in one atomic step, so only one reader ever gets it. */
  takeField(pub: string, uid: string): Promise<string | undefined>;
  fieldTtl(pub: string, uid: string): Promise<number>;
  deleteField(pub: string, uid: string): Promise<void>;

  /**
   * Live delivery (SSE): moves every live queued item into the key pair's delivery log in one atomic
   * step, giving each an id greater than any id the log gave before; returns the moved entries. The log
   * keeps at most `max` entries for `ttlMs`, so a client that reconnects can resume.
   */
  moveToLog(pub: string, ttlMs: number, max: number): Promise<LogEntry[]>;
  /** Forgets log entries with id ≤ `ackedId` (the client has them) and returns the rest, oldest first. */
  readLog(pub: string, ackedId: number): Promise<LogEntry[]>;

  /** The webhook record of a key pair (opaque text), kept for `ttlMs`. */
  setHook(pub: string, record: string, ttlMs: number): Promise<void>;
  getHook(pub: string): Promise<string | undefined>;
  deleteHook(pub: string): Promise<void>;

  /** Releases connections and files. */
  close(): Promise<void>;
}

/** The store keys of one key pair (DESIGN §3); the hash tag keeps them on one Redis Cluster slot. */
export const storeKeys = (pub: string) => ({
  queue: `dr:{${pub}}:q`,
  value: `dr:{${pub}}:kv`,
  field: (uid: string) => `dr:{${pub}}:o:${uid}`,
  fieldIndex: `dr:{${pub}}:oi`,
  log: `dr:{${pub}}:log`,
  logSeq: `dr:{${pub}}:logseq`,
  hook: `dr:{${pub}}:hook`,
});

/** Log ids start from the clock (in µs) whenever a log is new, so they keep growing across expiries. */
export const firstLogId = (nowMs: number) => nowMs * 1000;

/** Wraps an adapter so that any failure of its backend surfaces as `errors.storeUnavailable` (a 503). */
export function withStoreErrors(store: Store, onError: (error: unknown) => void = () => {}): Store {
  const guarded = {} as Record<string, unknown>;
  for (const name of Object.keys(store) as (keyof Store)[]) {
    const method = store[name] as (...args: unknown[]) => Promise<unknown>;
    guarded[name] = async (...args: unknown[]) => {
      try {
        return await method(...args);
      } catch (error) {
        onError(error);
        throw errors.storeUnavailable(error);
      }
    };
  }
  return guarded as unknown as Store;
}
