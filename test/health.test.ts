// GET /healthz: the store's state for load balancers, 503 while Redis is away or the relay stops, never
// rate limited, and a probe of a store believed away at most once a second.
import { type ChildProcess, spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import request from 'supertest';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { openBackend } from '../src/backend/open-backend.js';
import { composeRelay } from '../src/compose.js';
import { createHealthCheck } from '../src/http/health.js';
import { createKeyring } from '../src/keys.js';
import { openTestRelay, randomSecret, silentLogger, tempDir, testConfig, waitFor } from './helpers.js';
import { sampleValue } from './prometheus-text.js';

describe.each(['sqlite', 'redis'] as const)('GET /healthz on %s', (kind) => {
  it('answers 200 with the store state, uncached, with nothing but states in it', async () => {
    const relay = await openTestRelay(kind);
    try {
      const res = await relay.agent.get('/healthz').expect(200);
      expect(res.body).toEqual({ status: 'ok', store: { kind, up: true } });
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers['access-control-allow-origin']).toBe('*');
      await relay.agent.head('/healthz').expect(200);
      const post = await relay.agent.post('/healthz').expect(405);
      expect(post.headers.allow).toBe('GET');
      expect(post.body).toMatchObject({ code: 'method_not_allowed' });
    } finally {
      await relay.dispose();
    }
  });

  it('still answers, and /metrics too, to a client that is rate limited and then banned', async () => {
    const relay = await openTestRelay(kind, { config: { rateLimit: 1, banAfter: 2, banTimeSeconds: 60 } });
    try {
      let status = 0;
      for (let n = 0; n < 10 && status !== 403; n++) status = (await relay.agent.get('/keys')).status;
      expect(status).toBe(403);
      await relay.agent.get('/id').expect(403);
      for (let n = 0; n < 5; n++) {
        await relay.agent.get('/healthz').expect(200);
        await relay.agent.get('/metrics').expect(200);
      }
    } finally {
      await relay.dispose();
    }
  });

  it('says stopping with a 503 once the relay begins to stop', async () => {
    const relay = await openTestRelay(kind);
    const { app, stopping } = composeRelay({
      config: testConfig({ store: kind }),
      backend: relay.backend,
      secret: randomSecret(),
      logger: silentLogger,
    });
    try {
      await request(app).get('/healthz').expect(200);
      stopping.stop();
      const res = await request(app).get('/healthz').expect(503);
      expect(res.body).toEqual({ status: 'stopping', store: { kind, up: true } });
    } finally {
      await relay.dispose();
    }
  });
});

/** Whether something listens on 127.0.0.1:`port`. */
const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

describe('GET /healthz while Redis goes away and comes back', () => {
  let redis: ChildProcess | undefined;
  const startRedis = (port: number) => {
    redis = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      {
        stdio: 'ignore',
      },
    );
  };
  afterAll(() => {
    redis?.kill('SIGKILL');
  });

  it('answers 503 with the same shape while Redis is away, counts the store errors, and 200 once it is back', async () => {
    const free = createServer();
    await new Promise<void>((resolve) => free.listen(0, '127.0.0.1', resolve));
    const port = (free.address() as AddressInfo).port;
    await new Promise((resolve) => free.close(resolve));
    startRedis(port);
    await waitFor(() => accepts(port), 'the test Redis to listen');
    const config = testConfig({ store: 'redis', redisUrl: `redis://127.0.0.1:${port}`, rateLimit: 1000 });
    const backend = await openBackend(config, silentLogger);
    await waitFor(() => backend.health().up, 'the test Redis');
    const secret = randomSecret();
    const keys = createKeyring(secret).issue();
    const agent = request(composeRelay({ config, backend, secret, logger: silentLogger }).app);
    try {
      await agent.get('/healthz').expect(200);

      redis?.kill('SIGKILL');
      await waitFor(
        async () => (await agent.get('/healthz')).status === 503,
        'the health check to see Redis gone',
      );
      const down = await agent.get('/healthz').expect(503);
      expect(down.body).toEqual({ status: 'unavailable', store: { kind: 'redis', up: false } });
      expect(down.headers['cache-control']).toBe('no-store');
      await agent.post(`/public/${keys.public}`).send({ during: true }).expect(503);
      const metrics = (await agent.get('/metrics').expect(200)).text;
      expect(sampleValue(metrics, 'deadrop_store_up', { kind: 'redis' })).toBe(0);
      expect(
        sampleValue(metrics, 'deadrop_store_errors_total', { during: 'request' }),
      ).toBeGreaterThanOrEqual(1);
      // The rate-limit counters live in Redis too: the request passed them, counted as a store error.
      expect(
        sampleValue(metrics, 'deadrop_store_errors_total', { during: 'rate_limit' }),
      ).toBeGreaterThanOrEqual(1);

      startRedis(port);
      await waitFor(async () => (await agent.get('/healthz')).status === 200, 'Redis to be back', 10_000);
      expect((await agent.get('/healthz')).body).toEqual({
        status: 'ok',
        store: { kind: 'redis', up: true },
      });
      const after = (await agent.get('/metrics')).text;
      expect(sampleValue(after, 'deadrop_store_up', { kind: 'redis' })).toBe(1);
    } finally {
      await backend.close();
    }
  });
});

describe('GET /healthz when the SQLite store fails', () => {
  it('answers 503 once a call has failed, its own probe failing too', async () => {
    const dataDir = await tempDir();
    const config = testConfig({ store: 'sqlite', dataDir });
    const backend = await openBackend(config, silentLogger);
    const secret = randomSecret();
    const keys = createKeyring(secret).issue();
    const agent = request(composeRelay({ config, backend, secret, logger: silentLogger }).app);
    try {
      await agent.get('/healthz').expect(200);
      // The store closes under the relay, as a file that went away would fail it.
      await backend.close();
      await agent.post(`/public/${keys.public}`).send({ lost: false }).expect(503);
      const res = await agent.get('/healthz').expect(503);
      expect(res.body).toEqual({ status: 'unavailable', store: { kind: 'sqlite', up: false } });
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('the health check of a store believed away', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('probes at most once a second, however many ask at once, and answers from the probe', async () => {
    vi.useFakeTimers({ toFake: ['performance', 'setTimeout', 'clearTimeout'] });
    let up = false;
    let probes = 0;
    const check = createHealthCheck({
      health: () => ({ kind: 'sqlite', up }),
      probe: async () => {
        probes++;
      },
      stopping: new AbortController().signal,
    });

    const first = await Promise.all(Array.from({ length: 50 }, () => check.check()));
    expect(probes).toBe(1);
    expect(first.every((report) => report.status === 'unavailable')).toBe(true);
    await check.check();
    expect(probes).toBe(1);

    vi.advanceTimersByTime(1000);
    await Promise.all(Array.from({ length: 50 }, () => check.check()));
    expect(probes).toBe(2);

    // The store answers again (the probe succeeded): no probe while it is up.
    up = true;
    vi.advanceTimersByTime(1000);
    expect(await check.check()).toEqual({ status: 'ok', store: { kind: 'sqlite', up: true } });
    expect(probes).toBe(2);
  });

  it('gives up on a probe that hangs after a second, and answers 503', async () => {
    vi.useFakeTimers({ toFake: ['performance', 'setTimeout', 'clearTimeout'] });
    const check = createHealthCheck({
      health: () => ({ kind: 'redis', up: false }),
      probe: () => new Promise(() => {}),
      stopping: new AbortController().signal,
    });
    const report = check.check();
    await vi.advanceTimersByTimeAsync(1000);
    expect(await report).toEqual({ status: 'unavailable', store: { kind: 'redis', up: false } });
  });
});
