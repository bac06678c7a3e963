// The fast lane answers exactly as Express would: the same requests, sent to two relays on one secret,
// one served by the relay's listener and one by its Express app alone, get the same status, headers and
// body; and the lane's relay never reaches Express for them.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RequestHandler } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listenerOf } from '../src/http/app.js';
import { fastLane } from '../src/http/fast-lane.js';
import { openTestRelay, randomSecret, type TestRelay } from './helpers.js';

interface Sent {
  method: 'get' | 'post';
  path: string;
  type?: string;
  body?: string;
}

/** What a client sees of an answer, but for the date. */
async function answerTo(agent: ReturnType<typeof request>, { method, path, type, body }: Sent) {
  let call = agent[method](path);
  if (type) call = call.set('Content-Type', type);
  const res = await (body === undefined ? call : call.send(body));
  const { date: _date, ...headers } = res.headers;
  return { status: res.status, headers, body: res.text };
}

/** Counts the requests that reach the relay's Express app (an Express app hands each to `app.handle`). */
function countExpressCalls(relay: TestRelay): () => number {
  const app = relay.app as unknown as { handle: (...args: unknown[]) => unknown };
  const handle = app.handle.bind(app);
  let calls = 0;
  app.handle = (...args) => {
    calls++;
    return handle(...args);
  };
  return () => calls;
}

describe('the fast lane', () => {
  const secret = randomSecret();
  const config = { bodyLimit: 200, rateLimit: 40, rateWindowSeconds: 60, banAfter: 0 };
  let lane: TestRelay;
  let express: TestRelay;
  let expressCalls: () => number;

  beforeAll(async () => {
    [lane, express] = await Promise.all([
      openTestRelay('memory', { secret, config }),
      openTestRelay('memory', { secret, config }),
    ]);
    expressCalls = countExpressCalls(lane);
  });
  afterAll(async () => {
    await lane?.dispose();
    await express?.dispose();
  });

  it('answers the hot routes, errors included, as the Express app does, without it', async () => {
    const pair = lane.keys();
    const other = lane.keys();
    const forged = `${'A'.repeat(10)}${pair.private.slice(10)}`;
    const json = 'application/json';
    const sequence: Sent[] = [
      { method: 'post', path: `/public/${pair.public}`, type: json, body: '{"n":1}' },
      {
        method: 'post',
        path: `/public/${pair.public}`,
        type: 'application/x-www-form-urlencoded',
        body: 'a=1&b=2',
      },
      { method: 'post', path: `/public/${pair.public}`, type: 'text/plain; charset=utf-8', body: 'hello' },
      { method: 'post', path: `/public/${pair.public}`, body: '{"n":2}' },
      { method: 'post', path: `/public/${pair.public}`, type: 'application/xml', body: '<n/>' },
      { method: 'post', path: `/public/${pair.public}`, type: 'text/plain; charset=latin1', body: 'x' },
      { method: 'post', path: `/public/${pair.public}`, type: json, body: '{"n":' },
      { method: 'post', path: `/public/${pair.public}`, type: json, body: ' ' },
      {
        method: 'post',
        path: `/public/${pair.public}`,
        type: json,
        body: JSON.stringify({ x: 'x'.repeat(300) }),
      },
      { method: 'post', path: `/public/${forged}`, type: json, body: '{}' },
      { method: 'post', path: `/public/${pair.private}`, type: json, body: '{}' },
      { method: 'get', path: `/private/${pair.private}` },
      { method: 'get', path: `/private/${pair.private}` },
      { method: 'get', path: `/private/${pair.public}` },
      { method: 'post', path: `/private/${pair.private}`, type: json, body: '{"published":true}' },
      { method: 'post', path: `/private/${pair.public}`, type: json, body: '{}' },
      { method: 'get', path: `/public/${pair.public}` },
      { method: 'get', path: `/public/${other.public}` },
      { method: 'get', path: `/public/${forged}` },
      // Past the rate limit of reads: 429 with Retry-After.
      ...Array.from({ length: 45 }, (): Sent => ({ method: 'get', path: `/public/${pair.public}` })),
    ];
    const laneAgent = request(listenerOf(lane.app));
    const expressAgent = request(express.app);
    const statuses = new Set<number>();
    for (const sent of sequence) {
      const [fromLane, fromExpress] = [await answerTo(laneAgent, sent), await answerTo(expressAgent, sent)];
      expect(fromLane, `${sent.method.toUpperCase()} ${sent.path.slice(0, 12)} ${sent.type}`).toEqual(
        fromExpress,
      );
      statuses.add(fromLane.status);
    }
    // The sequence met every kind of answer the lane gives.
    expect([...statuses].sort()).toEqual([200, 400, 401, 404, 413, 415, 429]);
    expect(expressCalls()).toBe(0);
  });

  it('leaves to Express what it does not take exactly', async () => {
    const relay = await openTestRelay('memory');
    const calls = countExpressCalls(relay);
    const pair = relay.keys();
    const agent = request(listenerOf(relay.app));
    await agent.post(`/public/${pair.public}?ok=https://example.org/`).type('json').send('{}').expect(303);
    await agent.get(`/public/${pair.public}/`).expect(404);
    await agent.get(`/PUBLIC/${pair.public}`).expect(404);
    await agent.get(`/private/${pair.private}?stats`).expect(200);
    await agent.head(`/public/${pair.public}`).expect(404);
    await agent.options(`/public/${pair.public}`).expect(204);
    expect(calls()).toBe(6);
    await relay.dispose();
  });
});

describe('a fast lane whose error answer fails', () => {
  it('cuts that one connection and goes on serving', async () => {
    const failing: RequestHandler = () => {
      throw new Error('a handler fails');
    };
    const answering: RequestHandler = (_req, res) => {
      res.end('answered');
    };
    const server = createServer(
      fastLane({
        routes: {
          public: { path: '/public/:key', GET: [failing], POST: [failing] },
          private: { path: '/private/:key', GET: [answering], POST: [answering] },
        },
        answerError: () => {
          throw new Error('and so does the error answer');
        },
        trust: () => false,
        otherwise: (_req, res) => res.end('otherwise'),
      }),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      await expect(fetch(`${url}/public/key`)).rejects.toThrow();
      expect(await (await fetch(`${url}/private/key`)).text()).toBe('answered');
      expect(await (await fetch(`${url}/other`)).text()).toBe('otherwise');
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
