// Shared test fixtures: real stores (memory, SQLite in a temp dir, Redis), apps built on them, key pairs.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import request from 'supertest';
import { type Config, loadConfig } from '../src/config.js';
import { createApp, pipesOf } from '../src/http/app.js';
import { continueUnlessPipe } from '../src/http/pipe-routes.js';
import { createKeyring, type Keyring } from '../src/keys.js';
import { createLocalNotifier, createRedisNotifier, type Notifier } from '../src/live/notifier.js';
import { createMemoryStore } from '../src/store/keyv-store.js';
import { createRedisClient, createRedisStore, type RedisClient } from '../src/store/redis-store.js';
import { openSqliteStore } from '../src/store/sqlite-store.js';
import { type Store, withStoreErrors } from '../src/store/store.js';

/** Redis must answer here: CI starts one, and the Redis tests never skip. */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export type StoreKind = 'memory' | 'sqlite' | 'redis';

export const silentLogger = pino({ level: 'silent' });

export const tempDir = () => mkdtemp(join(tmpdir(), 'deadrop-test-'));

export const randomSecret = () => randomBytes(24).toString('base64url');

export interface TestStore {
  store: Store;
  notifier: Notifier;
  redis?: RedisClient;
  dispose: () => Promise<void>;
}

/** A store of the given kind with its live-delivery notifier, and how to dispose of them (and the temp dir). */
export async function openTestStore(kind: StoreKind, dataDir?: string): Promise<TestStore> {
  if (kind === 'memory') {
    return {
      store: withStoreErrors(createMemoryStore()),
      notifier: createLocalNotifier(),
      dispose: async () => {},
    };
  }
  if (kind === 'sqlite') {
    const dir = dataDir ?? (await tempDir());
    const store = withStoreErrors(await openSqliteStore(dir));
    return {
      store,
      notifier: createLocalNotifier(),
      dispose: async () => {
        await store.close();
        if (!dataDir) await rm(dir, { recursive: true, force: true });
      },
    };
  }
  const client = createRedisClient(REDIS_URL, () => {});
  await waitFor(() => client.isReady, `Redis to be ready at ${REDIS_URL}`);
  const store = withStoreErrors(createRedisStore(client));
  const notifier = createRedisNotifier(client, silentLogger);
  return {
    store,
    notifier,
    redis: client,
    dispose: async () => {
      await notifier.close();
      await store.close();
    },
  };
}

/** The defaults, on the memory store, with rate limits off (tests that want them turn them on). */
export const testConfig = (overrides: Partial<Config> = {}): Config => ({
  ...loadConfig({ DEADROP_STORE: 'memory', DEADROP_RATE_LIMIT: '0', DEADROP_TTL: '60' }),
  ...overrides,
});

export interface TestRelay {
  app: ReturnType<typeof createApp>;
  agent: ReturnType<typeof request>;
  store: Store;
  notifier: Notifier;
  keyring: Keyring;
  /** A fresh key pair issued by this relay. */
  keys: () => { private: string; public: string };
  dispose: () => Promise<void>;
}

/** An app on a real store of `kind`; pass `secret`/`store` to share them between instances. */
export async function openTestRelay(
  kind: StoreKind,
  options: {
    config?: Partial<Config>;
    secret?: string;
    logger?: pino.Logger;
    dataDir?: string;
  } = {},
): Promise<TestRelay> {
  const { store, notifier, redis, dispose } = await openTestStore(kind, options.dataDir);
  const secret = options.secret ?? randomSecret();
  const keyring = createKeyring(secret);
  const config = testConfig(options.config);
  const app = createApp({ config, store, notifier, redis, secret, logger: options.logger ?? silentLogger });
  const disposeAll = async () => {
    await pipesOf(app).close();
    await dispose();
  };
  return {
    app,
    agent: request(app),
    store,
    notifier,
    keyring,
    keys: () => keyring.issue(),
    dispose: disposeAll,
  };
}

/** Starts `app` on 127.0.0.1, port 0, for tests that need a real server (streams, SSE, concurrency). */
export async function listen(
  app: ReturnType<typeof createApp>,
): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer(app);
  server.on('checkContinue', continueUnlessPipe(app));
  server.keepAliveTimeout = 1;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Polls `condition` every 10 ms for at most `timeoutMs`. */
export async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await sleep(10);
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A public key of the right shape that no relay issued. */
export const forgedKey = () => randomBytes(24).toString('base64url');
