// One relay process per data dir (DESIGN §3): a lock the operating system holds for the process and
// drops when it ends, however it ends, so a killed relay never leaves a stale lock behind.
import { join } from 'node:path';
import Database from 'better-sqlite3';

const LOCK_FILE = 'relay.lock';

export interface DataDirLock {
  release(): void;
}

/**
 * Takes the lock of `dataDir` or throws: a SQLite file in exclusive locking mode, written once, keeps
 * an exclusive file lock until its connection closes.
 */
export function lockDataDir(dataDir: string): DataDirLock {
  const lock = new Database(join(dataDir, LOCK_FILE), { timeout: 0 });
  try {
    lock.pragma('locking_mode = EXCLUSIVE');
    lock.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER); DELETE FROM holder;');
    lock.prepare('INSERT INTO holder (pid) VALUES (?)').run(process.pid);
  } catch (error) {
    lock.close();
    throw error;
  }
  return { release: () => lock.close() };
}
