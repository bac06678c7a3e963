// The storage port: what the relay needs from a store, with one adapter per backend (SQLite, Redis).

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

/** A one-to-one value: JSON text, or the bytes of a blob (`application/octet-stream`). */
export type FieldValue = string | Uint8Array;

/** Why a write stored nothing; whatever was stored before is untouched. */
export type Refusal =
  | { refused: 'queue_full' }
  | { refused: 'fields_full' }
  /** The key pair's blobs would pass its byte quota; `used` is what its other blobs hold. */
  | { refused: 'quota_full'; used: number }
  /** The store as a whole is at its bound (DEADROP_STORE_MAX, or Redis's maxmemory). */
  | { refused: 'store_full' };

/** The outcome of a bounded write. */
export type WriteResult = 'stored' | Refusal;

/** The bounds of one key pair's one-to-one values. */
export interface FieldLimits {
  /** Uids holding a value at once. */
  maxFields: number;
  /** Bytes of blobs at once. */
  blobQuota: number;
}

/**
 * Everything of one key pair lives under its public key (DESIGN §3). JSON values are text, stored and
 * returned as given. Every operation is atomic: no interleaving of callers, on any number of relay
 * instances sharing the store, loses or duplicates anything. Every method throws
 * `errors.storeUnavailable` when the backend cannot be reached.
 */
export interface Store {
  /** Appends to the aggregator queue unless `max` live items are queued already. */
  appendToQueue(pub: string, item: string, ttlMs: number, max: number): Promise<WriteResult>;
  /**
   * Like appendToQueue, unless the key pair has a webhook: then nothing is stored and its record is
   * returned, in the same step (a public post's common case costs one).
   */
  appendUnlessHooked(
    pub: string,
    item: string,
    ttlMs: number,
    max: number,
  ): Promise<WriteResult | { hook: string }>;
  /** Removes and returns every live queued item, oldest first. */
  drainQueue(pub: string): Promise<string[]>;
  queueStats(pub: string): Promise<QueueStats>;

  /** Stores (replaces) the published value. */
  publishValue(pub: string, value: string, ttlMs: number): Promise<WriteResult>;
  readValue(pub: string): Promise<string | undefined>;
  /** Restarts the value's TTL; false when nothing is published. */
  renewValue(pub: string, ttlMs: number): Promise<boolean>;
  deleteValue(pub: string): Promise<void>;
  /** Milliseconds until the value expires; 0 when none. */
  valueTtl(pub: string): Promise<number>;

  /** Stores (replaces) a one-to-one value within the key pair's bounds. */
  putField(
    pub: string,
    uid: string,
    value: FieldValue,
    ttlMs: number,
    limits: FieldLimits,
  ): Promise<WriteResult>;
  /** Returns the value and removes it, so only one reader ever gets it. */
  takeField(pub: string, uid: string): Promise<FieldValue | undefined>;
  /** Returns the value and leaves it in place: the owner's read (a drop's receiver that holds the key). */
  readField(pub: string, uid: string): Promise<FieldValue | undefined>;
  fieldTtl(pub: string, uid: string): Promise<number>;
  deleteField(pub: string, uid: string): Promise<void>;
  /** Bytes the key pair's live blobs hold (what its quota counts). */
  blobBytes(pub: string): Promise<number>;

  /**
   * Live delivery (SSE): moves every live queued item into the key pair's delivery log, giving each an
   * id greater than any id the log gave before; returns the moved entries. The log keeps at most `max`
   * entries, each for `keepMs` (the resume window), so a client that reconnects can resume.
   */
  moveToLog(pub: string, keepMs: number, max: number): Promise<LogEntry[]>;
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
  /** uid → expiry (sorted set): bounds how many one-to-one values a key pair holds. */
  fieldIndex: `dr:{${pub}}:oi`,
  /** uid → bytes (hash) of the key pair's blobs: its byte quota. */
  blobSizes: `dr:{${pub}}:ob`,
  log: `dr:{${pub}}:log`,
  logSeq: `dr:{${pub}}:logseq`,
  hook: `dr:{${pub}}:hook`,
});

/** Log ids start from the clock (in µs) whenever a log is new, so they keep growing across expiries. */
export const firstLogId = (nowMs: number) => nowMs * 1000;
