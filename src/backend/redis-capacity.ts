// The global bound on Redis (issue 11): writes stop with 507 before Redis is full, so that it never has
// to evict a relay's data (every key has a TTL, so a volatile-* policy would pick ours) or refuse a write
// half way through.
import type { Logger } from 'pino';
import type { RedisConnection } from '../store/redis-connection.js';

/** How often each instance reads Redis's memory figures: one cheap INFO. */
const POLL_MS = 250;
/**
 * Writes stop at this share of maxmemory: room for what other instances wrote since the last reading
 * and for Redis's own overhead.
 */
const MAXMEMORY_SHARE = 0.9;
/** What Redis spends on a stored value beyond its bytes (key, list or sorted-set entry, expiry). */
const PER_WRITE_OVERHEAD = 512;

export interface Capacity {
  /** True when writes must be refused (507). */
  full(): boolean;
  /** Counts a write of `bytes` until the next reading, so that a burst between readings cannot pass the bound. */
  wrote(bytes: number): void;
  stop(): void;
}

/** Reads `field:value` lines of an INFO section. */
const infoField = (info: string, field: string): string | undefined =>
  new RegExp(`^${field}:(.*)$`, 'm').exec(info)?.[1]?.trim();

/**
 * Polls `INFO memory`: full once `used_memory` reaches `storeMax` (DEADROP_STORE_MAX) or 90 % of Redis's
 * `maxmemory`, whichever is lower. Says once what bound applies, and warns when Redis would evict.
 */
export function watchRedisCapacity(
  client: Pick<RedisConnection, 'info' | 'isReady'>,
  storeMax: number | undefined,
  logger: Logger,
): Capacity {
  let used = 0;
  let bound = Number.POSITIVE_INFINITY;
  let sinceReading = 0;
  let wasFull = false;
  let told = false;
  const isFull = () => used + sinceReading >= bound;

  const tellTheBound = (maxmemory: number, policy: string) => {
    told = true;
    if (bound === Number.POSITIVE_INFINITY) {
      logger.warn(
        'Redis has no maxmemory and DEADROP_STORE_MAX is not set: nothing bounds what the relay stores.',
      );
    } else if (maxmemory > 0 && policy !== 'noeviction') {
      logger.warn(
        { maxmemoryPolicy: policy },
        `Redis evicts keys when full (maxmemory-policy ${policy}); the relay stops writes at ${Math.round(bound)} bytes so that it never does, but set maxmemory-policy noeviction.`,
      );
    }
  };

  const poll = async () => {
    if (!client.isReady) return;
    let info: string;
    try {
      info = await client.info('memory');
    } catch {
      return; // an outage is the store's to report
    }
    used = Number(infoField(info, 'used_memory') ?? 0);
    sinceReading = 0;
    const maxmemory = Number(infoField(info, 'maxmemory') ?? 0);
    bound = Math.min(
      storeMax ?? Number.POSITIVE_INFINITY,
      maxmemory > 0 ? maxmemory * MAXMEMORY_SHARE : Number.POSITIVE_INFINITY,
    );
    if (!told) tellTheBound(maxmemory, infoField(info, 'maxmemory_policy') ?? 'unknown');
    const full = isFull();
    if (full && !wasFull) {
      logger.warn(
        { used, bound },
        'the store is full: writes are refused (507) until data is read or expires',
      );
    } else if (!full && wasFull) {
      logger.info({ used, bound }, 'the store has room again');
    }
    wasFull = full;
  };
  void poll();
  const timer = setInterval(() => void poll(), POLL_MS).unref();
  return {
    full: isFull,
    wrote: (bytes) => {
      sinceReading += bytes + PER_WRITE_OVERHEAD;
    },
    stop: () => clearInterval(timer),
  };
}
