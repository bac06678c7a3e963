// Opens the store the configuration names.
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { createMemoryStore, openSqliteStore } from './keyv-store.js';
import { createRedisClient, createRedisStore } from './redis-store.js';
import { type Store, withStoreErrors } from './store.js';

/** The configured store, with every backend failure turned into a 503. */
export async function openStore(
  config: Pick<Config, 'store' | 'dataDir' | 'redisUrl'>,
  logger: Logger,
): Promise<Store> {
  const onError = (error: unknown) => logger.warn({ err: error }, 'store operation failed');
  switch (config.store) {
    case 'memory':
      return withStoreErrors(createMemoryStore(), onError);
    case 'sqlite':
      return withStoreErrors(await openSqliteStore(config.dataDir), onError);
    case 'redis': {
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
      return withStoreErrors(createRedisStore(client), onError);
    }
  }
}
