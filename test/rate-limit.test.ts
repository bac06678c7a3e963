// Rate limits and bans on a tiny app, in memory and on a real Redis shared by two instances.
import { randomBytes } from 'node:crypto';
import express, { type ErrorRequestHandler } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryLimiters, redisLimiters } from '../src/backend/limiters.js';
import { RelayError } from '../src/errors.js';
import { clientHasher } from '../src/http/client-address.js';
import { createRateLimits, type RateLimits, type RouteClass } from '../src/http/rate-limit.js';
import {
  createRedisConnection,
  type SingleRedisConnection as RedisConnection,
} from '../src/store/redis-connection.js';
import { REDIS_URL, randomSecret, waitFor } from './helpers.js';

const clients: RedisConnection[] = [];
let redis: RedisConnection;

async function readyRedisClient(): Promise<RedisConnection> {
  const client = createRedisConnection(REDIS_URL, () => {});
  clients.push(client);
  await waitFor(() => client.isReady, `Redis to be ready at ${REDIS_URL}`);
  return client;
}

beforeAll(async () => {
  redis = await readyRedisClient();
});

afterAll(async () => {
  for (const client of clients) {
    if (client.isReady) await client.close();
    else client.destroy();
  }
});

const randomPrefix = () => `test:rl:${randomBytes(6).toString('hex')}:`;

interface LimitsOptions {
  rateLimit?: number;
  banAfter?: number;
  banTimeSeconds?: number;
  redis?: RedisConnection | undefined;
  prefix?: string;
  secret?: string;
}

const limitsWith = (options: LimitsOptions = {}) =>
  createRateLimits({
    config: {
      rateLimit: options.rateLimit ?? 3,
      rateWindowSeconds: 60,
      banAfter: options.banAfter ?? 0,
      banTimeSeconds: options.banTimeSeconds ?? 1,
      writeBudget: 0,
    },
    limiters: options.redis ? redisLimiters(options.redis, options.prefix ?? randomPrefix()) : memoryLimiters,
    clientOf: clientHasher(options.secret ?? randomSecret()),
  });

const renderErrors: ErrorRequestHandler = (error, _req, res, _next) => {
  if (error instanceof RelayError && error.retryAfterSeconds !== undefined) {
    res.set('Retry-After', String(error.retryAfterSeconds));
  }
  if (error instanceof RelayError) res.status(error.statusCode).json(error.toJSON());
  else res.status(500).json({ statusCode: 500 });
};

/** GET /<class>/<status> answers that status behind the limiter of that class. */
function tinyApp(limits: RateLimits, trustProxy = 0) {
  const app = express();
  app.set('trust proxy', trustProxy);
  app.use(limits.banGuard);
  for (const routeClass of Object.keys(limits.limit) as RouteClass[]) {
    app.get(`/${routeClass}/:status`, limits.limit[routeClass], (req, res) => {
      res.status(Number(req.params.status)).json({});
    });
  }
  app.use(renderErrors);
  return app;
}

const statuses = async (app: express.Express, path: string, count: number, forwardedFor?: string) => {
  const answers: number[] = [];
  for (let i = 0; i < count; i++) {
    const call = request(app).get(path);
    if (forwardedFor) call.set('X-Forwarded-For', forwardedFor);
    answers.push((await call).status);
  }
  return answers;
};

const retryAfterOf = (response: request.Response) => {
  const header = String(response.headers['retry-after']);
  expect(header).toMatch(/^\d+$/);
  return Number(header);
};

describe.each(['memory', 'redis'] as const)('rate limits with the %s store', (kind) => {
  const limits = (options: LimitsOptions = {}) =>
    limitsWith({ ...options, redis: kind === 'redis' ? redis : undefined });

  it('answers the 4th request of a window with 429, Retry-After and the JSON error', async () => {
    const app = tinyApp(limits());
    expect(await statuses(app, '/keys/200', 3)).toEqual([200, 200, 200]);
    const limited = await request(app).get('/keys/200');
    expect(limited.status).toBe(429);
    const seconds = retryAfterOf(limited);
    expect(seconds).toBeGreaterThan(0);
    expect(seconds).toBeLessThanOrEqual(60);
    expect(limited.body).toEqual({
      statusCode: 429,
      error: 'Too Many Requests',
      message: expect.stringContaining(`retry in ${seconds} s`),
      code: 'rate_limited',
    });
  });

  it('counts 404 answers toward the limit', async () => {
    const app = tinyApp(limits());
    expect(await statuses(app, '/publicRead/404', 3)).toEqual([404, 404, 404]);
    expect((await request(app).get('/publicRead/200')).status).toBe(429);
  });

  it('keeps a separate counter per route class', async () => {
    const app = tinyApp(limits());
    expect(await statuses(app, '/keys/200', 4)).toEqual([200, 200, 200, 429]);
    expect(await statuses(app, '/write/200', 3)).toEqual([200, 200, 200]);
    expect(await statuses(app, '/privateRead/200', 1)).toEqual([200]);
  });

  it('bans a client after banAfter 429s on every class until the ban time has passed', async () => {
    const app = tinyApp(limits({ banAfter: 2, banTimeSeconds: 1 }));
    expect(await statuses(app, '/keys/200', 5)).toEqual([200, 200, 200, 429, 429]);

    for (const path of ['/keys/200', '/publicRead/200', '/privateRead/404']) {
      const banned = await request(app).get(path);
      expect(banned.status).toBe(403);
      expect(retryAfterOf(banned)).toBe(1);
      expect(banned.body).toEqual({
        statusCode: 403,
        error: 'Forbidden',
        message: expect.stringContaining('banned for 1 s'),
        code: 'banned',
      });
    }

    // Blocked at the guard, the other classes never counted; the limited one is still over its window.
    await waitFor(async () => (await request(app).get('/publicRead/200')).status === 200, 'the ban to end');
    expect(await statuses(app, '/keys/200', 1)).toEqual([429]);
  });

  it('tells clients apart by X-Forwarded-For behind one trusted proxy', async () => {
    const app = tinyApp(limits(), 1);
    expect(await statuses(app, '/keys/200', 4, '203.0.113.1')).toEqual([200, 200, 200, 429]);
    expect(await statuses(app, '/keys/200', 1, '203.0.113.2')).toEqual([200]);
  });

  it('ignores X-Forwarded-For when no proxy is trusted', async () => {
    const app = tinyApp(limits(), 0);
    expect(await statuses(app, '/keys/200', 3, '203.0.113.1')).toEqual([200, 200, 200]);
    expect(await statuses(app, '/keys/200', 1, '203.0.113.2')).toEqual([429]);
  });

  it('never limits when rateLimit is 0', async () => {
    const app = tinyApp(limits({ rateLimit: 0, banAfter: 1 }));
    const answers = await statuses(app, '/write/200', 50);
    expect(answers.every((status) => status === 200)).toBe(true);
  });
});

describe('rate limits shared on Redis', () => {
  it('counts requests to two instances together and holds a ban on both', async () => {
    const [secret, prefix] = [randomSecret(), randomPrefix()];
    const shared = { secret, prefix, banAfter: 1, banTimeSeconds: 5 };
    const appA = tinyApp(limitsWith({ ...shared, redis }));
    const appB = tinyApp(limitsWith({ ...shared, redis: await readyRedisClient() }));

    expect(await statuses(appA, '/write/200', 2)).toEqual([200, 200]);
    expect(await statuses(appB, '/write/200', 2)).toEqual([200, 429]);
    expect(await statuses(appA, '/keys/200', 1)).toEqual([403]);
  });

  it('stores only keyed hashes of client IPs', async () => {
    const prefix = randomPrefix();
    const app = tinyApp(limitsWith({ redis, prefix, banAfter: 1, banTimeSeconds: 5 }));
    const proxied = tinyApp(limitsWith({ redis, prefix, banAfter: 1, banTimeSeconds: 5 }), 1);
    await statuses(app, '/publicRead/404', 1);
    await statuses(app, '/keys/200', 4);
    await statuses(proxied, '/privateRead/200', 4, '203.0.113.7');

    const stored: string[] = [];
    for await (const keys of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 100 })) {
      for (const key of keys) stored.push(key, String(await redis.get(key)));
    }
    expect(stored.length).toBeGreaterThanOrEqual(10);
    for (const text of stored) {
      for (const ip of ['127.0.0.1', '::ffff:127.0.0.1', '::1', '203.0.113.7']) {
        expect(text).not.toContain(ip);
      }
    }
  });

  it('starts counting once Redis is ready when the limiters were built before', async () => {
    const late = createRedisConnection(REDIS_URL, () => {});
    clients.push(late);
    expect(late.isReady).toBe(false);
    const app = tinyApp(limitsWith({ redis: late }));
    await waitFor(() => late.isReady, `Redis to be ready at ${REDIS_URL}`);
    expect(await statuses(app, '/keys/200', 4)).toEqual([200, 200, 200, 429]);
  });

  it('lets requests through when Redis is down', async () => {
    const down = createRedisConnection('redis://127.0.0.1:1', () => {});
    clients.push(down);
    const app = tinyApp(limitsWith({ redis: down, rateLimit: 1, banAfter: 1 }));
    expect(down.isReady).toBe(false);
    const started = Date.now();
    expect(await statuses(app, '/write/200', 5)).toEqual([200, 200, 200, 200, 200]);
    expect(await statuses(app, '/keys/404', 2)).toEqual([404, 404]);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
