// The Redis store's Lua scripts: each store operation that touches more than one key, or reads before it
// writes, is one script, so it is atomic across every instance. Every key of a script shares the key
// pair's hash tag, so each runs on one Redis Cluster slot.
import { type CommandParser, defineScript } from '@redis/client';

const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** A reply taken as the script returns it, typed for the caller. */
const asIs =
  <T>() =>
  (reply: unknown): T =>
    reply as T;

/**
 * Queue entries are "<expires ms>:<item>", oldest first, so the expired ones are always a prefix.
 * KEYS: queue, hook. ARGV: item, ttl ms, max, "1" to look at the webhook record first.
 * Returns the record (a webhook is registered: nothing stored), 1 (stored) or 0 (the queue is full).
 */
const APPEND_ITEM = defineScript({
  NUMBER_OF_KEYS: 2,
  SCRIPT: `${NOW}
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
return 1`,
  parseCommand(
    parser: CommandParser,
    queue: string,
    hook: string,
    item: string,
    ttlMs: number,
    max: number,
    unlessHooked: boolean,
  ) {
    parser.pushKey(queue);
    parser.pushKey(hook);
    parser.push(item, String(ttlMs), String(max), unlessHooked ? '1' : '0');
  },
  transformReply: asIs<string | number>(),
});

/** KEYS: queue. Removes every entry and returns the live items, oldest first. */
const DRAIN_QUEUE = defineScript({
  NUMBER_OF_KEYS: 1,
  SCRIPT: `${NOW}
local entries = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
local live = {}
for _, entry in ipairs(entries) do
  local sep = string.find(entry, ':', 1, true)
  if tonumber(string.sub(entry, 1, sep - 1)) > now then live[#live + 1] = string.sub(entry, sep + 1) end
end
return live`,
  parseCommand(parser: CommandParser, queue: string) {
    parser.pushKey(queue);
  },
  transformReply: asIs<string[]>(),
});

/** KEYS: queue. Returns { live items, ms until the queue key expires }. */
const QUEUE_STATS = defineScript({
  NUMBER_OF_KEYS: 1,
  IS_READ_ONLY: true,
  SCRIPT: `${NOW}
local n = redis.call('LLEN', KEYS[1])
local expired = 0
while expired < n do
  local entry = redis.call('LINDEX', KEYS[1], expired)
  if tonumber(string.match(entry, '^(%d+):')) > now then break end
  expired = expired + 1
end
return { n - expired, redis.call('PTTL', KEYS[1]) }`,
  parseCommand(parser: CommandParser, queue: string) {
    parser.pushKey(queue);
  },
  transformReply: asIs<[number, number]>(),
});

/**
 * Lua that forgets the blob sizes (hash `sizes`) of uids no longer live in `index` (expired or taken),
 * so the quota counts only live blobs, and sets the local `used` to what the blobs but `except` hold.
 */
const liveBlobBytes = (index: string, sizes: string, except: string) => `local used = 0
local sizes = redis.call('HGETALL', ${sizes})
for i = 1, #sizes, 2 do
  if not redis.call('ZSCORE', ${index}, sizes[i]) then
    redis.call('HDEL', ${sizes}, sizes[i])
  elseif sizes[i] ~= ${except} then
    used = used + tonumber(sizes[i + 1])
  end
end`;

/**
 * KEYS: field, field index (uid → expiry), blob sizes (uid → bytes).
 * ARGV: uid, value, ttl ms, max fields, blob bytes (0 for JSON), blob quota.
 * Returns { 'stored' } or { 'fields_full' } or { 'quota_full', bytes used by the other blobs }.
 */
const PUT_FIELD = defineScript({
  NUMBER_OF_KEYS: 3,
  SCRIPT: `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) and redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then
  return { 'fields_full' }
end
${liveBlobBytes('KEYS[2]', 'KEYS[3]', 'ARGV[1]')}
local size = tonumber(ARGV[5])
if size > 0 and used + size > tonumber(ARGV[6]) then return { 'quota_full', used } end
local ttl = tonumber(ARGV[3])
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
if size > 0 then redis.call('HSET', KEYS[3], ARGV[1], size) else redis.call('HDEL', KEYS[3], ARGV[1]) end
for i = 2, 3 do
  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
end
return { 'stored' }`,
  parseCommand(
    parser: CommandParser,
    keys: [field: string, index: string, sizes: string],
    uid: string,
    value: Buffer,
    ttlMs: number,
    maxFields: number,
    blobBytes: number,
    quota: number,
  ) {
    for (const key of keys) parser.pushKey(key);
    parser.push(uid, value, String(ttlMs), String(maxFields), String(blobBytes), String(quota));
  },
  transformReply: asIs<[string, number?]>(),
});

/** KEYS: field, field index, blob sizes. ARGV: uid. Removes the value and returns it (nil when none). */
const TAKE_FIELD = defineScript({
  NUMBER_OF_KEYS: 3,
  SCRIPT: `local value = redis.call('GET', KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return value`,
  parseCommand(parser: CommandParser, keys: [string, string, string], uid: string) {
    for (const key of keys) parser.pushKey(key);
    parser.push(uid);
  },
  transformReply: asIs<Buffer | null>(),
});

/** KEYS: field, field index, blob sizes. ARGV: uid. Removes the value, returning nothing. */
const DELETE_FIELD = defineScript({
  NUMBER_OF_KEYS: 3,
  SCRIPT: `redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1`,
  parseCommand(parser: CommandParser, keys: [string, string, string], uid: string) {
    for (const key of keys) parser.pushKey(key);
    parser.push(uid);
  },
  transformReply: asIs<number>(),
});

/** KEYS: field index, blob sizes. Returns the bytes the key pair's live blobs hold. */
const BLOB_BYTES = defineScript({
  NUMBER_OF_KEYS: 2,
  SCRIPT: `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
${liveBlobBytes('KEYS[1]', 'KEYS[2]', "''")}
return used`,
  parseCommand(parser: CommandParser, index: string, sizes: string) {
    parser.pushKey(index);
    parser.pushKey(sizes);
  },
  transformReply: asIs<number>(),
});

/**
 * KEYS: queue, log, log sequence. ARGV: keep ms, max entries.
 * The log holds "<id>:<item>"; ids come from a counter that starts from the clock (µs).
 */
const MOVE_TO_LOG = defineScript({
  NUMBER_OF_KEYS: 3,
  SCRIPT: `${NOW}
local keep = tonumber(ARGV[1])
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
if #moved == 0 then return moved end
local max = tonumber(ARGV[2])
redis.call('LTRIM', KEYS[2], -max, -1)
redis.call('PEXPIRE', KEYS[2], keep)
redis.call('PEXPIRE', KEYS[3], keep)
if #moved <= max then return moved end
local kept = {}
for i = #moved - max + 1, #moved do kept[#kept + 1] = moved[i] end
return kept`,
  parseCommand(parser: CommandParser, keys: [string, string, string], keepMs: number, max: number) {
    for (const key of keys) parser.pushKey(key);
    parser.push(String(keepMs), String(max));
  },
  transformReply: asIs<string[]>(),
});

/** KEYS: log. ARGV: acknowledged id. Forgets entries up to it and returns the rest. */
const READ_LOG = defineScript({
  NUMBER_OF_KEYS: 1,
  SCRIPT: `local acked = tonumber(ARGV[1])
while true do
  local head = redis.call('LINDEX', KEYS[1], 0)
  if not head or tonumber(string.match(head, '^(%d+):')) > acked then break end
  redis.call('LPOP', KEYS[1])
end
return redis.call('LRANGE', KEYS[1], 0, -1)`,
  parseCommand(parser: CommandParser, log: string, ackedId: number) {
    parser.pushKey(log);
    parser.push(String(ackedId));
  },
  transformReply: asIs<string[]>(),
});

/** The scripts, as node-redis `scripts` option: each becomes a method of the client. */
export const STORE_SCRIPTS = {
  appendItem: APPEND_ITEM,
  drainQueue: DRAIN_QUEUE,
  queueStats: QUEUE_STATS,
  putField: PUT_FIELD,
  takeField: TAKE_FIELD,
  deleteField: DELETE_FIELD,
  blobBytes: BLOB_BYTES,
  moveToLog: MOVE_TO_LOG,
  readLog: READ_LOG,
};
