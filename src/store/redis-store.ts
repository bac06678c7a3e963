// The shared store on Redis: every operation is one round trip (a script or one command), so any number
// of relay instances can share it without losing or duplicating an item (DESIGN §3, §8).
import { RESP_TYPES } from '@redis/client';
import type { RedisConnection } from './redis-connection.js';
import { replyWithin } from './redis-deadline.js';
import { type FieldValue, type LogEntry, type Store, storeKeys, type WriteResult } from './store.js';

/** One-to-one values carry their kind in a first byte, so JSON and blobs share one Redis string. */
const JSON_MARK = 0x6a; // 'j'
const BLOB_MARK = 0x62; // 'b'

const encodeField = (value: FieldValue): Buffer =>
  typeof value === 'string'
    ? Buffer.concat([Buffer.of(JSON_MARK), Buffer.from(value, 'utf8')])
    : Buffer.concat([Buffer.of(BLOB_MARK), value]);

const decodeField = (stored: Buffer): FieldValue =>
  stored[0] === BLOB_MARK ? stored.subarray(1) : stored.subarray(1).toString('utf8');

/** "<id>:<item>" → a log entry. */
const toLogEntry = (entry: string): LogEntry => {
  const sep = entry.indexOf(':');
  return { id: Number(entry.slice(0, sep)), item: entry.slice(sep + 1) };
};

const remainingMs = (pttl: unknown) => Math.max(0, Number(pttl));

/** Redis's own refusal when it is at maxmemory with noeviction: the store is full, not away. */
const isOutOfMemory = (error: unknown) => /^OOM\b/.test(String((error as Error)?.message));

export interface RedisStoreOptions {
  /** The global bound, watched by the backend: whether writes must be refused, and what was written. */
  capacity?: { full(): boolean; wrote(bytes: number): void };
}

const unbounded = { full: () => false, wrote: () => {} };

/** Builds the store on a connection made by `createRedisConnection`; `close` does not end the connection. */
export function createRedisStore(
  client: RedisConnection,
  { capacity = unbounded }: RedisStoreOptions = {},
): Store {
  /** Runs a write of `bytes` unless the store is full; Redis's own OOM refusal is a full store too. */
  const bounded = async <T>(
    bytes: number,
    write: () => Promise<T>,
  ): Promise<T | { refused: 'store_full' }> => {
    if (capacity.full()) return { refused: 'store_full' };
    try {
      const result = await write();
      capacity.wrote(bytes);
      return result;
    } catch (error) {
      if (isOutOfMemory(error)) return { refused: 'store_full' };
      throw error;
    }
  };
  // Field values come back as bytes: a blob is not text.
  const binary = client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
  const fieldKeys = (pub: string, uid: string) => {
    const keys = storeKeys(pub);
    return [keys.field(uid), keys.fieldIndex, keys.blobSizes] as [string, string, string];
  };
  const appendResult = (reply: string | number): WriteResult | { hook: string } =>
    typeof reply === 'string' ? { hook: reply } : reply === 1 ? 'stored' : { refused: 'queue_full' };

  const store: Store = {
    appendToQueue: (pub, item, ttlMs, max) =>
      bounded(item.length, async () => {
        const keys = storeKeys(pub);
        const reply = await client.appendItem(keys.queue, keys.hook, item, ttlMs, max, false);
        return appendResult(reply) as WriteResult;
      }),

    appendUnlessHooked: (pub, item, ttlMs, max) =>
      bounded(item.length, async () => {
        const keys = storeKeys(pub);
        return appendResult(await client.appendItem(keys.queue, keys.hook, item, ttlMs, max, true));
      }),

    drainQueue: (pub) => client.drainQueue(storeKeys(pub).queue),

    queueStats: async (pub) => {
      const [count, pttl] = await client.queueStats(storeKeys(pub).queue);
      return { count, ttlMs: count > 0 ? remainingMs(pttl) : 0 };
    },

    publishValue: (pub, value, ttlMs) =>
      bounded(value.length, async () => {
        await client.set(storeKeys(pub).value, value, { expiration: { type: 'PX', value: ttlMs } });
        return 'stored' as const;
      }),

    readValue: async (pub) => (await client.get(storeKeys(pub).value)) ?? undefined,

    renewValue: async (pub, ttlMs) => (await client.pExpire(storeKeys(pub).value, ttlMs)) === 1,

    deleteValue: async (pub) => {
      await client.del(storeKeys(pub).value);
    },

    valueTtl: async (pub) => remainingMs(await client.pTTL(storeKeys(pub).value)),

    putField: (pub, uid, value, ttlMs, { maxFields, blobQuota }) =>
      bounded(typeof value === 'string' ? value.length : value.byteLength, async (): Promise<WriteResult> => {
        const size = typeof value === 'string' ? 0 : value.byteLength;
        const [outcome, used] = await client.putField(
          fieldKeys(pub, uid),
          uid,
          encodeField(value),
          ttlMs,
          maxFields,
          size,
          blobQuota,
        );
        if (outcome === 'stored') return 'stored';
        if (outcome === 'quota_full') return { refused: 'quota_full', used: Number(used) };
        return { refused: 'fields_full' };
      }),

    takeField: async (pub, uid) => {
      const stored = await binary.takeField(fieldKeys(pub, uid), uid);
      return stored ? decodeField(stored) : undefined;
    },

    readField: async (pub, uid) => {
      const stored = await binary.get(storeKeys(pub).field(uid));
      return stored ? decodeField(stored) : undefined;
    },

    fieldTtl: async (pub, uid) => remainingMs(await client.pTTL(storeKeys(pub).field(uid))),

    deleteField: async (pub, uid) => {
      await client.deleteField(fieldKeys(pub, uid), uid);
    },

    blobBytes: async (pub) => {
      const keys = storeKeys(pub);
      return Number(await client.blobBytes(keys.fieldIndex, keys.blobSizes));
    },

    moveToLog: async (pub, keepMs, max) => {
      const keys = storeKeys(pub);
      return (await client.moveToLog([keys.queue, keys.log, keys.logSeq], keepMs, max)).map(toLogEntry);
    },

    readLog: async (pub, ackedId) => (await client.readLog(storeKeys(pub).log, ackedId)).map(toLogEntry),

    setHook: async (pub, record, ttlMs) => {
      await client.set(storeKeys(pub).hook, record, { expiration: { type: 'PX', value: ttlMs } });
    },

    getHook: async (pub) => (await client.get(storeKeys(pub).hook)) ?? undefined,

    deleteHook: async (pub) => {
      await client.del(storeKeys(pub).hook);
    },

    close: async () => {},
  };
  return withReplyDeadline(store);
}

/** Every store operation fails once Redis has not answered within REPLY_DEADLINE_MS (a hung primary). */
function withReplyDeadline(store: Store): Store {
  const bounded = {} as Record<string, unknown>;
  for (const [name, method] of Object.entries(store) as [
    string,
    (...args: unknown[]) => Promise<unknown>,
  ][]) {
    bounded[name] = (...args: unknown[]) => replyWithin(method(...args));
  }
  return bounded as unknown as Store;
}
