// The Backend port (DESIGN §3): every stateful part of one backend, built together so that the relay
// core and the HTTP layer never see a Redis client or a SQLite handle.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { type Config, DEFAULT_SQLITE_STORE_MAX } from '../config.js';
import { createLocalNotifier, createRedisNotifier, type Notifier } from '../live/notifier.js';
import { createMemoryTokenRegistry, type TokenRegistry } from '../pipe/token-registry.js';
import type { Store } from '../store/store.js';
import { guardStore } from './guarded-store.js';
import { type LimiterFactory, memoryLimiters, redisLimiters } from './limiters.js';
import { createOutageWatch, type OutageWatch } from './outage.js';
import { watchRedisCapacity } from './redis-capacity.js';

/** What a health check reports of the backend. */
export interface BackendHealth {
  kind: Config['store'];
  /** False while the store cannot be reached. */
  up: boolean;
}

export interface Backend {
  /** The store, every failure of which is a 503. */
  store: Store;
  /** Pipe tokens waiting for their other side. */
  pipes: TokenRegistry;
  /** Live-delivery wake-ups. */
  notifier: Notifier;
  /** Rate limits, byte budgets and bans. */
  limiters: LimiterFactory;
  /** The store's outage state: logs once when it goes away and once when it is back. */
  outage: OutageWatch;
  health(): BackendHealth;
  close(): Promise<void>;
}

/** How long the first Redis connection may take before the relay serves anyway (with 503s until it is up). */
const REDIS_START_WAIT_MS = 3000;

type BackendConfig = Pick<
  Config,
  'store' | 'dataDir' | 'redisUrl' | 'redisCluster' | 'pipeTtlSeconds' | 'pipeMax' | 'storeMax'
>;

/**
 * Opens the backend the configuration names. Adapters are imported on demand, so a Redis deployment
 * never loads SQLite's native module.
 */
export async function openBackend(config: BackendConfig, logger: Logger): Promise<Backend> {
  const pipeLimits = { ttlMs: config.pipeTtlSeconds * 1000, max: config.pipeMax };
  if (config.store === 'redis') {
    const target = config.redisCluster
      ? { clusterSeeds: config.redisCluster }
      : { url: config.redisUrl as string };
    return openRedisBackend(target, pipeLimits, config.storeMax, logger);
  }

  const { openSqliteStore } = await import('../store/sqlite-store.js');
  const sqlite = openSqliteStore(config.store === 'memory' ? ':memory:' : config.dataDir, {
    maxBytes: config.storeMax ?? DEFAULT_SQLITE_STORE_MAX,
  });
  if (sqlite.legacyFileFound) {
    logger.warn(
      `${config.dataDir} holds deadrop.sqlite, the store of an earlier version; its data is not read (it expired within DEADROP_TTL of the upgrade) and the file may be deleted.`,
    );
  }
  const outage = createOutageWatch(`the ${config.store} store`, logger);
  const pipes = createMemoryTokenRegistry(pipeLimits);
  return {
    store: guardStore(sqlite, outage),
    pipes,
    notifier: createLocalNotifier(),
    limiters: memoryLimiters,
    outage,
    health: () => ({ kind: config.store, up: !outage.down }),
    close: async () => {
      await pipes.close();
      await sqlite.close();
    },
  };
}

/** Where the Redis backend connects: one server, or the seed nodes of a cluster. */
type RedisTarget = { url: string } | { clusterSeeds: readonly string[] };

async function openRedisBackend(
  target: RedisTarget,
  pipeLimits: { ttlMs: number; max: number },
  storeMax: number | undefined,
  logger: Logger,
): Promise<Backend> {
  const [connection, { createRedisStore }, { createRedisTokenRegistry }] = await Promise.all([
    import('../store/redis-connection.js'),
    import('../store/redis-store.js'),
    import('../pipe/redis-token-registry.js'),
  ]);
  const { isConnectionReady, whenConnected, closeConnection } = connection;
  const cluster = 'clusterSeeds' in target;
  const watch = createOutageWatch(cluster ? 'the Redis Cluster' : 'Redis', logger);
  let lastFailureAt = 0;
  const onError = (error: Error) => outage.failed(error, false);
  // On a cluster, a request that succeeds on one shard says nothing of a shard still failing over: the
  // outage ends when a look at every primary, begun after the last failure, finds each one answering
  // (redis-cluster-topology.ts, once a second), so that a failover logs one line when it starts and one
  // when it is over, not one per request that happens to succeed or fail.
  const outage: OutageWatch = cluster
    ? {
        failed: (error, refused, begunIn) => {
          lastFailureAt = Date.now();
          watch.failed(error, refused, begunIn);
        },
        recovered: () => {},
        get down() {
          return watch.down;
        },
        get epoch() {
          return watch.epoch;
        },
      }
    : watch;
  const client = cluster
    ? connection.createRedisClusterConnection(target.clusterSeeds, onError, (checkStartedAt) => {
        if (checkStartedAt > lastFailureAt) watch.recovered();
      })
    : connection.createRedisConnection(target.url, onError);
  if (!cluster) client.on('ready', () => watch.recovered());
  // Redis being down at start is not fatal: the relay answers 503 until it is back.
  await Promise.race([whenConnected(client), sleep(REDIS_START_WAIT_MS)]);
  const notifier = createRedisNotifier(client, outage);
  const capacity = watchRedisCapacity(client, storeMax, logger);
  return {
    store: guardStore(createRedisStore(client, { capacity }), outage),
    pipes: createRedisTokenRegistry(client, pipeLimits),
    notifier,
    limiters: redisLimiters(client),
    outage,
    health: () => ({ kind: 'redis', up: isConnectionReady(client) && !outage.down }),
    close: async () => {
      capacity.stop();
      await notifier.close();
      await closeConnection(client);
    },
  };
}
