// Shared test fixtures: real stores (memory, SQLite in a temp dir, Redis), apps built on them, key pairs.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import request from 'supertest';
import { vi } from 'vitest';
import { type Backend, openBackend } from '../src/backend/open-backend.js';
import { composeRelay } from '../src/compose.js';
import { type Config, loadConfig } from '../src/config.js';
import { listenerOf, pipesOf } from '../src/http/app.js';
import { continueUnlessPipe } from '../src/http/pipe-routes.js';
import { createKeyring, type Keyring } from '../src/keys.js';
import type { Notifier } from '../src/live/notifier.js';
import type { Relay } from '../src/relay.js';
import type { Store } from '../src/store/store.js';
import type { WebhookSender } from '../src/webhooks/webhook-sender.js';

/** Redis must answer here: CI starts one, and the Redis tests never skip. */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export type StoreKind = 'memory' | 'sqlite' | 'redis';

export const silentLogger = pino({ level: 'silent' });

export const tempDir = () => mkdtemp(join(tmpdir(), 'deadrop-test-'));

export const randomSecret = () => randomBytes(24).toString('base64url');

export interface TestBackend {
  backend: Backend;
  dispose: () => Promise<void>;
}

/** A real backend of `kind`, opened as the server opens it (SQLite in a temp dir unless `dataDir` is given). */
export async function openTestBackend(
  kind: StoreKind,
  options: { dataDir?: string; config?: Partial<Config>; logger?: pino.Logger } = {},
): Promise<TestBackend> {
  const dir = kind === 'sqlite' ? (options.dataDir ?? (await tempDir())) : './data';
  const redisUrl = options.config?.redisUrl ?? REDIS_URL;
  const config = testConfig({ ...options.config, store: kind, dataDir: dir, redisUrl });
  const backend = await openBackend(config, options.logger ?? silentLogger);
  if (kind === 'redis') await waitFor(() => backend.health().up, `Redis to be ready at ${redisUrl}`);
  return {
    backend,
    dispose: async () => {
      await backend.close();
      if (kind === 'sqlite' && !options.dataDir) await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface TestStore {
  store: Store;
  notifier: Notifier;
  dispose: () => Promise<void>;
}

/** The store of a real backend of `kind`, with its live-delivery notifier. */
export async function openTestStore(kind: StoreKind, dataDir?: string): Promise<TestStore> {
  const { backend, dispose } = await openTestBackend(kind, dataDir === undefined ? {} : { dataDir });
  return { store: backend.store, notifier: backend.notifier, dispose };
}

/** The defaults, on the memory store, with rate limits off (tests that want them turn them on). */
export const testConfig = (overrides: Partial<Config> = {}): Config => ({
  ...loadConfig({ DEADROP_STORE: 'memory', DEADROP_RATE_LIMIT: '0', DEADROP_TTL: '60' }),
  ...overrides,
});

export interface TestRelay {
  app: ReturnType<typeof composeRelay>['app'];
  agent: ReturnType<typeof request>;
  relay: Relay;
  backend: Backend;
  store: Store;
  notifier: Notifier;
  keyring: Keyring;
  /** A fresh key pair issued by this relay. */
  keys: () => { private: string; public: string };
  dispose: () => Promise<void>;
}

/** An app on a real backend of `kind`; pass `secret`/`dataDir` to share them between instances. */
export async function openTestRelay(
  kind: StoreKind,
  options: {
    config?: Partial<Config>;
    secret?: string;
    logger?: pino.Logger;
    dataDir?: string;
    webhooks?: WebhookSender;
  } = {},
): Promise<TestRelay> {
  const logger = options.logger ?? silentLogger;
  const config = testConfig(options.config);
  const { backend, dispose } = await openTestBackend(kind, { ...options, config: options.config ?? {} });
  const secret = options.secret ?? randomSecret();
  const keyring = createKeyring(secret);
  const { app, relay } = composeRelay({
    config: { ...config, store: kind },
    backend,
    secret,
    logger,
    ...(options.webhooks && { webhooks: options.webhooks }),
  });
  return {
    app,
    agent: request(listenerOf(app)),
    relay,
    backend,
    store: backend.store,
    notifier: backend.notifier,
    keyring,
    keys: () => keyring.issue(),
    dispose: async () => {
      pipesOf(app).close();
      await dispose();
    },
  };
}

/** Starts `app` on 127.0.0.1, port 0, for tests that need a real server (streams, SSE, concurrency). */
export async function listen(
  app: ReturnType<typeof composeRelay>['app'],
): Promise<{ url: string; close: () => Promise<void> }> {
  // The relay's own listener (its fast lane, then the app); an app that wraps the relay's is served as it is.
  const listener = app.locals.listener ? listenerOf(app) : app;
  const server = createServer(listener);
  server.on('checkContinue', continueUnlessPipe(listener));
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

/** Redis's clock in ms: the one its TTLs run on. */
async function redisNow(): Promise<number> {
  const { createClient } = await import('@redis/client');
  const client = createClient({ url: REDIS_URL });
  await client.connect();
  try {
    const [seconds, micros] = await client.time();
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  } finally {
    await client.close();
  }
}

/**
 * Lets `ms` pass for a relay's store: the embedded stores measure expiry with Date, which the caller
 * fakes (`vi.useFakeTimers({ toFake: ['Date'] })`) and this moves; Redis's clock cannot be moved, so
 * this waits until it has moved that far.
 */
export async function elapse(kind: StoreKind, ms: number): Promise<void> {
  if (kind !== 'redis') {
    vi.setSystemTime(Date.now() + ms);
    return;
  }
  const until = (await redisNow()) + ms;
  await waitFor(async () => (await redisNow()) > until, `Redis's clock to pass ${ms} ms`, ms + 5000);
}

/** A public key of the right shape that no relay issued. */
export const forgedKey = () => randomBytes(24).toString('base64url');
