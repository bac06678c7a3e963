// Pipe tokens in Redis, so that both sides of a pipe meet on one instance whichever instance they ask (DESIGN §6, §8).
import { type CommandParser, defineScript } from '@redis/client';
import { errors } from '../errors.js';
import type { RedisConnection } from '../store/redis-connection.js';
import { replyWithin } from '../store/redis-deadline.js';
import type { PipeDirection } from './sides.js';
import { newPipeToken, pipeLineFull, type RegistryLimits, type TokenRegistry } from './token-registry.js';

/**
 * Under the key pair's hash tag (DESIGN §3): a sorted set of waiting tokens scored by expiry, and one
 * record per token, "<role> <method> <base URL>", naming the instance that holds its stream.
 */
export const pipeKeys = (pub: string, dir: PipeDirection) => ({
  waiting: `dr:{${pub}}:pipe:${dir}`,
  records: `dr:{${pub}}:pipe:${dir}:tokens`,
});

const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

const FORGET_EXPIRED = `local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #expired > 0 then
  redis.call('ZREM', KEYS[1], unpack(expired))
  redis.call('HDEL', KEYS[2], unpack(expired))
end`;

// One script, so two instances can never pair with the same token or both create one.
// KEYS: waiting, records. ARGV: role, method, new token, base URL, ttl ms, max per method.
const ARRIVE = defineScript({
  NUMBER_OF_KEYS: 2,
  SCRIPT: `${NOW}
${FORGET_EXPIRED}
local same = 0
for _, token in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local record = redis.call('HGET', KEYS[2], token)
  if record then
    local role, method, base = string.match(record, '^(%S+) (%S+) (.*)$')
    if role ~= ARGV[1] then
      redis.call('ZREM', KEYS[1], token)
      redis.call('HDEL', KEYS[2], token)
      return { 'paired', token, base }
    end
    if method == ARGV[2] then same = same + 1 end
  end
end
if same >= tonumber(ARGV[6]) then return { 'full' } end
local ttl = tonumber(ARGV[5])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[3])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[1] .. ' ' .. ARGV[2] .. ' ' .. ARGV[4])
for _, key in ipairs(KEYS) do
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end
return { 'created', ARGV[3], ARGV[4] }`,
  parseCommand(parser: CommandParser, keys: [string, string], args: string[]) {
    for (const key of keys) parser.pushKey(key);
    parser.push(...args);
  },
  transformReply: (reply: unknown) => reply as [outcome: string, token?: string, base?: string],
});

// KEYS: waiting, records.
const COUNT_WAITING = defineScript({
  NUMBER_OF_KEYS: 2,
  SCRIPT: `${NOW}
${FORGET_EXPIRED}
return redis.call('ZCARD', KEYS[1])`,
  parseCommand(parser: CommandParser, keys: [string, string]) {
    for (const key of keys) parser.pushKey(key);
  },
  transformReply: (reply: unknown) => reply as number,
});

// A script rather than MULTI: on a cluster, a script follows a slot that moved (MOVED), a MULTI does not.
// KEYS: waiting, records. ARGV: token.
const CANCEL = defineScript({
  NUMBER_OF_KEYS: 2,
  SCRIPT: `redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1`,
  parseCommand(parser: CommandParser, keys: [string, string], token: string) {
    for (const key of keys) parser.pushKey(key);
    parser.push(token);
  },
  transformReply: (reply: unknown) => reply as number,
});

/** The registry's scripts, as node-redis `scripts` option. */
export const PIPE_SCRIPTS = { pipeArrive: ARRIVE, pipeCountWaiting: COUNT_WAITING, pipeCancel: CANCEL };

/** The registry shared by every instance on one Redis (or one cluster); a Redis failure is a 503 (store_unavailable). */
export function createRedisTokenRegistry(
  client: RedisConnection,
  { ttlMs, max }: RegistryLimits,
): TokenRegistry {
  const guarded = async <T>(operation: () => Promise<T>): Promise<T> => {
    try {
      return await replyWithin(operation());
    } catch (error) {
      throw errors.storeUnavailable(error);
    }
  };

  return {
    async arrive({ pub, dir, role, method, baseUrl }) {
      const keys = pipeKeys(pub, dir);
      const [outcome, token, base] = await guarded(() =>
        client.pipeArrive(
          [keys.waiting, keys.records],
          [role, method, newPipeToken(), baseUrl ?? '', String(ttlMs), String(max)],
        ),
      );
      if (outcome === 'full' || token === undefined) throw pipeLineFull({ ttlMs, max });
      return { token, created: outcome === 'created', baseUrl: base || undefined };
    },
    async cancel(pub, dir, token) {
      const keys = pipeKeys(pub, dir);
      await guarded(() => client.pipeCancel([keys.waiting, keys.records], token));
    },
    async countWaiting(pub, dir) {
      const keys = pipeKeys(pub, dir);
      return Number(await guarded(() => client.pipeCountWaiting([keys.waiting, keys.records])));
    },
    // The client belongs to the caller, who closes it with the store.
    async close() {},
  };
}
