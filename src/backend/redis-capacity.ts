// The global bound on Redis (issue 11): writes stop with 507 before Redis is full, so that it never has
// to evict a relay's data (every key has a TTL, so a volatile-* policy would pick ours) or refuse a write
// half way through. On a cluster every primary is watched: a key pair's writes all land on one shard.
import type { Logger } from 'pino';
import { primaryClientsOf, type RedisConnection } from '../store/redis-connection.js';
import { replyWithin } from '../store/redis-deadline.js';

/** How often each instance reads Redis's memory figures: one cheap INFO per primary. */
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

interface PrimaryMemory {
  used: number;
  /** 0 when the primary has no maxmemory. */
  maxmemory: number;
  policy: string;
}

/** Reads `INFO memory` of every primary; undefined when one cannot be read (an outage is the store's to report). */
async function readPrimaries(client: RedisConnection): Promise<PrimaryMemory[] | undefined> {
  try {
    const primaries = await primaryClientsOf(client);
    if (primaries.length === 0 || primaries.some((primary) => !primary.isReady)) return undefined;
    return await Promise.all(
      primaries.map(async (primary) => {
        const info = await replyWithin(primary.info('memory'));
        return {
          used: Number(infoField(info, 'used_memory') ?? 0),
          maxmemory: Number(infoField(info, 'maxmemory') ?? 0),
          policy: infoField(info, 'maxmemory_policy') ?? 'unknown',
        };
      }),
    );
  } catch {
    return undefined;
  }
}

/**
 * Polls `INFO memory` of each primary: full once the primaries' `used_memory` together reach `storeMax`
 * (DEADROP_STORE_MAX), or any one primary reaches 90 % of its own `maxmemory` (a key pair on that shard
 * could not write; a full shard refuses every write, since which shard a key pair lands on is not
 * the client's to choose). Says once what bound applies, and warns when Redis would evict.
 */
export function watchRedisCapacity(
  client: RedisConnection,
  storeMax: number | undefined,
  logger: Logger,
): Capacity {
  let primaries: Array<{ used: number; bound: number }> = [];
  let sinceReading = 0;
  let wasFull = false;
  let told = false;
  // A write since the last reading is counted against every primary (where it went is not known here):
  // a cautious estimate that the next reading corrects.
  const isFull = () =>
    (storeMax !== undefined &&
      primaries.reduce((sum, primary) => sum + primary.used, 0) + sinceReading >= storeMax) ||
    primaries.some((primary) => primary.used + sinceReading >= primary.bound);

  const tellTheBound = (memory: PrimaryMemory[]) => {
    told = true;
    const evicting = memory.find((primary) => primary.maxmemory > 0 && primary.policy !== 'noeviction');
    if (storeMax === undefined && memory.some((primary) => primary.maxmemory === 0)) {
      logger.warn(
        memory.length > 1
          ? 'A Redis primary has no maxmemory and DEADROP_STORE_MAX is not set: nothing bounds what the relay stores there.'
          : 'Redis has no maxmemory and DEADROP_STORE_MAX is not set: nothing bounds what the relay stores.',
      );
    } else if (evicting) {
      logger.warn(
        { maxmemoryPolicy: evicting.policy },
        `Redis evicts keys when full (maxmemory-policy ${evicting.policy}); the relay stops writes at ${MAXMEMORY_SHARE * 100} % of maxmemory so that it never does, but set maxmemory-policy noeviction.`,
      );
    }
  };

  let polling = false;
  const poll = async () => {
    if (polling) return; // a reading still waits for a slow primary
    polling = true;
    const memory = await readPrimaries(client).finally(() => {
      polling = false;
    });
    if (!memory) return;
    primaries = memory.map((primary) => ({
      used: primary.used,
      bound: primary.maxmemory > 0 ? primary.maxmemory * MAXMEMORY_SHARE : Number.POSITIVE_INFINITY,
    }));
    sinceReading = 0;
    if (!told) tellTheBound(memory);
    const full = isFull();
    const used = memory.reduce((sum, primary) => sum + primary.used, 0);
    if (full && !wasFull) {
      logger.warn(
        { used, primaries: memory.length },
        'the store is full: writes are refused (507) until data is read or expires',
      );
    } else if (!full && wasFull) {
      logger.info({ used, primaries: memory.length }, 'the store has room again');
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
