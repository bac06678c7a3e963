// Opens the store the configuration names, and the Redis client that rate limits, pipes and live
// delivery share with it when the store is Redis.
import { once } from 'node:events';
import { setTimeout } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { createLocalNotifier, createRedisNotifier, type Notifier } from '../live/notifier.js';
import type { RedisClient } from './redis-store.js';
import { type Store, withStoreErrors } from './store.js';

/** The store, the Redis client when the store is Redis, and live-delivery wake-ups to match. */
export interface Backend {
  store: Store;
  redis?: RedisClient;
  notifier: Notifier;
  close(): Promise<void>;
}

const embedded = (store: Store): Backend => {
  const notifier = createLocalNotifier();
  return { store, notifier, close: () => store.close() };
};

const REDIS_START_WAIT_MS = 3000;

/**
 * The configured store, with every backend failure turned into a 503. Adapters are imported on demand,
 * so a Redis deployment never loads SQLite's native module.
 */
export async function openBackend(
  config: Pick<Config, 'store' | 'dataDir' | 'redisUrl'>,
  logger: Logger,
): Promise<Backend> {
  const onError = (error: unknown) => logger.warn({ err: error }, 'store operation failed');
  switch (config.store) {
    case 'memory': {
      const { createMemoryStore } = await import('./keyv-store.js');
      return embedded(withStoreErrors(createMemoryStore(), onError));
    }
    case 'sqlite': {
      const { openSqliteStore } = await import('./sqlite-store.js');
      return embedded(withStoreErrors(await openSqliteStore(config.dataDir), onError));
    }
    case 'redis': {
      const { createRedisClient, createRedisStore } = await import('./redis-store.js');
      let down = false;
      const client = createRedisClient(config.redisUrl as string, (error) => {
        // One line when Redis goes away, not one per reconnect attempt.
        if (!down) logger.error({ err: error }, 'Redis is unreachable; answering 503 until it is back');
        down = true;
      });
      client.on('ready', () => {
        if (down) logger.info('Redis is back');
        down = false;
      });
      // Wait a little for the first connection, so the first requests do not meet a 503; Redis being
      // down at start is not fatal: the relay answers 503 until it is back.
      await Promise.race([once(client, 'ready'), setTimeout(REDIS_START_WAIT_MS)]);
      const store = withStoreErrors(createRedisStore(client), onError);
      const notifier = createRedisNotifier(client, logger);
      return {
        store,
        redis: client,
        notifier,
        close: async () => {
          await notifier.close();
          await store.close();
        },
      };
    }
  }
}
