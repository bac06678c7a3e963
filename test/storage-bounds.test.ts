// What one address, and all of them together, can store (issue 11): the write budget per address and
// window, and the global bound (DEADROP_STORE_MAX, Redis's maxmemory), on real servers and a real Redis.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { createServer } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import type { Config } from '../src/config.js';
import { listen, openTestRelay, randomSecret, type StoreKind, type TestRelay } from './helpers.js';

const KIB = 1024;
const MIB = 1024 * KIB;

interface Answer {
  status: number;
  headers: { get(name: string): string | undefined };
  json(): Promise<unknown>;
  arrayBuffer(): Promise<Buffer>;
}

interface Init {
  method?: string;
  headers?: Record<string, string>;
  body?: Uint8Array | string;
}

/** A client whose connections come from `address` (any of 127.0.0.0/8 is this machine), with keep-alive. */
const from = (address: string) => {
  const agent = new Agent({ keepAlive: true });
  const fetch = (url: string, init: Init = {}) =>
    new Promise<Answer>((resolve, reject) => {
      const options = { method: init.method ?? 'GET', headers: init.headers, agent, localAddress: address };
      const req = request(url, options, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          resolve({
            status: res.statusCode ?? 0,
            headers: { get: (name) => res.headers[name.toLowerCase()] as string | undefined },
            json: async () => JSON.parse(body.toString('utf8')),
            arrayBuffer: async () => body,
          });
        });
      });
      req.on('error', reject);
      req.end(init.body);
    });
  return { fetch, close: async () => agent.destroy() };
};

type Client = ReturnType<typeof from>;

const postBlob = (client: Client, url: string, key: string, uid: string, bytes: Uint8Array) =>
  client.fetch(`${url}/private/${key}/${uid}`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: bytes,
  });

async function openServed(kind: StoreKind, config: Partial<Config>, secret = randomSecret()) {
  const relay = await openTestRelay(kind, { config, secret });
  const server = await listen(relay.app);
  return {
    relay,
    url: server.url,
    close: async () => {
      await server.close();
      await relay.dispose();
    },
  };
}

describe.each(['sqlite', 'redis'] as const)('the write budget of one address on %s', (kind) => {
  it('stores no more than the budget in a window of writes at full speed to fresh keys, then 429 with Retry-After', async () => {
    const budget = 512 * KIB;
    const secret = randomSecret();
    // Two instances on Redis share the budget, as they share everything else.
    const instances = await Promise.all(
      (kind === 'redis' ? [1, 2] : [1]).map(() =>
        openServed(kind, { writeBudget: budget, rateLimit: 100_000, rateWindowSeconds: 60 }, secret),
      ),
    );
    const attacker = from('127.0.0.2');
    try {
      let stored = 0;
      const statuses: number[] = [];
      const retryAfter = new Set<string>();
      await Promise.all(
        Array.from({ length: 8 }, async (_, lane) => {
          for (let n = 0; n < 20; n++) {
            const { url, relay } = instances[(lane + n) % instances.length] as (typeof instances)[number];
            const pair = relay.keys();
            // Blobs of 16 KiB and JSON posts of 8 KiB (the body limit is 10 KiB), to fresh key pairs.
            const size = n % 2 === 0 ? 16 * KIB : 8 * KIB;
            const answer =
              n % 2 === 0
                ? await postBlob(attacker, url, pair.private, `u${n}`, randomBytes(size))
                : await attacker.fetch(`${url}/public/${pair.public}`, {
                    method: 'POST',
                    headers: { 'content-type': 'application/json' },
                    body: JSON.stringify({ pad: 'x'.repeat(size - 10) }),
                  });
            statuses.push(answer.status);
            if (answer.status === 200) stored += size;
            if (answer.status === 429) {
              retryAfter.add(String(answer.headers.get('retry-after')));
              expect(((await answer.json()) as { message: string }).message).toContain(
                'DEADROP_WRITE_BUDGET',
              );
            } else await answer.arrayBuffer();
          }
        }),
      );
      expect(stored).toBeLessThanOrEqual(budget);
      expect(stored).toBeGreaterThan(budget - 16 * KIB);
      expect(statuses.filter((status) => status === 429).length).toBeGreaterThan(100);
      expect([...retryAfter].every((value) => /^\d+$/.test(value) && Number(value) > 0)).toBe(true);

      // Another address is untouched by this one's budget.
      const other = from('127.0.0.3');
      const { url, relay } = instances[0] as (typeof instances)[number];
      expect((await postBlob(other, url, relay.keys().private, 'x', randomBytes(16 * KIB))).status).toBe(200);
      await other.close();
    } finally {
      await attacker.close();
      await Promise.all(instances.map((instance) => instance.close()));
    }
  });
});

describe('the global bound on SQLite (DEADROP_STORE_MAX)', () => {
  let served: Awaited<ReturnType<typeof openServed>>;
  afterAll(() => served?.close());

  it('stops writes from many addresses at the bound with 507, and keeps everything acknowledged readable', async () => {
    served = await openServed('sqlite', { storeMax: 4 * MIB, writeBudget: 0, rateLimit: 0 });
    const { url, relay } = served;
    const accepted: { pub: string; uid: string; bytes: Buffer }[] = [];
    const refusals: string[] = [];
    await Promise.all(
      Array.from({ length: 10 }, async (_, lane) => {
        const client = from(`127.0.0.${10 + lane}`);
        for (let n = 0; n < 12; n++) {
          const pair = relay.keys();
          const bytes = randomBytes(64 * KIB);
          const answer = await postBlob(client, url, pair.private, `b${n}`, bytes);
          if (answer.status === 200) accepted.push({ pub: pair.public, uid: `b${n}`, bytes });
          else refusals.push(`${answer.status} ${((await answer.json()) as { message: string }).message}`);
          if (answer.status === 200) await answer.arrayBuffer();
        }
        await client.close();
      }),
    );
    expect(accepted.length).toBeGreaterThan(20);
    expect(accepted.length * 64 * KIB).toBeLessThan(5 * MIB);
    expect(refusals.length).toBeGreaterThan(0);
    expect(new Set(refusals.map((line) => line.slice(0, 3)))).toEqual(new Set(['507']));
    expect(refusals[0]).toContain('DEADROP_STORE_MAX');

    // Full: a JSON post is refused too, but reads and deletes go on and give back what was acknowledged.
    const pair = relay.keys();
    expect((await relay.agent.post(`/public/${pair.public}`).send({ late: true })).status).toBe(507);
    for (const { pub, uid, bytes } of accepted) {
      const answer = await fetch(`${url}/public/${pub}/${uid}`);
      expect(answer.status).toBe(200);
      expect(Buffer.from(await answer.arrayBuffer()).equals(bytes)).toBe(true);
    }
  });
});

describe('the global bound on Redis (its maxmemory)', () => {
  let redis: ChildProcess | undefined;
  afterAll(() => {
    redis?.kill('SIGKILL');
  });

  it('answers 507 before Redis would have to refuse or evict, and keeps everything acknowledged readable', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as { port: number }).port;
    await new Promise((resolve) => probe.close(resolve));
    // volatile-lru: every key of the relay has a TTL, so this Redis would evict them; the relay must stop first.
    redis = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--maxmemory',
        '12mb',
        '--maxmemory-policy',
        'volatile-lru',
      ],
      { stdio: 'ignore' },
    );
    let relay: TestRelay | undefined;
    try {
      const config: Partial<Config> = { redisUrl: `redis://127.0.0.1:${port}`, writeBudget: 0, rateLimit: 0 };
      relay = await openTestRelay('redis', { config });
      const server = await listen(relay.app);
      const accepted: { pub: string; uid: string; bytes: Buffer }[] = [];
      let refused = 0;
      const client = from('127.0.0.1');
      for (let n = 0; n < 400 && refused < 5; n++) {
        const pair = relay.keys();
        const bytes = randomBytes(64 * KIB);
        const answer = await postBlob(client, server.url, pair.private, 'b', bytes);
        await answer.arrayBuffer();
        if (answer.status === 200) accepted.push({ pub: pair.public, uid: 'b', bytes });
        else {
          expect(answer.status).toBe(507);
          refused++;
        }
      }
      expect(refused).toBe(5);
      expect(accepted.length).toBeGreaterThan(50);
      for (const { pub, uid, bytes } of accepted) {
        const answer = await fetch(`${server.url}/public/${pub}/${uid}`);
        expect(answer.status).toBe(200);
        expect(Buffer.from(await answer.arrayBuffer()).equals(bytes)).toBe(true);
      }
      await client.close();
      await server.close();
    } finally {
      await relay?.dispose();
    }
  });
});
