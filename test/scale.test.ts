// What keeps data safe as the relay scales: concurrent writers, shared Redis, restarts, and Redis outages.
import { type ChildProcess, spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type express from 'express';
import { pino } from 'pino';
import request from 'supertest';
import { afterAll, describe, expect, it } from 'vitest';
import { openBackend } from '../src/backend/open-backend.js';
import { createOutageWatch } from '../src/backend/outage.js';
import { composeRelay } from '../src/compose.js';
import { createKeyring } from '../src/keys.js';
import { openTestRelay, openTestStore, randomSecret, tempDir, testConfig, waitFor } from './helpers.js';

async function listen(app: express.Express): Promise<{ url: string; server: Server }> {
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe.each(['sqlite', 'redis'] as const)('concurrency on %s', (kind) => {
  it('gives back every one of 200 concurrent posts exactly once, with drains interleaved', async () => {
    const relay = await openTestRelay(kind);
    const { url, server } = await listen(relay.app);
    try {
      const keys = relay.keys();
      const received: number[] = [];
      const drain = async () => {
        const res = await fetch(`${url}/private/${keys.private}`);
        if (res.status === 200)
          received.push(...((await res.json()) as { n: number }[]).map((item) => item.n));
        else expect(res.status).toBe(404);
      };
      const posts = Array.from({ length: 200 }, async (_, n) => {
        const res = await fetch(`${url}/public/${keys.public}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ n }),
        });
        expect(res.status).toBe(200);
        if (n % 10 === 0) await drain();
      });
      await Promise.all(posts);
      await drain();
      expect(received.sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, n) => n));
    } finally {
      server.close();
      await relay.dispose();
    }
  });
});

describe('two instances on one Redis', () => {
  it('serve what the other accepted, with the same keys and id', async () => {
    const secret = randomSecret();
    const [a, b] = await Promise.all([
      openTestRelay('redis', { secret }),
      openTestRelay('redis', { secret }),
    ]);
    try {
      const keys = (await a.agent.get('/keys').expect(200)).body;
      expect((await b.agent.get(`/keys/${keys.private}`).expect(200)).body).toEqual({
        type: 'private',
        public: keys.public,
      });
      expect((await a.agent.get('/id')).text).toBe((await b.agent.get('/id')).text);
      await a.agent.post(`/public/${keys.public}`).send({ from: 'a' }).expect(200);
      await b.agent.post(`/public/${keys.public}`).send({ from: 'b' }).expect(200);
      expect((await b.agent.get(`/private/${keys.private}`).expect(200)).body).toEqual([
        { from: 'a' },
        { from: 'b' },
      ]);
      await a.agent.get(`/private/${keys.private}`).expect(404);
      await b.agent.post(`/private/${keys.private}`).send({ v: 1 }).expect(200);
      expect((await a.agent.get(`/public/${keys.public}`).expect(200)).body).toEqual({ v: 1 });
      await a.agent.post(`/private/${keys.private}/u`).send({ once: true }).expect(200);
      await b.agent.get(`/public/${keys.public}/u`).expect(200);
      await a.agent.get(`/public/${keys.public}/u`).expect(404);
    } finally {
      await Promise.all([a.dispose(), b.dispose()]);
    }
  });

  it('do not accept keys of an instance with another secret', async () => {
    const [a, b] = await Promise.all([openTestRelay('redis'), openTestRelay('redis')]);
    try {
      const keys = a.keys();
      await b.agent.post(`/public/${keys.public}`).send({}).expect(401);
    } finally {
      await Promise.all([a.dispose(), b.dispose()]);
    }
  });
});

describe('SQLite across a restart', () => {
  it('still has what was posted after the app is closed and reopened on the same data dir', async () => {
    const dataDir = await tempDir();
    const secret = randomSecret();
    try {
      const first = await openTestRelay('sqlite', { dataDir, secret });
      const keys = first.keys();
      await first.agent.post(`/public/${keys.public}`).send({ kept: 1 }).expect(200);
      await first.agent.post(`/private/${keys.private}`).send({ value: 2 }).expect(200);
      await first.agent.post(`/private/${keys.private}/u`).send({ field: 3 }).expect(200);
      await first.dispose();

      const second = await openTestRelay('sqlite', { dataDir, secret });
      expect((await second.agent.get(`/private/${keys.private}`).expect(200)).body).toEqual([{ kept: 1 }]);
      expect((await second.agent.get(`/public/${keys.public}`).expect(200)).body).toEqual({ value: 2 });
      expect((await second.agent.get(`/public/${keys.public}/u`).expect(200)).body).toEqual({ field: 3 });
      await second.dispose();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('one relay per SQLite data dir', () => {
  it('refuses a second store on a data dir that another one holds, keeping the first intact', async () => {
    const dataDir = await tempDir();
    const first = await openTestStore('sqlite', dataDir);
    try {
      await first.store.appendToQueue('k'.repeat(32), '1', 60_000, 10);
      await expect(openTestStore('sqlite', dataDir)).rejects.toThrow(
        /Only one relay process may use a data dir/,
      );
      expect(await first.store.drainQueue('k'.repeat(32))).toEqual(['1']);
    } finally {
      await first.dispose();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('the outage watch', () => {
  const watch = () => {
    const lines: { msg: string; refused?: number }[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(JSON.parse(String(chunk)));
        done();
      },
    });
    return { lines, outage: createOutageWatch('Redis', pino({ level: 'warn' }, sink)) };
  };

  it('logs one line when the backend goes and one when it is back, with the calls refused meanwhile', () => {
    const { lines, outage } = watch();
    for (let call = 0; call < 5; call++) outage.failed(new Error('ECONNREFUSED'));
    outage.failed(new Error('socket closed'), false);
    expect(outage.down).toBe(true);
    outage.recovered();
    expect(outage.down).toBe(false);
    expect(lines.map((line) => line.msg)).toEqual([
      'Redis is unreachable; answering 503 until it is back',
      expect.stringMatching(/^Redis is back after [\d.]+ s; 5 calls were refused meanwhile$/),
    ]);
  });

  it('a call begun before the recovery that fails after it opens no new outage; one begun after does', () => {
    const { lines, outage } = watch();
    const queued = outage.epoch;
    outage.failed(new Error('ECONNREFUSED'), true, queued);
    outage.recovered();
    outage.failed(new Error('reply deadline'), true, queued);
    expect(outage.down).toBe(false);
    expect(lines).toHaveLength(2);
    outage.failed(new Error('ECONNREFUSED'), true, outage.epoch);
    expect(outage.down).toBe(true);
    expect(lines).toHaveLength(3);
  });
});

describe('when Redis goes away', () => {
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

  it('answers 503 at once, logs the outage once and not per request, and serves again once Redis is back', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    startRedis(port);

    const lines: { level: number; msg: string; refused?: number }[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).trim().split('\n')) lines.push(JSON.parse(line));
        done();
      },
    });
    // Access lines off (warn): what is counted is what an outage adds to a production log.
    const logger = pino({ level: 'warn' }, sink);
    const config = testConfig({ store: 'redis', redisUrl: `redis://127.0.0.1:${port}`, rateLimit: 1000 });
    const backend = await openBackend(config, logger);
    await waitFor(() => backend.health().up, 'the test Redis');
    // A Redis still starting can look like an outage of a moment (connection refused, then back): only the
    // outage this test causes is counted.
    lines.length = 0;
    const secret = randomSecret();
    const keyring = createKeyring(secret);
    const agent = request(composeRelay({ config, backend, secret, logger }).app);
    const keys = keyring.issue();
    try {
      await agent.post(`/public/${keys.public}`).send({ before: true }).expect(200);

      redis?.kill('SIGKILL');
      await waitFor(() => !backend.health().up, 'the client to see Redis gone');
      const started = Date.now();
      const down = await agent.post(`/public/${keys.public}`).send({ during: true }).expect(503);
      expect(down.body).toEqual({
        statusCode: 503,
        error: 'Service Unavailable',
        message: expect.any(String),
        code: 'store_unavailable',
      });
      await agent.get(`/private/${keys.private}`).expect(503);
      expect(Date.now() - started).toBeLessThan(1000);
      // Load during the outage: 300 refused requests.
      for (let round = 0; round < 30; round++) {
        const answers = await Promise.all(
          Array.from({ length: 10 }, () => agent.post(`/public/${keys.public}`).send({ during: round })),
        );
        expect(answers.map((answer) => answer.status)).toEqual(Array(10).fill(503));
      }

      startRedis(port);
      await waitFor(
        async () => (await agent.post(`/public/${keys.public}`).send({ after: true })).status === 200,
        'recovery',
        10_000,
      );
      // This Redis keeps nothing on disk, so only what came after the restart is there.
      expect((await agent.get(`/private/${keys.private}`).expect(200)).body).toEqual([{ after: true }]);
      // One line when it went, one when it came back (with the count), however many were refused.
      expect(lines.length, lines.map((line) => line.msg).join(' | ')).toBeLessThanOrEqual(4);
      expect(lines.filter((line) => line.msg.includes('unreachable'))).toHaveLength(1);
      const back = lines.find((line) => line.msg.includes('is back after'));
      expect(back?.refused).toBeGreaterThanOrEqual(302);
    } finally {
      await backend.close();
    }
  });
});
