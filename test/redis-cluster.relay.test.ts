// Two relay instances on one real local Redis Cluster (REDIS_CLUSTER): live delivery, pipes, rate limits,
// bans and the blob quota hold across instances, as they do on one Redis.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { type AddressInfo, connect, createServer as createTcpServer, type Server } from 'node:net';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openBackend } from '../src/backend/open-backend.js';
import { composeRelay } from '../src/compose.js';
import type { Config } from '../src/config.js';
import { continueUnlessPipe } from '../src/http/pipe-routes.js';
import { createKeyring } from '../src/keys.js';
import { openTestRelay, randomSecret, silentLogger, type TestRelay, testConfig, waitFor } from './helpers.js';
import { type LocalRedisCluster, startRedisCluster } from './support/redis-cluster.js';

const MIB = 1_048_576;

let cluster: LocalRedisCluster;
beforeAll(async () => {
  cluster = await startRedisCluster();
});
afterAll(async () => {
  await cluster?.stop();
});

interface Instance extends TestRelay {
  url: string;
  close: () => Promise<void>;
}

const opened: Instance[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((instance) => instance.close()));
});

/** One relay instance on the cluster, on a real port, with DEADROP_PUBLIC_URL set to its own URL. */
async function openInstance(secret: string, config: Partial<Config> = {}): Promise<Instance> {
  const server = createServer();
  server.keepAliveTimeout = 1;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const relay = await openTestRelay('redis', {
    secret,
    config: { redisCluster: cluster.seedUrls, publicUrl: url, ...config },
  });
  server.on('request', relay.app);
  server.on('checkContinue', continueUnlessPipe(relay.app));
  const instance: Instance = {
    ...relay,
    url,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await relay.dispose();
    },
  };
  opened.push(instance);
  return instance;
}

/** Two instances of one relay (one secret) on the cluster. */
const openPair = (config: Partial<Config> = {}) => {
  const secret = randomSecret();
  return Promise.all([openInstance(secret, config), openInstance(secret, config)]);
};

const postJson = (url: string, body: unknown) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('live delivery across two instances on a cluster', () => {
  it('answers a long-poll on A with a post on B, and a one-to-one wait on B with a write on A', async () => {
    const [a, b] = await openPair();
    const keys = a.keys();
    const started = Date.now();
    const waiting = fetch(`${a.url}/private/${keys.private}?wait=10`);
    await waitFor(() => a.notifier.listenerCount() > 0, 'the waiter on A');
    expect((await postJson(`${b.url}/public/${keys.public}`, { via: 'b' })).status).toBe(200);
    const answer = await waiting;
    expect(await answer.json()).toEqual([{ via: 'b' }]);
    expect(Date.now() - started).toBeLessThan(3000);

    const field = fetch(`${b.url}/public/${keys.public}/x?wait=10`);
    await waitFor(() => b.notifier.listenerCount() > 0, 'the waiter on B');
    expect((await postJson(`${a.url}/private/${keys.private}/x`, { via: 'a' })).status).toBe(200);
    expect(await (await field).json()).toEqual({ via: 'a' });
  });

  it('streams every item posted on B to an event stream on A, once each', async () => {
    const [a, b] = await openPair();
    const keys = a.keys();
    const stream = await fetch(`${a.url}/private/${keys.private}`, {
      headers: { accept: 'text/event-stream' },
    });
    expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
    await waitFor(() => a.notifier.listenerCount() > 0, 'the event stream to listen on A');
    const count = 100;
    const posting = (async () => {
      for (let n = 0; n < count; n += 10) {
        const answers = await Promise.all(
          Array.from({ length: 10 }, (_, i) => postJson(`${b.url}/public/${keys.public}`, { n: n + i })),
        );
        expect(answers.map((answer) => answer.status)).toEqual(Array(10).fill(200));
      }
    })();
    const seen: number[] = [];
    const reader = (stream.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    while (seen.length < count) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const data = /^data: (.*)$/m.exec(buffer.slice(0, end))?.[1];
        buffer = buffer.slice(end + 2);
        if (data !== undefined) seen.push((JSON.parse(data) as { n: number }).n);
      }
    }
    await reader.cancel();
    await posting;
    expect(seen.sort((x, y) => x - y)).toEqual(Array.from({ length: count }, (_, n) => n));
  });
});

describe('pipes across two instances on a cluster', () => {
  it('sends the second arrival on B to A, where the first one waits, and the stream goes through', async () => {
    const [a, b] = await openPair();
    const keys = a.keys();
    const redirect = async (url: string, method: string) => {
      const answer = await fetch(url, {
        method,
        redirect: 'manual',
        ...(method === 'POST' && { body: 'ignored' }),
      });
      await answer.arrayBuffer();
      expect(answer.status).toBe(307);
      return new URL(answer.headers.get('location') as string, url).href;
    };
    const receiverAt = await redirect(`${a.url}/pipe/${keys.private}`, 'GET');
    expect(receiverAt.startsWith(`${a.url}/stream/`)).toBe(true);
    expect(await redirect(`${b.url}/pipe/${keys.public}`, 'POST')).toBe(receiverAt);

    const data = randomBytes(256 * 1024);
    const receiving = fetch(receiverAt).then(async (answer) => Buffer.from(await answer.arrayBuffer()));
    const sent = await fetch(receiverAt, { method: 'POST', body: data });
    expect(sent.status).toBe(200);
    expect((await receiving).equals(data)).toBe(true);
  });
});

describe('rate limits and bans across two instances on a cluster', () => {
  it('counts one client’s requests on both instances together, then bans it on both', async () => {
    const [a, b] = await openPair({ rateLimit: 3, banAfter: 2, banTimeSeconds: 60 });
    const statuses: number[] = [];
    for (let n = 0; n < 6; n++) {
      const answer = await fetch(`${n % 2 === 0 ? a.url : b.url}/keys`);
      await answer.arrayBuffer();
      statuses.push(answer.status);
    }
    // 3 allowed in all, then two 429s (strikes), then the ban on either instance.
    expect(statuses).toEqual([200, 200, 200, 429, 429, 403]);
    const other = await fetch(`${a.url}/keys`);
    expect(other.status).toBe(403);
  });
});

describe('the blob quota across two instances on a cluster', () => {
  it('holds exactly under concurrent writes to both', async () => {
    const quota = 5 * MIB + 1000;
    const [a, b] = await openPair({ blobLimit: MIB, keyQuota: quota });
    const pair = a.keys();
    const post = (url: string, uid: string) =>
      fetch(`${url}/private/${pair.private}/${uid}`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: randomBytes(MIB),
      }).then(async (answer) => {
        await answer.arrayBuffer();
        return answer.status;
      });
    const statuses = await Promise.all(
      Array.from({ length: 12 }, (_, n) => post(n % 2 === 0 ? a.url : b.url, `u${n}`)),
    );
    expect(statuses.filter((status) => status === 200)).toHaveLength(5);
    expect(statuses.filter((status) => status === 507)).toHaveLength(7);
    expect(await a.store.blobBytes(pair.public)).toBe(5 * MIB);
    expect(await b.store.blobBytes(pair.public)).toBe(5 * MIB);
  });
});

describe('a relay whose cluster does not answer at start', () => {
  it('answers 503, keeps trying its seed, and serves once the seed answers', async () => {
    // The only seed is a port where nothing listens yet; later a forwarder there leads to a real node.
    const placeholder = createTcpServer();
    await new Promise<void>((resolve) => placeholder.listen(0, '127.0.0.1', resolve));
    const seedPort = (placeholder.address() as AddressInfo).port;
    await new Promise((resolve) => placeholder.close(resolve));
    const relay = await openRelayOnSeeds([`redis://127.0.0.1:${seedPort}`], randomSecret());
    let forwarder: Server | undefined;
    try {
      const keys = relay.keys();
      const before = await postJson(`${relay.url}/public/${keys.public}`, { n: 1 });
      expect(before.status).toBe(503);
      expect(await before.json()).toMatchObject({ statusCode: 503, error: 'Service Unavailable' });

      const target = Number(new URL(cluster.seedUrls[0] as string).port);
      forwarder = createTcpServer((socket) => {
        const upstream = connect(target, '127.0.0.1');
        socket.pipe(upstream).pipe(socket);
        socket.on('error', () => upstream.destroy());
        upstream.on('error', () => socket.destroy());
      });
      await new Promise<void>((resolve) => forwarder?.listen(seedPort, '127.0.0.1', resolve));
      await waitFor(
        async () => (await postJson(`${relay.url}/public/${keys.public}`, { n: 2 })).status === 200,
        'the relay to reach the cluster through its seed',
        10_000,
      );
      const drained = await fetch(`${relay.url}/private/${keys.private}`);
      expect(await drained.json()).toEqual([{ n: 2 }]);
    } finally {
      forwarder?.close();
    }
  });
});

/** An instance on the given seeds rather than the test cluster's, not waiting for Redis to answer. */
async function openRelayOnSeeds(seeds: string[], secret: string): Promise<Instance> {
  const config = testConfig({ store: 'redis', redisCluster: seeds });
  const backend = await openBackend(config, silentLogger);
  const { app, relay } = composeRelay({ config, backend, secret, logger: silentLogger });
  const server = createServer(app);
  server.keepAliveTimeout = 1;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const keyring = createKeyring(secret);
  const instance: Instance = {
    app,
    agent: request(app),
    relay,
    backend,
    store: backend.store,
    notifier: backend.notifier,
    keyring,
    keys: () => keyring.issue(),
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    dispose: () => backend.close(),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await backend.close();
    },
  };
  opened.push(instance);
  return instance;
}
