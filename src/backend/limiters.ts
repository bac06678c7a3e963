// Counters per client and window (rate limits, byte budgets, bans) on the backend's storage, through
// rate-limiter-flexible: in this process for the embedded stores, in Redis so they hold across instances.
import { type RateLimiterAbstract, RateLimiterMemory, RateLimiterRedis } from 'rate-limiter-flexible';
import type { RedisConnection } from '../store/redis-connection.js';
import { replyWithin } from '../store/redis-deadline.js';

/** One kind of counter: `points` per `durationS` window per key; past them, blocked for `blockS` if set. */
export interface LimiterSpec {
  /** Names the counter in storage (`dr:rl:<name>:<key>` in Redis). */
  name: string;
  points: number;
  durationS: number;
  blockS?: number;
}

/** Builds a limiter on the backend's storage. */
export type LimiterFactory = (spec: LimiterSpec) => RateLimiterAbstract;

/** Counters in this process: exact for one instance, which is all the embedded stores allow. */
export const memoryLimiters: LimiterFactory = ({ name, points, durationS, blockS = 0 }) =>
  new RateLimiterMemory({ keyPrefix: name, points, duration: durationS, blockDuration: blockS });

/** The limiter calls that reach Redis; each gets the reply deadline. */
const CALLS_TO_REDIS = new Set<PropertyKey>([
  'consume',
  'get',
  'penalty',
  'reward',
  'block',
  'set',
  'delete',
]);

/**
 * Counters in Redis, shared by every instance; each counter is one Redis key, `dr:rl:<name>:{<client>}`.
 * The hash tag puts every counter of one client (its rate limits, budget and ban) on one shard of a
 * cluster, and spreads clients over the shards: a shard that fails touches the requests of its share of
 * clients only, not of every client whose one counter happens to be there. A call Redis does not answer
 * within REPLY_DEADLINE_MS fails like any store failure (the caller lets the request pass) rather than
 * holding the request.
 */
export const redisLimiters =
  (client: RedisConnection, prefix = 'dr:rl:'): LimiterFactory =>
  ({ name, points, durationS, blockS = 0 }) => {
    const limiter = new RateLimiterRedis({
      storeClient: client,
      useRedisPackage: true,
      // A command sent while Redis is away fails at once (the caller lets the request pass).
      rejectIfRedisNotReady: true,
      keyPrefix: `${prefix}${name}`,
      points,
      duration: durationS,
      blockDuration: blockS,
    });
    return new Proxy(limiter, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver);
        if (!CALLS_TO_REDIS.has(property) || typeof value !== 'function') return value;
        return (key: string | number, ...rest: unknown[]) =>
          replyWithin(value.call(target, `{${key}}`, ...rest) as Promise<unknown>);
      },
    });
  };
