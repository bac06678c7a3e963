// The embedded store: one SQLite file through better-sqlite3. Every operation runs synchronously on the
// process's one connection, so each is atomic by construction (DESIGN §3); the writes of one turn of the
// event loop commit together (sqlite-batch.ts), and each is acknowledged only once committed.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { type DataDirLock, lockDataDir } from './data-dir-lock.js';
import { createWriteBatcher } from './sqlite-batch.js';
import { startCheckpointer } from './sqlite-checkpointer.js';
import { createPurger, type Purger } from './sqlite-purge.js';
import { SCHEMA } from './sqlite-schema.js';
import { type FieldValue, firstLogId, type LogEntry, type Store, type WriteResult } from './store.js';

/** The file the store lives in, inside DEADROP_DATA_DIR. */
export const SQLITE_FILE = 'relay.db';
/** What the store of versions before 0.2 (Keyv on @keyv/sqlite) wrote; its data is not carried over. */
const LEGACY_FILE = 'deadrop.sqlite';
/** How long a statement waits for the checkpoint thread's brief locks. */
const LOCK_WAIT_MS = 5000;
/** How stale the page count behind DEADROP_STORE_MAX may be; writes since are counted on top. */
const MEASURE_MS = 250;
/** A page cache of 32 MiB: the working set of queues and values, not of blobs. */
const CACHE_KIB = 32_768;
/** After a checkpoint the WAL file is cut back to this, so a burst of blobs does not keep it large. */
const WAL_SIZE_LIMIT = 64 * 1024 * 1024;
/** Reads map the file rather than copy it through read() calls: 256 MiB of address space, not of memory. */
const MMAP_BYTES = 256 * 1024 * 1024;
/** 64 MiB of WAL (in 4 KiB pages): the main connection checkpoints itself only past this. */
const BACKSTOP_CHECKPOINT_PAGES = 16_384;
/** Queues whose row bound is kept (about 10 MB at most); past it the bounds are dropped and counted anew. */
const KNOWN_QUEUES = 100_000;

export interface SqliteStoreOptions {
  /** The clock expiry is measured with (tests move it); Date.now by default. */
  now?: () => number;
  /** Bytes of pages in use past which writes are refused (DEADROP_STORE_MAX); none by default. */
  maxBytes?: number;
  /** How often expired rows are purged; 0 turns the timer off (tests call `purge` themselves). */
  purgeIntervalMs?: number;
  /** Hears how long each purge step held the thread (tests, metrics). */
  onPurgeStep?: (ms: number) => void;
  /** What purge steps are timed with, in ms (their size follows it); performance.now by default. */
  purgeStepClock?: () => number;
}

/** The SQLite store, plus what operations and tests need beyond the port. */
export interface SqliteStore extends Store {
  /** Deletes every expired row in small batches and gives the space back to the file system. */
  purge(): Promise<number>;
  /** Pages in use × page size: what the data takes in the file, free pages excluded. */
  usedBytes(): number;
  /** True when a legacy (Keyv) file sits in the data dir; its data was not carried over. */
  readonly legacyFileFound: boolean;
}

/** Opens the store in `dataDir` (made if missing), or in memory for `':memory:'`. */
export function openSqliteStore(dataDir: string, options: SqliteStoreOptions = {}): SqliteStore {
  const inMemory = dataDir === ':memory:';
  if (!inMemory) mkdirSync(dataDir, { recursive: true });
  const file = inMemory ? ':memory:' : join(dataDir, SQLITE_FILE);
  let lock: DataDirLock | undefined;
  let db: Database.Database;
  try {
    // One process owns the data dir, so this connection is the only writer there is.
    lock = inMemory ? undefined : lockDataDir(dataDir);
    db = new Database(file, { timeout: LOCK_WAIT_MS });
  } catch (error) {
    lock?.release();
    throw new Error(
      `Cannot open ${file}: ${(error as Error).message}. Only one relay process may use a data dir (DEADROP_DATA_DIR); run more instances on the Redis store.`,
      { cause: error },
    );
  }
  // Before any table exists (a store made earlier keeps its own): 16 KiB pages make a 1 MiB blob 64 overflow
  // pages rather than 256, which halves what storing, reading and deleting one costs, for ~3 µs more per small write.
  db.pragma('page_size = 16384');
  // Before any table exists: freed pages can then be given back to the file system (purge).
  db.pragma('auto_vacuum = INCREMENTAL');
  // WAL with synchronous=NORMAL: a commit costs no fsync; a killed process loses nothing committed,
  // a power cut may lose the last commits before the latest checkpoint (README: Stores).
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma(`cache_size = -${CACHE_KIB}`);
  db.pragma(`mmap_size = ${MMAP_BYTES}`);
  db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT}`);
  // Checkpoints run on a thread of their own; this threshold only catches up if that thread falls behind.
  if (!inMemory) db.pragma(`wal_autocheckpoint = ${BACKSTOP_CHECKPOINT_PAGES}`);
  db.exec(SCHEMA);
  const checkpointer = inMemory ? undefined : startCheckpointer(file);
  const now = options.now ?? (() => Date.now());

  const sql = {
    countQueue: db.prepare('SELECT count(*) FROM queue WHERE pub = ? AND expires > ?').pluck(),
    countQueueRows: db.prepare('SELECT count(*) FROM queue WHERE pub = ?').pluck(),
    insertItem: db.prepare('INSERT INTO queue (pub, item, expires) VALUES (?, ?, ?)'),
    takeQueue: db.prepare('DELETE FROM queue WHERE pub = ? RETURNING id, item, expires').raw(),
    queueStats: db.prepare(
      'SELECT count(*) AS count, max(expires) AS newest FROM queue WHERE pub = ? AND expires > ?',
    ),

    putValue: db.prepare(
      'INSERT INTO value (pub, value, expires) VALUES (?, ?, ?) ON CONFLICT (pub) DO UPDATE SET value = excluded.value, expires = excluded.expires',
    ),
    readValue: db.prepare('SELECT value FROM value WHERE pub = ? AND expires > ?').pluck(),
    renewValue: db.prepare('UPDATE value SET expires = ? WHERE pub = ? AND expires > ?'),
    deleteValue: db.prepare('DELETE FROM value WHERE pub = ?'),
    valueExpires: db.prepare('SELECT expires FROM value WHERE pub = ? AND expires > ?').pluck(),

    otherFields: db.prepare(
      'SELECT count(*) AS count, coalesce(sum(size), 0) AS bytes FROM field WHERE pub = ? AND uid != ? AND expires > ?',
    ),
    putField: db.prepare(
      'INSERT INTO field (pub, uid, value, size, expires) VALUES (?, ?, ?, ?, ?) ON CONFLICT (pub, uid) DO UPDATE SET value = excluded.value, size = excluded.size, expires = excluded.expires',
    ),
    takeField: db.prepare('DELETE FROM field WHERE pub = ? AND uid = ? RETURNING value, expires'),
    readField: db.prepare('SELECT value FROM field WHERE pub = ? AND uid = ? AND expires > ?').pluck(),
    // The unique index would be chosen, and it leads to the row: past the blob, to its expiry.
    fieldExpires: db
      .prepare('SELECT expires FROM field INDEXED BY field_sizes WHERE pub = ? AND uid = ? AND expires > ?')
      .pluck(),
    deleteField: db.prepare('DELETE FROM field WHERE pub = ? AND uid = ?'),
    blobBytes: db.prepare('SELECT coalesce(sum(size), 0) FROM field WHERE pub = ? AND expires > ?').pluck(),

    nextLogId: db.prepare('SELECT next FROM log_seq WHERE pub = ? AND expires > ?').pluck(),
    putLogSeq: db.prepare(
      'INSERT INTO log_seq (pub, next, expires) VALUES (?, ?, ?) ON CONFLICT (pub) DO UPDATE SET next = excluded.next, expires = excluded.expires',
    ),
    insertLog: db.prepare('INSERT INTO log (pub, id, item, expires) VALUES (?, ?, ?, ?)'),
    trimLog: db.prepare('DELETE FROM log WHERE pub = ? AND id < ?'),
    ackLog: db.prepare('DELETE FROM log WHERE pub = ? AND id <= ?'),
    readLog: db.prepare('SELECT id, item FROM log WHERE pub = ? AND expires > ? ORDER BY id'),

    putHook: db.prepare(
      'INSERT INTO hook (pub, record, expires) VALUES (?, ?, ?) ON CONFLICT (pub) DO UPDATE SET record = excluded.record, expires = excluded.expires',
    ),
    getHook: db.prepare('SELECT record FROM hook WHERE pub = ? AND expires > ?').pluck(),
    deleteHook: db.prepare('DELETE FROM hook WHERE pub = ?'),

    pageCount: db.prepare('SELECT page_count FROM pragma_page_count()').pluck(),
    freePages: db.prepare('SELECT freelist_count FROM pragma_freelist_count()').pluck(),
  };
  const pageSize = db.pragma('page_size', { simple: true }) as number;

  const usedBytes = () => ((sql.pageCount.get() as number) - (sql.freePages.get() as number)) * pageSize;
  const { maxBytes } = options;
  // The page count is read at most every MEASURE_MS, and what was written since is added to it: exact
  // enough for a bound, and a write does not pay for two pragma reads.
  let measured = { at: Number.NEGATIVE_INFINITY, bytes: 0 };
  let writtenSince = 0;
  /** True when the store holds its bound: writes are refused, reads and deletes go on. */
  const full = () => {
    if (maxBytes === undefined) return false;
    const at = performance.now();
    if (at - measured.at >= MEASURE_MS || measured.bytes + writtenSince >= maxBytes) {
      measured = { at, bytes: usedBytes() };
      writtenSince = 0;
    }
    return measured.bytes + writtenSince >= maxBytes;
  };
  /**
   * Runs a write of about `bytes`; a disk that is full (SQLITE_FULL) refuses it like the bound does,
   * rather than failing.
   */
  const bounded = <T>(bytes: number, write: () => T): T | { refused: 'store_full' } => {
    if (full()) return { refused: 'store_full' };
    try {
      const result = write();
      writtenSince += bytes;
      return result;
    } catch (error) {
      if ((error as { code?: string }).code === 'SQLITE_FULL') return { refused: 'store_full' };
      throw error;
    }
  };

  /**
   * For queues seen lately, a bound on their rows (live or expired), so that an append to a queue far
   * from its bound skips counting its items, which costs as many steps as there are. The bound never
   * falls below the rows: only appends add rows and each adds one to it; a drain forgets its queue's;
   * the purge's deletions and a group that rolls back only leave it too high. Near the bound, the live
   * items are counted as before.
   */
  const queueRows = new Map<string, number>();
  const rememberRows = (pub: string, rows: number) => {
    if (queueRows.size >= KNOWN_QUEUES && !queueRows.has(pub)) queueRows.clear();
    queueRows.set(pub, rows);
  };
  const append = (pub: string, item: string, ttlMs: number, max: number, at: number): WriteResult => {
    const rows = queueRows.get(pub) ?? (sql.countQueueRows.get(pub) as number);
    if (rows >= max && (sql.countQueue.get(pub, at) as number) >= max) {
      rememberRows(pub, rows);
      return { refused: 'queue_full' };
    }
    sql.insertItem.run(pub, item, at + ttlMs);
    rememberRows(pub, rows + 1);
    return 'stored';
  };
  const drain = (pub: string, at: number): string[] => {
    queueRows.delete(pub);
    const rows = sql.takeQueue.all(pub) as [id: number, item: string, expires: number][];
    // One statement instead of a read and a delete; RETURNING promises no order, the ids give the queue's.
    return rows
      .filter(([, , expires]) => expires > at)
      .sort(([a], [b]) => a - b)
      .map(([, item]) => item);
  };
  const remaining = (expires: unknown, at: number) => (typeof expires === 'number' ? expires - at : 0);

  // Each runs inside its group commit's transaction on this process's only connection, with nothing
  // awaited inside. Those that write with one statement need nothing more: reads before it see what it
  // changes, and a statement that fails undoes itself. Those that write with several are transaction
  // functions (savepoints within the group), so that one that fails rolls back alone.
  const tx = {
    appendUnlessHooked: (
      pub: string,
      item: string,
      ttlMs: number,
      max: number,
    ): WriteResult | { hook: string } => {
      const at = now();
      const hook = sql.getHook.get(pub, at) as string | undefined;
      return hook === undefined ? append(pub, item, ttlMs, max, at) : { hook };
    },
    appendToQueue: (pub: string, item: string, ttlMs: number, max: number) =>
      append(pub, item, ttlMs, max, now()),
    drainQueue: (pub: string) => drain(pub, now()),
    putField: db.transaction(
      (pub: string, uid: string, value: FieldValue, ttlMs: number, maxFields: number, quota: number) => {
        const at = now();
        const others = sql.otherFields.get(pub, uid, at) as { count: number; bytes: number };
        if (others.count >= maxFields) return { refused: 'fields_full' } as const;
        const size = typeof value === 'string' ? 0 : value.byteLength;
        if (size > 0 && others.bytes + size > quota)
          return { refused: 'quota_full', used: others.bytes } as const;
        // better-sqlite3 binds Buffers; a view over the same bytes spares a copy of the blob.
        const bound = typeof value === 'string' ? value : Buffer.from(value.buffer, value.byteOffset, size);
        sql.putField.run(pub, uid, bound, size, at + ttlMs);
        return 'stored' as const;
      },
    ),
    moveToLog: db.transaction((pub: string, keepMs: number, max: number): LogEntry[] => {
      const at = now();
      const items = drain(pub, at);
      if (items.length === 0) return [];
      const first = (sql.nextLogId.get(pub, at) as number | undefined) ?? firstLogId(at);
      const entries = items.map((item, i) => ({ id: first + i, item }));
      for (const { id, item } of entries) sql.insertLog.run(pub, id, item, at + keepMs);
      const next = first + entries.length;
      sql.putLogSeq.run(pub, next, at + keepMs);
      sql.trimLog.run(pub, next - max);
      return entries.filter(({ id }) => id >= next - max);
    }),
    readLog: db.transaction((pub: string, ackedId: number): LogEntry[] => {
      sql.ackLog.run(pub, ackedId);
      return sql.readLog.all(pub, now()) as LogEntry[];
    }),
  };

  const purger: Purger = createPurger(
    db,
    now,
    options.purgeIntervalMs,
    options.onPurgeStep,
    options.purgeStepClock,
  );
  // Every write goes through the group commit; reads answer at once from what is committed.
  const batchedWrite = createWriteBatcher(db);
  const legacyFileFound = !inMemory && existsSync(join(dataDir, LEGACY_FILE));

  return {
    legacyFileFound,
    purge: () => purger.purge(),
    usedBytes,

    appendUnlessHooked: (pub, item, ttlMs, max) =>
      batchedWrite(() => bounded(item.length, () => tx.appendUnlessHooked(pub, item, ttlMs, max))),
    appendToQueue: (pub, item, ttlMs, max) =>
      batchedWrite(() => bounded(item.length, () => tx.appendToQueue(pub, item, ttlMs, max))),
    drainQueue: (pub) => batchedWrite(() => tx.drainQueue(pub)),
    queueStats: async (pub) => {
      const at = now();
      const { count, newest } = sql.queueStats.get(pub, at) as { count: number; newest: number | null };
      return { count, ttlMs: remaining(newest, at) };
    },

    publishValue: (pub, value, ttlMs) =>
      batchedWrite(() =>
        bounded(value.length, () => {
          sql.putValue.run(pub, value, now() + ttlMs);
          return 'stored' as const;
        }),
      ),
    readValue: async (pub) => sql.readValue.get(pub, now()) as string | undefined,
    renewValue: (pub, ttlMs) =>
      batchedWrite(() => {
        const at = now();
        return sql.renewValue.run(at + ttlMs, pub, at).changes > 0;
      }),
    deleteValue: (pub) =>
      batchedWrite(() => {
        sql.deleteValue.run(pub);
      }),
    valueTtl: async (pub) => {
      const at = now();
      return remaining(sql.valueExpires.get(pub, at), at);
    },

    putField: (pub, uid, value, ttlMs, { maxFields, blobQuota }) =>
      batchedWrite(() =>
        bounded(typeof value === 'string' ? value.length : value.byteLength, () =>
          tx.putField(pub, uid, value, ttlMs, maxFields, blobQuota),
        ),
      ),
    takeField: (pub, uid) =>
      batchedWrite(() => {
        const row = sql.takeField.get(pub, uid) as { value: FieldValue; expires: number } | undefined;
        return row && row.expires > now() ? row.value : undefined;
      }),
    readField: async (pub, uid) => sql.readField.get(pub, uid, now()) as FieldValue | undefined,
    fieldTtl: async (pub, uid) => {
      const at = now();
      return remaining(sql.fieldExpires.get(pub, uid, at), at);
    },
    deleteField: (pub, uid) =>
      batchedWrite(() => {
        sql.deleteField.run(pub, uid);
      }),
    blobBytes: async (pub) => sql.blobBytes.get(pub, now()) as number,

    moveToLog: (pub, keepMs, max) => batchedWrite(() => tx.moveToLog(pub, keepMs, max)),
    readLog: (pub, ackedId) => batchedWrite(() => tx.readLog(pub, ackedId)),

    setHook: (pub, record, ttlMs) =>
      batchedWrite(() => {
        sql.putHook.run(pub, record, now() + ttlMs);
      }),
    getHook: async (pub) => sql.getHook.get(pub, now()) as string | undefined,
    deleteHook: (pub) =>
      batchedWrite(() => {
        sql.deleteHook.run(pub);
      }),

    close: async () => {
      batchedWrite.flush();
      await purger.stop();
      await checkpointer?.stop();
      db.close();
      lock?.release();
    },
  };
}
