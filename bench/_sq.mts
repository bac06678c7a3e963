import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
const variant = process.argv[2] ?? 'normal';
const dir = mkdtempSync(join(tmpdir(), 'sq-'));
const db = new Database(join(dir, 'x.db'));
db.pragma('auto_vacuum = INCREMENTAL');
if (variant !== 'nolock') db.pragma('locking_mode = EXCLUSIVE');
db.pragma('journal_mode = WAL');
db.pragma(`synchronous = ${variant === 'off' ? 'OFF' : 'NORMAL'}`);
if (variant === 'bigwal') db.pragma('wal_autocheckpoint = 100000');
db.exec(`CREATE TABLE queue (id INTEGER PRIMARY KEY, pub TEXT NOT NULL, item TEXT NOT NULL, expires INTEGER NOT NULL);
CREATE INDEX queue_pub ON queue (pub, expires); CREATE INDEX queue_expires ON queue (expires);`);
const ins = db.prepare('INSERT INTO queue (pub, item, expires) VALUES (?, ?, ?)');
const cnt = db.prepare('SELECT count(*) FROM queue WHERE pub = ? AND expires > ?').pluck();
const keys = Array.from({ length: 1000 }, () => randomBytes(24).toString('base64url'));
const item = 'x'.repeat(1024);
const tx = db.transaction((k: string) => { cnt.get(k, Date.now()); ins.run(k, item, Date.now() + 3600_000); });
for (let r = 0; r < 3; r++) {
  const n = 10000; const t = performance.now();
  for (let i = 0; i < n; i++) tx(keys[i % 1000] as string);
  console.log(variant, `insert ${(((performance.now() - t) * 1000) / n).toFixed(1)} µs`);
}
