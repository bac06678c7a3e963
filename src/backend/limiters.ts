// Counters per client and window (rate limits, byte budgets, bans) on the backend's storage, through
// rate-limiter-flexible: in this process for the embedded stores, in Redis so they hold across instances.
import { type RateLimiterAbstract, RateLimiterMemory, RateLimiterRedis } from 'rate-limiter-flexible';
import type { RedisConnection } from '../store/redis-connection.js';

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

/** Counters in Redis, shared by every instance; each key is one Redis key, so a cluster spreads them. */
export const redisLimiters =
  (client: RedisConnection, prefix = 'dr:rl:'): LimiterFactory =>
  ({ name, points, durationS, blockS = 0 }) =>
    new RateLimiterRedis({
      storeClient: client,
      useRedisPackage: true,
      // A command sent while Redis is away fails at once (the caller lets the request pass).
      rejectIfRedisNotReady: true,
      keyPrefix: `${prefix}${name}`,
      points,
      duration: durationS,
      blockDuration: blockS,
    });
