// The shared store on Redis: every operation is one round trip (a Lua script or MULTI), so any number
// of relay instances can share it without losing or duplicating an item (DESIGN §3, §8).
import { createHash } from 'node:crypto';
import { createClient } from '@keyv/redis';
import { type LogEntry, type Store, storeKeys } from './store.js';

// Queue entries are "<expires ms>:<item>", oldest first, so expired ones are always a prefix.
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

// KEYS[2] (the webhook record) is looked at only when ARGV[4] is "1".
const APPEND = `${NOW}
if ARGV[4] == '1' then
  local hook = redis.call('GET', KEYS[2])
  if hook then return hook end
end
local max = tonumber(ARGV[3])
local n = redis.call('LLEN', KEYS[1])
if n >= max then
  while n > 0 do
    local head = redis.call('LINDEX', KEYS[1], 0)
    if tonumber(string.match(head, '^(%d+):')) > now then break end
    redis.call('LPOP', KEYS[1])
    n = n - 1
  end
  if n >= max then return 0 end
end
local ttl = tonumber(ARGV[2])
redis.call('RPUSH', KEYS[1], string.format('%d', now + ttl) .. ':' .. ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl)
return 1`;

const DRAIN = `${NOW}
local entries = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
local live = {}
for _, entry in ipairs(entries) do
  local sep = string.find(entry, ':', 1, true)
  if tonumber(string.sub(entry, 1, sep - 1)) > now then live[#live + 1] = string.sub(entry, sep + 1) end
end
return live`;

const STATS = `${NOW}
local n = redis.call('LLEN', KEYS[1])
local expired = 0
while expired < n do
  local entry = redis.call('LINDEX', KEYS[1], expired)
  if tonumber(string.match(entry, '^(%d+):')) > now then break end
  expired = expired + 1
end
return { n - expired, redis.call('PTTL', KEYS[1]) }`;

const PUT_FIELD = `${NOW}
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) and redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
if redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
return 1`;

// The delivery log holds "<id>:<item>"; ids come from a counter that starts from the clock (µs).
const MOVE_TO_LOG = `${NOW}
local ttl = tonumber(ARGV[1])
local entries = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
if redis.call('EXISTS', KEYS[3]) == 0 then redis.call('SET', KEYS[3], string.format('%d', now * 1000)) end
local moved = {}
for _, entry in ipairs(entries) do
  local sep = string.find(entry, ':', 1, true)
  if tonumber(string.sub(entry, 1, sep - 1)) > now then
    local id = string.format('%d', redis.call('INCR', KEYS[3]))
    local item = string.sub(entry, sep + 1)
    redis.call('RPUSH', KEYS[2], id .. ':' .. item)
    moved[#moved + 1] = id .. ':' .. item
  end
end
local max = tonumber(ARGV[2])
redis.call('LTRIM', KEYS[2], -max, -1)
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('PEXPIRE', KEYS[3], ttl)
if #moved <= max then return moved end
local kept = {}
for i = #moved - max + 1, #moved do kept[#kept + 1] = moved[i] end
return kept`;

const READ_LOG = `local acked = tonumber(ARGV[1])
while true do
  local head = redis.call('LINDEX', KEYS[1], 0)
  if not head or tonumber(string.match(head, '^(%d+):')) > acked then break end
  redis.call('LPOP', KEYS[1])
end
return redis.call('LRANGE', KEYS[1], 0, -1)`;

/** "<id>:<item>" → a log entry. */
const toLogEntry = (entry: string): LogEntry => {
  const sep = entry.indexOf(':');
  return { id: Number(entry.slice(0, sep)), item: entry.slice(sep + 1) };
};

/** Opens a client that fails fast while Redis is away (a 503) and reconnects in the background. */
export function createRedisClient(url: string, onError: (error: Error) => void) {
  const client = createClient({
    url,
    // Without this, commands would wait in memory for Redis to come back and requests would hang.
    disableOfflineQueue: true,
    socket: {
      connectTimeout: 2000,
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 2000),
    },
  });
  client.on('error', onError);
  client.connect().catch(onError);
  return client;
}

/** The node-redis client, as @keyv/redis ships it. */
export type RedisClient = ReturnType<typeof createRedisClient>;

/** Builds the store on a connected (or reconnecting) client; `close` ends the client. */
export function createRedisStore(client: RedisClient): Store {
  const sha = (script: string) => createHash('sha1').update(script).digest('hex');
  const shas = new Map(
    [APPEND, DRAIN, STATS, PUT_FIELD, MOVE_TO_LOG, READ_LOG].map((script) => [script, sha(script)]),
  );
  const run = async (script: string, keys: string[], args: string[]): Promise<unknown> => {
    try {
      return await client.evalSha(shas.get(script) as string, { keys, arguments: args });
    } catch (error) {
      if (!String((error as Error).message).startsWith('NOSCRIPT')) throw error;
      return client.eval(script, { keys, arguments: args });
    }
  };
  const remainingMs = (pttl: unknown) => Math.max(0, Number(pttl));

  return {
    appendToQueue: async (pub, item, ttlMs, max) => {
      const keys = storeKeys(pub);
      return (await run(APPEND, [keys.queue, keys.hook], [item, String(ttlMs), String(max), '0'])) === 1;
    },

    appendUnlessHooked: async (pub, item, ttlMs, max) => {
      const keys = storeKeys(pub);
      const result = await run(APPEND, [keys.queue, keys.hook], [item, String(ttlMs), String(max), '1']);
      return typeof result === 'string' ? { hook: result } : result === 1;
    },

    drainQueue: async (pub) => (await run(DRAIN, [storeKeys(pub).queue], [])) as string[],

    queueStats: async (pub) => {
      const [count, pttl] = (await run(STATS, [storeKeys(pub).queue], [])) as [number, number];
      return { count, ttlMs: count > 0 ? remainingMs(pttl) : 0 };
    },

    publishValue: async (pub, value, ttlMs) => {
      await client.set(storeKeys(pub).value, value, { expiration: { type: 'PX', value: ttlMs } });
    },

    readValue: async (pub) => (await client.get(storeKeys(pub).value)) ?? undefined,

    renewValue: async (pub, ttlMs) => (await client.pExpire(storeKeys(pub).value, ttlMs)) === 1,

    deleteValue: async (pub) => {
      await client.del(storeKeys(pub).value);
    },

    valueTtl: async (pub) => remainingMs(await client.pTTL(storeKeys(pub).value)),

    putField: async (pub, uid, value, ttlMs, max) => {
      const keys = storeKeys(pub);
      return (
        (await run(
          PUT_FIELD,
          [keys.field(uid), keys.fieldIndex],
          [uid, value, String(ttlMs), String(max)],
        )) === 1
      );
    },

    takeField: async (pub, uid) => {
      const keys = storeKeys(pub);
      const [value] = await client.multi().getDel(keys.field(uid)).zRem(keys.fieldIndex, uid).exec();
      return typeof value === 'string' ? value : undefined;
    },

    fieldTtl: async (pub, uid) => remainingMs(await client.pTTL(storeKeys(pub).field(uid))),

    deleteField: async (pub, uid) => {
      const keys = storeKeys(pub);
      await client.multi().del(keys.field(uid)).zRem(keys.fieldIndex, uid).exec();
    },

    moveToLog: async (pub, ttlMs, max) => {
      const keys = storeKeys(pub);
      const moved = await run(MOVE_TO_LOG, [keys.queue, keys.log, keys.logSeq], [String(ttlMs), String(max)]);
      return (moved as string[]).map(toLogEntry);
    },

    readLog: async (pub, ackedId) =>
      ((await run(READ_LOG, [storeKeys(pub).log], [String(ackedId)])) as string[]).map(toLogEntry),

    setHook: async (pub, record, ttlMs) => {
      await client.set(storeKeys(pub).hook, record, { expiration: { type: 'PX', value: ttlMs } });
    },

    getHook: async (pub) => (await client.get(storeKeys(pub).hook)) ?? undefined,

    deleteHook: async (pub) => {
      await client.del(storeKeys(pub).hook);
    },

    close: async () => {
      if (client.isOpen) await client.close();
      else client.destroy();
    },
  };
}
