// The store contract against each real backend: SQLite in memory, SQLite in a temp dir, and Redis.
import { rm } from 'node:fs/promises';
import { createRedisConnection } from '../src/store/redis-connection.js';
import { createRedisStore } from '../src/store/redis-store.js';
import { openSqliteStore } from '../src/store/sqlite-store.js';
import { REDIS_URL, tempDir, waitFor } from './helpers.js';
import { type ContractFixture, storeContract } from './store.contract.js';

/** A clock the test moves: SQLite measures expiry with it, so no test waits out a TTL. */
function movableClock() {
  let offset = 0;
  return {
    now: () => Date.now() + offset,
    elapse: async (ms: number) => {
      offset += ms;
    },
  };
}

storeContract('memory', async (): Promise<ContractFixture> => {
  const clock = movableClock();
  const store = openSqliteStore(':memory:', { now: clock.now, purgeIntervalMs: 0 });
  return { store, elapse: clock.elapse, dispose: () => store.close() };
});

storeContract('sqlite', async (): Promise<ContractFixture> => {
  const clock = movableClock();
  const dir = await tempDir();
  const store = openSqliteStore(dir, { now: clock.now, purgeIntervalMs: 0 });
  return {
    store,
    elapse: clock.elapse,
    dispose: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

storeContract('redis', async (): Promise<ContractFixture> => {
  const client = createRedisConnection(REDIS_URL, () => {});
  await waitFor(() => client.isReady, `Redis to be ready at ${REDIS_URL}`);
  /** Redis's clock in ms, the one its TTLs run on. */
  const redisNow = async () => {
    const [seconds, micros] = await client.time().then((t) => [Number(t[0]), Number(t[1])]);
    return (seconds as number) * 1000 + Math.floor((micros as number) / 1000);
  };
  return {
    store: createRedisStore(client),
    // Redis's clock cannot be moved: wait until it has moved past the given time.
    elapse: async (ms) => {
      const until = (await redisNow()) + ms;
      await waitFor(async () => (await redisNow()) > until, `Redis's clock to pass ${ms} ms`, ms + 5000);
    },
    dispose: () => client.close(),
  };
});
