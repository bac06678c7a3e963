// Abuse limits as a client meets them through the whole app: rate limits, bans, slow clients.
import { once } from 'node:events';
import { connect } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { startRelay } from '../src/server.js';
import { forgedKey, openTestRelay, randomSecret, silentLogger, type TestRelay } from './helpers.js';

const limited = { rateLimit: 3, rateWindowSeconds: 60, banAfter: 2, banTimeSeconds: 1 };

describe('rate limits through the app', () => {
  const relays: TestRelay[] = [];
  afterAll(() => Promise.all(relays.map((relay) => relay.dispose())));

  it('answers 429 with Retry-After past the limit, counting 404s, then bans with 403', async () => {
    const relay = await openTestRelay('memory', { config: limited });
    relays.push(relay);
    const { public: pub } = relay.keys();
    for (let n = 0; n < 3; n++) await relay.agent.get(`/public/${pub}`).expect(404);
    const limitedRes = await relay.agent.get(`/public/${pub}`).expect(429);
    expect(Number(limitedRes.headers['retry-after'])).toBeGreaterThan(0);
    expect(limitedRes.body).toEqual({
      statusCode: 429,
      error: 'Too Many Requests',
      message: expect.any(String),
      code: 'rate_limited',
    });
    expect(limitedRes.headers['access-control-allow-origin']).toBe('*');
    // Another route class has its own count.
    await relay.agent.get('/keys').expect(200);
    await relay.agent.get(`/public/${pub}`).expect(429);
    const banned = await relay.agent.get('/keys').expect(403);
    expect(banned.body).toEqual({
      statusCode: 403,
      error: 'Forbidden',
      message: expect.any(String),
      code: 'banned',
    });
    await relay.agent.post(`/public/${forgedKey()}`).send({}).expect(403);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await relay.agent.get('/keys').expect(200);
  });

  it('shares its counters between two instances on one Redis', async () => {
    const secret = randomSecret();
    const a = await openTestRelay('redis', { secret, config: { ...limited, banAfter: 0 } });
    const b = await openTestRelay('redis', { secret, config: { ...limited, banAfter: 0 } });
    relays.push(a, b);
    // A fresh client address per run, so counters left in Redis by earlier runs do not count.
    const ip = `203.0.113.${Math.floor(Math.random() * 250) + 1}`;
    const from = (relay: TestRelay) => relay.agent.get('/keys').set('X-Forwarded-For', ip);
    a.app.set('trust proxy', 1);
    b.app.set('trust proxy', 1);
    await from(a).expect(200);
    await from(b).expect(200);
    await from(a).expect(200);
    await from(b).expect(429);
    await from(a).expect(429);
  });
});

describe('slow clients', () => {
  it('closes a connection whose headers do not arrive within DEADROP_HEADERS_TIMEOUT', async () => {
    const config = loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      DEADROP_STORE: 'memory',
      DEADROP_HEADERS_TIMEOUT: '300',
      DEADROP_SECRET: randomSecret(),
    });
    const relay = await startRelay(config, silentLogger);
    try {
      const port = Number(new URL(relay.url).port);
      const socket = connect(port, '127.0.0.1');
      await once(socket, 'connect');
      socket.write('GET /id HTTP/1.1\r\nHost: x\r\n');
      let answer = '';
      socket.on('data', (chunk) => {
        answer += chunk;
      });
      const started = Date.now();
      await once(socket, 'close');
      expect(Date.now() - started).toBeLessThan(2500);
      expect(answer).toMatch(/^HTTP\/1\.1 408/);
    } finally {
      await relay.close();
    }
  });
});
