// The embedded store's schema: one table per kind of data, each row with its expiry, indexed for the purge.

/**
 * Every row carries `expires` (ms since the epoch): reads ignore expired rows and the purge deletes them
 * through the `*_expires` indexes in small batches. Tables keep their rowid, so large blobs sit in
 * overflow pages rather than in the index b-tree.
 */
export const SCHEMA = `
CREATE TABLE IF NOT EXISTS queue (
  id INTEGER PRIMARY KEY,
  pub TEXT NOT NULL,
  item TEXT NOT NULL,
  expires INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_pub ON queue (pub, expires);
CREATE INDEX IF NOT EXISTS queue_expires ON queue (expires);

CREATE TABLE IF NOT EXISTS value (
  pub TEXT NOT NULL UNIQUE,
  value TEXT NOT NULL,
  expires INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS value_expires ON value (expires);

-- value has no declared type, so it keeps what it is given: TEXT (JSON) or BLOB (bytes), never converted.
-- size counts a blob's bytes toward its key pair's quota, 0 for JSON.
CREATE TABLE IF NOT EXISTS field (
  pub TEXT NOT NULL,
  uid TEXT NOT NULL,
  value NOT NULL,
  size INTEGER NOT NULL,
  expires INTEGER NOT NULL,
  UNIQUE (pub, uid)
);
CREATE INDEX IF NOT EXISTS field_expires ON field (expires);
-- Quotas, counts and TTLs read only this index: in the table a row's size and expires come after its value,
-- and reaching them there walks every overflow page of a 1 MiB blob.
CREATE INDEX IF NOT EXISTS field_sizes ON field (pub, uid, expires, size);

CREATE TABLE IF NOT EXISTS log (
  pub TEXT NOT NULL,
  id INTEGER NOT NULL,
  item TEXT NOT NULL,
  expires INTEGER NOT NULL,
  UNIQUE (pub, id)
);
CREATE INDEX IF NOT EXISTS log_expires ON log (expires);

-- The next delivery-log id of a key pair; kept as long as its log, so ids keep growing.
CREATE TABLE IF NOT EXISTS log_seq (
  pub TEXT NOT NULL UNIQUE,
  next INTEGER NOT NULL,
  expires INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS log_seq_expires ON log_seq (expires);

CREATE TABLE IF NOT EXISTS hook (
  pub TEXT NOT NULL UNIQUE,
  record TEXT NOT NULL,
  expires INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS hook_expires ON hook (expires);
`;

/** The tables whose expired rows the purge deletes. */
export const EXPIRING_TABLES = ['queue', 'value', 'field', 'log', 'log_seq', 'hook'] as const;
