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
  const sqlite = new KeyvSqlite({ uri: `sqlite://${join(dataDir, 'deadrop.sqlite')}`, busyTimeout: 5000 });
  // WAL with synchronous=NORMAL: a commit costs no fsync, and a power cut loses at most the last moments.
  await sqlite.query('PRAGMA journal_mode=WAL');
  await sqlite.query('PRAGMA synchronous=NORMAL');
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
