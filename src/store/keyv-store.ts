// The embedded stores on Keyv (memory here, SQLite in sqlite-store.ts). One process owns the data, so
// the operations Keyv lacks are made atomic by serialising them per key (DESIGN §3).
import { Keyv } from 'keyv';
import { createKeyedLock } from './keyed-lock.js';
import { firstLogId, type LogEntry, type Store, storeKeys } from './store.js';

/** Queue bookkeeping: items live at `<queue>:<seq>` for head ≤ seq < tail, each with its own TTL. */
interface QueueMeta {
  head: number;
  tail: number;
}

/** Delivery-log bookkeeping: entries live at `<log>:<id>` for head ≤ id < tail. */
interface LogMeta {
  head: number;
  tail: number;
}

/** One-to-one bookkeeping: uid → expiry (ms since epoch), to bound how many a key pair holds. */
type FieldIndex = [uid: string, expires: number][];

/** Records (queue bookkeeping, webhook records) cached per store; older ones are dropped first. */
const CACHED_RECORDS = 10_000;

/**
 * A bounded write-through copy of small records. It is exact because this process alone writes the
 * data: it saves the read that every post would otherwise make before its writes.
 */
function createRecordCache<T>() {
  const entries = new Map<string, { value: T | undefined; expires: number }>();
  return {
    /** The record (`value` undefined: known absent), or undefined when not cached. */
    get(key: string): { value: T | undefined } | undefined {
      const entry = entries.get(key);
      if (entry === undefined) return undefined;
      if (entry.expires > Date.now()) return entry;
      entries.delete(key);
      return undefined;
    },
    set(key: string, value: T | undefined, expires: number) {
      entries.delete(key);
      entries.set(key, { value, expires });
      if (entries.size > CACHED_RECORDS) entries.delete(entries.keys().next().value as string);
    },
  };
}

/** How long "no webhook here" is believed without a look at the store. */
const ABSENT_TTL_MS = 3_600_000;

/**
 * Builds a store on any Keyv instance whose data this process alone writes.
 * Queue items are separate entries, so appending costs the same however long the queue is.
 */
export function createKeyvStore(kv: Keyv, close: () => Promise<void> = async () => {}): Store {
  const lock = createKeyedLock();
  const now = () => Date.now();
  const metas = createRecordCache<QueueMeta>();
  const hooks = createRecordCache<string>();

  /** Reads through the cache; `raw.expires` keeps the copy no longer than the record. */
  const cachedRead = async <T>(cache: ReturnType<typeof createRecordCache<T>>, key: string) => {
    const hit = cache.get(key);
    if (hit) return hit.value;
    const raw = await kv.getRaw<T>(key);
    cache.set(key, raw?.value, typeof raw?.expires === 'number' ? raw.expires : now() + ABSENT_TTL_MS);
    return raw?.value;
  };
  const itemKey = (queue: string, seq: number) => `${queue}:${seq}`;
  const range = (from: number, to: number) =>
    Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);

  // Items all get the same TTL, so they expire oldest first: the live ones are a suffix of [head, tail).
  const firstLive = async (queue: string, { head, tail }: QueueMeta): Promise<number> => {
    let low = head;
    let high = tail;
    while (low < high) {
      const mid = Math.floor((low + high) / 2);
      // getRaw, not has: SQLite's has() ignores expiry.
      if ((await kv.getRaw(itemKey(queue, mid))) !== undefined) high = mid;
      else low = mid + 1;
    }
    return low;
  };

  /** Removes and returns the live items of a queue; the caller holds the queue's lock. */
  const takeAll = async (queue: string): Promise<string[]> => {
    const meta = await cachedRead(metas, queue);
    if (!meta) return [];
    const keys = range(meta.head, meta.tail).map((seq) => itemKey(queue, seq));
    const items = keys.length > 0 ? await kv.getMany<string>(keys) : [];
    await kv.deleteMany([...keys, queue]);
    metas.set(queue, undefined, now() + ABSENT_TTL_MS);
    return items.filter((item): item is string => typeof item === 'string');
  };

  const remainingMs = async (key: string): Promise<number> => {
    const raw = await kv.getRaw(key);
    return typeof raw?.expires === 'number' ? Math.max(0, raw.expires - now()) : 0;
  };

  const liveFields = async (index: string): Promise<Map<string, number>> => {
    const entries = (await kv.get<FieldIndex>(index)) ?? [];
    const at = now();
    return new Map(entries.filter(([, expires]) => expires > at));
  };

  const saveFields = async (index: string, fields: Map<string, number>) => {
    if (fields.size === 0) {
      await kv.delete(index);
      return;
    }
    const newest = Math.max(...fields.values());
    await kv.set(index, [...fields], Math.max(1, newest - now()));
  };

  const store: Store = {
    appendUnlessHooked: async (pub, item, ttlMs, max) => {
      const key = storeKeys(pub).hook;
      const hook = await lock(key, () => cachedRead(hooks, key));
      return hook === undefined ? store.appendToQueue(pub, item, ttlMs, max) : { hook };
    },

    appendToQueue: (pub, item, ttlMs, max) => {
      const { queue } = storeKeys(pub);
      return lock(queue, async () => {
        const meta = { head: 0, tail: 0, ...(await cachedRead(metas, queue)) };
        if (meta.tail - meta.head >= max) meta.head = await firstLive(queue, meta);
        if (meta.tail - meta.head >= max) return false;
        await kv.setMany([
          { key: itemKey(queue, meta.tail), value: item, ttl: ttlMs },
          { key: queue, value: { head: meta.head, tail: meta.tail + 1 }, ttl: ttlMs },
        ]);
        metas.set(queue, { head: meta.head, tail: meta.tail + 1 }, now() + ttlMs);
        return true;
      });
    },

    drainQueue: (pub) => {
      const { queue } = storeKeys(pub);
      return lock(queue, () => takeAll(queue));
    },

    queueStats: (pub) => {
      const { queue } = storeKeys(pub);
      // Under the lock, like every read that may fill the cache: a read that overtook a write would
      // leave stale bookkeeping there.
      return lock(queue, async () => {
        const meta = await cachedRead(metas, queue);
        if (!meta) return { count: 0, ttlMs: 0 };
        const count = meta.tail - (await firstLive(queue, meta));
        return { count, ttlMs: count > 0 ? await remainingMs(queue) : 0 };
      });
    },

    publishValue: (pub, value, ttlMs) => {
      const key = storeKeys(pub).value;
      return lock(key, async () => {
        await kv.set(key, value, ttlMs);
      });
    },

    readValue: (pub) => kv.get<string>(storeKeys(pub).value),

    renewValue: (pub, ttlMs) => {
      const key = storeKeys(pub).value;
      return lock(key, async () => {
        const value = await kv.get<string>(key);
        if (value === undefined) return false;
        await kv.set(key, value, ttlMs);
        return true;
      });
    },

    deleteValue: (pub) => {
      const key = storeKeys(pub).value;
      return lock(key, async () => {
        await kv.delete(key);
      });
    },

    valueTtl: (pub) => remainingMs(storeKeys(pub).value),

    putField: (pub, uid, value, ttlMs, max) => {
      const keys = storeKeys(pub);
      return lock(keys.fieldIndex, async () => {
        const fields = await liveFields(keys.fieldIndex);
        if (!fields.has(uid) && fields.size >= max) return false;
        await kv.set(keys.field(uid), value, ttlMs);
        fields.set(uid, now() + ttlMs);
        await saveFields(keys.fieldIndex, fields);
        return true;
      });
    },

    takeField: (pub, uid) => {
      const keys = storeKeys(pub);
      return lock(keys.fieldIndex, async () => {
        const value = await kv.get<string>(keys.field(uid));
        if (value === undefined) return undefined;
        await kv.delete(keys.field(uid));
        const fields = await liveFields(keys.fieldIndex);
        if (fields.delete(uid)) await saveFields(keys.fieldIndex, fields);
        return value;
      });
    },

    fieldTtl: (pub, uid) => remainingMs(storeKeys(pub).field(uid)),

    deleteField: (pub, uid) => {
      const keys = storeKeys(pub);
      return lock(keys.fieldIndex, async () => {
        await kv.delete(keys.field(uid));
        const fields = await liveFields(keys.fieldIndex);
        if (fields.delete(uid)) await saveFields(keys.fieldIndex, fields);
      });
    },

    moveToLog: (pub, ttlMs, max) => {
      const keys = storeKeys(pub);
      return lock(keys.queue, async () => {
        const items = await takeAll(keys.queue);
        return lock(keys.log, async () => {
          const meta = (await kv.get<LogMeta>(keys.log)) ?? {
            head: firstLogId(now()),
            tail: firstLogId(now()),
          };
          const entries = items.map((item, i) => ({ id: meta.tail + i, item }));
          const tail = meta.tail + entries.length;
          const head = Math.max(meta.head, tail - max);
          await kv.setMany(
            entries.map(({ id, item }) => ({ key: itemKey(keys.log, id), value: item, ttl: ttlMs })),
          );
          if (head > meta.head)
            await kv.deleteMany(range(meta.head, head).map((id) => itemKey(keys.log, id)));
          await kv.set(keys.log, { head, tail }, ttlMs);
          return entries.filter(({ id }) => id >= head);
        });
      });
    },

    readLog: (pub, ackedId) => {
      const keys = storeKeys(pub);
      return lock(keys.log, async () => {
        const raw = await kv.getRaw<LogMeta>(keys.log);
        const meta = raw?.value;
        if (!meta) return [];
        const head = Math.min(Math.max(meta.head, ackedId + 1), meta.tail);
        if (head > meta.head) {
          await kv.deleteMany(range(meta.head, head).map((id) => itemKey(keys.log, id)));
          await kv.set(keys.log, { head, tail: meta.tail }, Math.max(1, (raw.expires ?? now() + 1) - now()));
        }
        const ids = range(head, meta.tail);
        const items = ids.length > 0 ? await kv.getMany<string>(ids.map((id) => itemKey(keys.log, id))) : [];
        return ids.flatMap((id, i): LogEntry[] => {
          const item = items[i];
          return typeof item === 'string' ? [{ id, item }] : [];
        });
      });
    },

    setHook: (pub, record, ttlMs) => {
      const key = storeKeys(pub).hook;
      return lock(key, async () => {
        await kv.set(key, record, ttlMs);
        hooks.set(key, record, now() + ttlMs);
      });
    },

    getHook: (pub) => {
      const key = storeKeys(pub).hook;
      return lock(key, () => cachedRead(hooks, key));
    },

    deleteHook: (pub) => {
      const key = storeKeys(pub).hook;
      return lock(key, async () => {
        // Most private reads forget a webhook that was never there: that costs no write.
        const known = hooks.get(key);
        if (known && known.value === undefined) return;
        await kv.delete(key);
        hooks.set(key, undefined, now() + ABSENT_TTL_MS);
      });
    },

    close,
  };
  return store;
}

/** A store that lives and dies with the process: for tests. */
export function createMemoryStore(): Store {
  const kv = new Keyv({ store: new Map(), useKeyPrefix: false, throwOnErrors: true });
  return createKeyvStore(kv);
}
