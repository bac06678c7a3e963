import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
const keys = Array.from({ length: 1000 }, () => randomBytes(24).toString('base64url'));
const item = 'x'.repeat(1024);
function open(v: string) {
  const db = new Database(v.includes('mem') ? ':memory:' : join(mkdtempSync(join(tmpdir(), 'sq-')), 'x.db'));
  if (!v.includes('noav')) db.pragma('auto_vacuum = INCREMENTAL');
  db.pragma('locking_mode = EXCLUSIVE');
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${v.includes('off') ? 'OFF' : 'NORMAL'}`);
  if (v.includes('mmap')) db.pragma('mmap_size = 268435456');
  db.exec(`CREATE TABLE queue (id INTEGER PRIMARY KEY, pub TEXT NOT NULL, item TEXT NOT NULL, expires INTEGER NOT NULL);
  CREATE INDEX queue_pub ON queue (pub, expires);` + (v.includes('noexp') ? '' : 'CREATE INDEX queue_expires ON queue (expires);'));
  const ins = db.prepare('INSERT INTO queue (pub, item, expires) VALUES (?, ?, ?)');
  const cnt = db.prepare('SELECT count(*) FROM queue WHERE pub = ? AND expires > ?').pluck();
  return db.transaction((k: string) => { cnt.get(k, Date.now()); ins.run(k, item, Date.now() + 3600_000); });
}
const variants = ['base', 'mem', 'noav', 'noexp', 'off', 'mmap', 'noav-noexp-mmap'];
const txs = Object.fromEntries(variants.map((v) => [v, open(v)]));
const totals: Record<string, number> = {};
for (let r = 0; r < 4; r++) for (const v of variants) {
  const n = 3000; const t = performance.now();
  for (let i = 0; i < n; i++) txs[v]!(keys[(i * 7 + r) % 1000] as string);
  totals[v] = (totals[v] ?? 0) + ((performance.now() - t) * 1000) / n / 4;
}
for (const v of variants) console.log(v.padEnd(18), totals[v]!.toFixed(1), 'µs');
