// The embedded default store: Keyv on one SQLite file in the data dir, so a restart loses nothing.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import KeyvSqlite from '@keyv/sqlite';
import { Keyv } from 'keyv';
import { createKeyvStore } from './keyv-store.js';
import type { Store } from './store.js';

/** How often expired rows are deleted: SQLite, unlike Redis, does not expire keys by itself. */
const PURGE_INTERVAL_MS = 10 * 60_000;

/** The embedded default: one SQLite file in `dataDir`, so a restart loses nothing. */
export async function openSqliteStore(dataDir: string): Promise<Store> {
  await mkdir(dataDir, { recursive: true });
  const file = join(dataDir, 'deadrop.sqlite');
  const sqlite = new KeyvSqlite({ uri: `sqlite://${file}`, busyTimeout: 5000 });
  sqlite.on('error', () => {}); // a failed open rejects the queries below, which say what happened
  try {
    // One process owns the data (the queue's atomicity and the record caches rely on it): the first
    // write takes an exclusive lock that a second relay on the same data dir cannot get.
    await sqlite.query('PRAGMA locking_mode=EXCLUSIVE');
    // WAL with synchronous=NORMAL: a commit costs no fsync, and a power cut loses at most the last moments.
    await sqlite.query('PRAGMA journal_mode=WAL');
    await sqlite.query('PRAGMA synchronous=NORMAL');
    await sqlite.query('BEGIN IMMEDIATE');
    await sqlite.query('COMMIT');
  } catch (error) {
    await sqlite.disconnect().catch(() => {});
    throw new Error(
      `Cannot open ${file}: ${(error as Error).message}. Only one relay process may use a data dir (DEADROP_DATA_DIR); run more instances on the Redis store.`,
      { cause: error },
    );
  }
  const purgeExpired = () =>
    sqlite.query("DELETE FROM keyv WHERE json_extract(value, '$.expires') < ?", Date.now()).catch(() => {});
  await purgeExpired();
  const timer = setInterval(purgeExpired, PURGE_INTERVAL_MS);
  timer.unref();
  // @keyv/sqlite writes each row of setMany in a statement of its own and reads rows before deleting
  // them; Keyv uses an adapter's own setMany/deleteMany when it has them, so these make one statement
  // (one commit) of a post's item and bookkeeping, and of a drain's deletes.
  Object.assign(sqlite, {
    setMany: async (entries: { key: string; value: string }[]) => {
      if (entries.length === 0) return [];
      const rows = entries.map(() => '(?, ?)').join(', ');
      await sqlite.query(
        `INSERT INTO keyv (key, value) VALUES ${rows} ON CONFLICT(key) DO UPDATE SET value = excluded.value`,
        ...entries.flatMap(({ key, value }) => [key, value]),
      );
      return entries.map(() => true);
    },
    deleteMany: async (keys: string[]) => {
      if (keys.length === 0) return true;
      await sqlite.query(
        'DELETE FROM keyv WHERE key IN (SELECT value FROM json_each(?))',
        JSON.stringify(keys),
      );
      return true;
    },
  });
  const kv = new Keyv({ store: sqlite, useKeyPrefix: false, throwOnErrors: true });
  kv.on('error', () => {}); // failures are thrown to the caller (throwOnErrors); the event adds nothing
  return createKeyvStore(kv, async () => {
    clearInterval(timer);
    await sqlite.disconnect();
  });
}
