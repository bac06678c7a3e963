// The embedded store beyond the contract: a purge that never stalls reads, space given back, and a relay
// killed for real under concurrent writers that loses no acknowledged item and duplicates none.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { SCHEMA } from '../src/store/sqlite-schema.js';
import { openSqliteStore, SQLITE_FILE } from '../src/store/sqlite-store.js';
import { tempDir } from './helpers.js';

const HOUR = 3_600_000;

/**
 * The time this thread has spent on a CPU, in ms (Linux's schedstat): what a purge step costs, whatever
 * else the machine runs at the same time (the full suite runs beside this test).
 */
const threadCpuMs = () => Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6;

/** Writes `rows` queue items and published values straight into a new store file, already expired at `expires`. */
function fillExpired(dataDir: string, rows: number, expires: number) {
  const db = new Database(join(dataDir, SQLITE_FILE));
  db.pragma('auto_vacuum = INCREMENTAL');
  db.pragma('journal_mode = WAL');
  db.exec(SCHEMA);
  const item = db.prepare('INSERT INTO queue (pub, item, expires) VALUES (?, ?, ?)');
  const value = db.prepare('INSERT INTO value (pub, value, expires) VALUES (?, ?, ?)');
  const payload = JSON.stringify({ data: 'x'.repeat(200) });
  db.transaction(() => {
    for (let n = 0; n < rows; n++) {
      const pub = `p${n % 5000}`;
      if (n % 4 === 0) value.run(`v${n}`, payload, expires);
      else item.run(pub, payload, expires);
    }
  })();
  db.close();
}

describe('the SQLite purge', () => {
  it('deletes 200 000 expired rows without ever delaying a concurrent read by 50 ms, and gives the space back', async () => {
    const dataDir = await tempDir();
    try {
      let now = Date.now();
      fillExpired(dataDir, 200_000, now + HOUR);
      const steps: number[] = [];
      const store = openSqliteStore(dataDir, {
        now: () => now,
        purgeIntervalMs: 0,
        onPurgeStep: (ms) => steps.push(ms),
        purgeStepClock: threadCpuMs,
      });
      await store.publishValue('live', '"still here"', 2 * HOUR);
      const usedBefore = store.usedBytes();
      now += HOUR + 1;

      // A read every 2 ms while the purge runs: how late each one is answered.
      const delays: number[] = [];
      let purging = true;
      const reads = (async () => {
        while (purging) {
          const due = performance.now() + 2;
          await new Promise((resolve) => setTimeout(resolve, 2));
          expect(await store.readValue('live')).toBe('"still here"');
          delays.push(performance.now() - due);
        }
      })();
      const deleted = await store.purge();
      purging = false;
      await reads;

      expect(deleted).toBe(200_000);
      // A read waits at most for the step running when it came: no step holds the thread 50 ms of CPU
      // (on a loaded machine a step may wait longer for a CPU, as any request would). Reads were answered
      // all along, between the steps.
      expect(steps.length).toBeGreaterThan(50);
      expect(Math.max(...steps)).toBeLessThan(50);
      expect(delays.length).toBeGreaterThan(20);
      expect(store.usedBytes()).toBeLessThan(usedBefore / 10);
      await store.close();
      // Incremental auto-vacuum returned the freed pages: the file itself shrank.
      expect((await stat(join(dataDir, SQLITE_FILE))).size).toBeLessThan(usedBefore / 5);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('the SQLite queue bound', () => {
  const item = (n: number) => JSON.stringify({ n });

  it('holds for rows the store did not write, for rows that expired unpurged, and under concurrent appends', async () => {
    const dataDir = await tempDir();
    try {
      let now = Date.now();
      // Written before the store opened: 4 live items on one key, 5 expired on another.
      const db = new Database(join(dataDir, SQLITE_FILE));
      db.pragma('auto_vacuum = INCREMENTAL');
      db.pragma('journal_mode = WAL');
      db.exec(SCHEMA);
      const insert = db.prepare('INSERT INTO queue (pub, item, expires) VALUES (?, ?, ?)');
      for (let n = 0; n < 4; n++) insert.run('earlier', item(n), now + HOUR);
      for (let n = 0; n < 5; n++) insert.run('expired', item(n), now - 1);
      db.close();
      const store = openSqliteStore(dataDir, { now: () => now, purgeIntervalMs: 0 });

      expect(await store.appendToQueue('earlier', item(4), HOUR, 5)).toBe('stored');
      expect(await store.appendToQueue('earlier', item(5), HOUR, 5)).toEqual({ refused: 'queue_full' });

      // Five rows, none live: the queue has room for five.
      const results = await Promise.all(
        [0, 1, 2, 3, 4, 5].map((n) => store.appendToQueue('expired', item(n), HOUR, 5)),
      );
      expect(results.filter((result) => result === 'stored')).toHaveLength(5);
      expect(await store.drainQueue('expired')).toHaveLength(5);

      // Fifty at once on a bound of 20, twice (the second time after a drain): exactly 20 each time.
      for (let round = 0; round < 2; round++) {
        const appended = await Promise.all(
          Array.from({ length: 50 }, (_, n) => store.appendToQueue('busy', item(n), 1000, 20)),
        );
        expect(appended.filter((result) => result === 'stored')).toHaveLength(20);
        if (round === 0) expect(await store.drainQueue('busy')).toHaveLength(20);
      }
      // Once they expire, the queue takes 20 more while the expired rows are still there.
      now += 1001;
      const later = await Promise.all(
        Array.from({ length: 25 }, (_, n) => store.appendToQueue('busy', item(n), 1000, 20)),
      );
      expect(later.filter((result) => result === 'stored')).toHaveLength(20);
      expect(await store.drainQueue('busy')).toHaveLength(20);
      await store.close();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('a relay killed with SIGKILL under 50 concurrent writers', () => {
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const child of children) child.kill('SIGKILL');
  });

  /** `deadrop serve` on SQLite in `dataDir`, on a free port; resolves with its URL once it listens. */
  const startRelay = async (dataDir: string, secret: string) => {
    const child = spawn('node', ['--import', 'tsx', 'src/cli.ts', 'serve'], {
      env: {
        ...process.env,
        PORT: '0',
        HOST: '127.0.0.1',
        DEADROP_STORE: 'sqlite',
        DEADROP_DATA_DIR: dataDir,
        DEADROP_SECRET: secret,
        DEADROP_RATE_LIMIT: '0',
        DEADROP_MAX_QUEUE: '100000',
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    for await (const line of createInterface({ input: child.stdout as NodeJS.ReadableStream })) {
      const url = /listening on (http:\/\/[^\s"]+)/.exec(line)?.[1];
      if (url) return { child, url };
    }
    throw new Error('the relay exited before it listened');
  };

  it('loses no acknowledged item and duplicates none, after a restart on the same data dir', async () => {
    const dataDir = await tempDir();
    const secret = randomBytes(24).toString('base64url');
    try {
      const first = await startRelay(dataDir, secret);
      const pairs = await Promise.all(
        Array.from({ length: 5 }, async () => (await (await fetch(`${first.url}/keys`)).json()) as KeyPair),
      );
      const acknowledged = new Set<string>();
      let next = 0;
      let killed = false;
      const writer = async () => {
        while (!killed) {
          const id = `w${next++}`;
          const pair = pairs[next % pairs.length] as KeyPair;
          try {
            const answer = await fetch(`${first.url}/public/${pair.public}`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ id }),
            });
            if (answer.status === 200) acknowledged.add(id);
          } catch {
            // The relay was killed while this one was in flight: not acknowledged.
          }
        }
      };
      const writers = Array.from({ length: 50 }, writer);
      while (acknowledged.size < 1500) await new Promise((resolve) => setTimeout(resolve, 20));
      first.child.kill('SIGKILL');
      await once(first.child, 'exit');
      killed = true;
      await Promise.all(writers);

      const second = await startRelay(dataDir, secret);
      const stored: string[] = [];
      for (const pair of pairs) {
        const answer = await fetch(`${second.url}/private/${pair.private}`);
        if (answer.status === 200)
          stored.push(...((await answer.json()) as { id: string }[]).map((item) => item.id));
      }
      second.child.kill('SIGTERM');
      await once(second.child, 'exit');

      expect(acknowledged.size).toBeGreaterThanOrEqual(1500);
      expect(stored.length).toBe(new Set(stored).size);
      const lost = [...acknowledged].filter((id) => !stored.includes(id));
      expect(lost).toEqual([]);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});

interface KeyPair {
  private: string;
  public: string;
}
