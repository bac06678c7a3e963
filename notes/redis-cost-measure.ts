// What each relay request costs Redis: round trips and commands per route (MONITOR), bytes of memory per
// stored item (INFO memory deltas, MEMORY USAGE), and Redis CPU per request under load (INFO cpu deltas),
// on a private redis-server so no other traffic is counted. Run: npx tsx notes/redis-cost-measure.ts
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from '@redis/client';
import autocannon from 'autocannon';
import { type RelayProcess, startRelayProcess } from '../test/support/relay-process.js';

interface KeyPair {
  private: string;
  public: string;
}

const JSON_HEADERS = { 'content-type': 'application/json' };
const jsonOfSize = (size: number) => JSON.stringify({ data: 'x'.repeat(size - '{"data":""}'.length) });
const REPEAT = 50;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function startRedis(): Promise<{ url: string; process: ChildProcess; dir: string }> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'deadrop-cost-'));
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: 'ignore' },
  );
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    const probe = createClient({ url, socket: { reconnectStrategy: false } });
    probe.on('error', () => {});
    try {
      await probe.connect();
      await probe.close();
      return { url, process: child, dir };
    } catch {
      await sleep(50);
    }
  }
  throw new Error('redis-server did not start');
}

const info = (text: string, field: string) => Number(new RegExp(`^${field}:(.*)$`, 'm').exec(text)?.[1]);

/** Top-level commands (round trips) and commands run inside scripts, per kind, seen while `run` ran. */
async function monitorWhile(url: string, run: () => Promise<void>) {
  const monitor = createClient({ url });
  await monitor.connect();
  const roundTrips = new Map<string, number>();
  const inScripts = new Map<string, number>();
  await monitor.monitor((line: string) => {
    const match = /^\S+ \[\d+ (\S+)\] "([^"]+)"/.exec(line);
    if (!match) return;
    const [, source, command] = match as unknown as [string, string, string];
    const name = command.toUpperCase();
    if (name === 'PING' || name === 'INFO') return; // the background: pingInterval, the capacity poll
    const counts = source === 'lua' ? inScripts : roundTrips;
    counts.set(name, (counts.get(name) ?? 0) + 1);
  });
  await sleep(100);
  await run();
  await sleep(300); // MONITOR lines arrive after the replies
  await monitor.close().catch(() => monitor.destroy());
  return { roundTrips, inScripts };
}

const perRequest = (counts: Map<string, number>) => {
  const total = [...counts.values()].reduce((sum, count) => sum + count, 0) / REPEAT;
  const kinds = [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([name, count]) => `${name}×${+(count / REPEAT).toFixed(2)}`)
    .join(' ');
  return { total: +total.toFixed(2), kinds };
};

async function keyPairs(relay: string, count: number): Promise<KeyPair[]> {
  const pairs: KeyPair[] = [];
  for (let i = 0; i < count; i += 50) {
    pairs.push(
      ...(await Promise.all(
        Array.from(
          { length: Math.min(50, count - i) },
          async () => (await (await fetch(`${relay}/keys`)).json()) as KeyPair,
        ),
      )),
    );
  }
  return pairs;
}

const send = async (url: string, init?: RequestInit) => {
  const answer = await fetch(url, init);
  await answer.arrayBuffer();
  return answer.status;
};

interface Route {
  name: string;
  /** Runs before counting starts, once per repetition (fills what the route reads). */
  prepare?: (pair: KeyPair, relay: string) => Promise<void>;
  request: (pair: KeyPair, relay: string) => Promise<number>;
}

const ONE_KIB = jsonOfSize(1024);

const routes: Route[] = [
  { name: 'GET /keys', request: (_pair, relay) => send(`${relay}/keys`) },
  {
    name: 'POST /public/<pub> (append 1 KiB)',
    request: (pair, relay) =>
      send(`${relay}/public/${pair.public}`, { method: 'POST', headers: JSON_HEADERS, body: ONE_KIB }),
  },
  {
    name: 'GET /private/<priv> (drain 1 item)',
    prepare: async (pair, relay) => {
      await send(`${relay}/public/${pair.public}`, { method: 'POST', headers: JSON_HEADERS, body: ONE_KIB });
    },
    request: (pair, relay) => send(`${relay}/private/${pair.private}`),
  },
  {
    name: 'GET /private/<priv> (empty, 404)',
    request: (pair, relay) => send(`${relay}/private/${pair.private}`),
  },
  {
    name: 'POST /private/<priv> (publish 1 KiB)',
    request: (pair, relay) =>
      send(`${relay}/private/${pair.private}`, { method: 'POST', headers: JSON_HEADERS, body: ONE_KIB }),
  },
  {
    name: 'GET /public/<pub> (read value)',
    prepare: async (pair, relay) => {
      await send(`${relay}/private/${pair.private}`, {
        method: 'POST',
        headers: JSON_HEADERS,
        body: ONE_KIB,
      });
    },
    request: (pair, relay) => send(`${relay}/public/${pair.public}`),
  },
  {
    name: 'POST /private/<priv>/<uid> (1 KiB JSON)',
    request: (pair, relay) =>
      send(`${relay}/private/${pair.private}/u1`, { method: 'POST', headers: JSON_HEADERS, body: ONE_KIB }),
  },
  {
    name: 'POST /private/<priv>/<uid> (64 KiB blob)',
    request: (pair, relay) =>
      send(`${relay}/private/${pair.private}/b1`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: randomBytes(65_536),
      }),
  },
  {
    name: 'GET /public/<pub>/<uid> (take)',
    prepare: async (pair, relay) => {
      await send(`${relay}/private/${pair.private}/u2`, {
        method: 'POST',
        headers: JSON_HEADERS,
        body: ONE_KIB,
      });
    },
    request: (pair, relay) => send(`${relay}/public/${pair.public}/u2`),
  },
  {
    name: 'GET /private/<priv>?wait=10 + the POST that answers it',
    request: async (pair, relay) => {
      const waiting = send(`${relay}/private/${pair.private}?wait=10`);
      await sleep(30);
      await send(`${relay}/public/${pair.public}`, { method: 'POST', headers: JSON_HEADERS, body: ONE_KIB });
      return waiting;
    },
  },
  {
    name: 'pipe: /pipe/ GET + /pipe/ POST (both redirects)',
    request: async (pair, relay) => {
      const receiver = await fetch(`${relay}/pipe/${pair.private}`, { redirect: 'manual' });
      await receiver.arrayBuffer();
      const sender = await fetch(`${relay}/pipe/${pair.public}`, {
        method: 'POST',
        body: 'x',
        redirect: 'manual',
      });
      await sender.arrayBuffer();
      // Pair them off so the next repetition starts clean.
      const location = new URL(sender.headers.get('location') as string, relay).href;
      await Promise.all([send(location), send(location, { method: 'POST', body: 'x' })]);
      return sender.status;
    },
  },
];

async function countCommands(redisUrl: string, limits: boolean) {
  const relay = await startRelayProcess({
    REDIS_URL: redisUrl,
    DEADROP_SECRET: randomBytes(24).toString('base64url'),
    LOG_LEVEL: 'warn',
    ...(limits
      ? { DEADROP_RATE_LIMIT: '1000000000', DEADROP_WRITE_BUDGET: '1099511627776', DEADROP_BAN_AFTER: '10' }
      : { DEADROP_RATE_LIMIT: '0', DEADROP_WRITE_BUDGET: '0' }),
  });
  const rows: string[] = [];
  try {
    for (const route of routes) {
      const pairs = await keyPairs(relay.url, REPEAT);
      for (const pair of pairs) await route.prepare?.(pair, relay.url);
      const statuses = new Map<number, number>();
      const seen = await monitorWhile(redisUrl, async () => {
        for (const pair of pairs) {
          const status = await route.request(pair, relay.url);
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
        }
      });
      const trips = perRequest(seen.roundTrips);
      const inside = perRequest(seen.inScripts);
      rows.push(
        `| ${route.name} | ${trips.total} | ${trips.kinds} | ${inside.total} | ${[...statuses.keys()].join(',')} |`,
      );
    }
  } finally {
    await relay.stop();
  }
  return rows;
}

async function memoryPerItem(redisUrl: string) {
  const relay = await startRelayProcess({
    REDIS_URL: redisUrl,
    DEADROP_SECRET: randomBytes(24).toString('base64url'),
    LOG_LEVEL: 'warn',
    DEADROP_RATE_LIMIT: '0',
    DEADROP_WRITE_BUDGET: '0',
    DEADROP_MAX_QUEUE: '100000',
  });
  const redis = createClient({ url: redisUrl });
  await redis.connect();
  const rows: string[] = [];
  try {
    const cases = [
      { what: 'queued item, 100 B JSON, 100 per key pair', size: 100, pairs: 100, perPair: 100 },
      { what: 'queued item, 1 KiB JSON, 100 per key pair', size: 1024, pairs: 100, perPair: 100 },
      { what: 'queued item, 1 KiB JSON, 1 per key pair', size: 1024, pairs: 5000, perPair: 1 },
      { what: 'queued item, 10 KiB JSON, 10 per key pair', size: 10_240, pairs: 200, perPair: 10 },
    ];
    for (const { what, size, pairs: pairCount, perPair } of cases) {
      await redis.flushAll();
      const pairs = await keyPairs(relay.url, pairCount);
      const before = info(await redis.info('memory'), 'used_memory');
      const body = jsonOfSize(size);
      const posts = pairs.flatMap((pair) => Array.from({ length: perPair }, () => pair));
      for (let i = 0; i < posts.length; i += 50) {
        await Promise.all(
          posts
            .slice(i, i + 50)
            .map((pair) =>
              send(`${relay.url}/public/${pair.public}`, { method: 'POST', headers: JSON_HEADERS, body }),
            ),
        );
      }
      const after = info(await redis.info('memory'), 'used_memory');
      const sample = `dr:{${(pairs[0] as KeyPair).public}}:q`;
      const usage = Number(await redis.memoryUsage(sample));
      rows.push(
        `| ${what} | ${Math.round((after - before) / posts.length)} | ${Math.round(usage / perPair)} | ${size} |`,
      );
    }
  } finally {
    await redis.close();
    await relay.stop();
  }
  return rows;
}

/** Relay req/s and Redis CPU per request for a POST load, with autocannon, 50 connections. */
async function redisCpuPerRequest(redisUrl: string, durationS: number) {
  const relay: RelayProcess = await startRelayProcess({
    REDIS_URL: redisUrl,
    DEADROP_SECRET: randomBytes(24).toString('base64url'),
    LOG_LEVEL: 'warn',
    DEADROP_MAX_QUEUE: '1000000',
    DEADROP_RATE_LIMIT: '1000000000',
    DEADROP_WRITE_BUDGET: '1099511627776',
  });
  const redis = createClient({ url: redisUrl });
  await redis.connect();
  try {
    const pairs = await keyPairs(relay.url, 1000);
    let next = 0;
    const cpu = async () => {
      const text = await redis.info('cpu');
      return (info(text, 'used_cpu_sys') + info(text, 'used_cpu_user')) * 1e6;
    };
    const run = () =>
      autocannon({
        url: relay.url,
        connections: 50,
        duration: durationS,
        requests: [
          {
            method: 'POST',
            headers: JSON_HEADERS,
            body: ONE_KIB,
            setupRequest: (request) => ({
              ...request,
              path: `/public/${(pairs[next++ % pairs.length] as KeyPair).public}`,
            }),
          },
        ],
      });
    await run(); // warm-up
    const before = await cpu();
    const result = await run();
    const redisUs = (await cpu()) - before;
    return {
      reqPerSec: Math.round(result.requests.average),
      redisCpuUsPerRequest: +(redisUs / result.requests.total).toFixed(1),
      non2xx: result.non2xx,
    };
  } finally {
    await redis.close();
    await relay.stop();
  }
}

const redis = await startRedis();
try {
  console.log('## Round trips per request (MONITOR; PING and INFO, the background, left out)\n');
  for (const limits of [false, true]) {
    console.log(`### rate limits and budget ${limits ? 'on' : 'off'}\n`);
    console.log('| route | round trips | of which | commands inside scripts | statuses |');
    console.log('|---|---|---|---|---|');
    for (const row of await countCommands(redis.url, limits)) console.log(row);
    console.log();
  }
  console.log(
    '## Memory per stored item (INFO used_memory delta / items; MEMORY USAGE of one queue / items)\n',
  );
  console.log('| what | bytes per item (used_memory) | bytes per item (MEMORY USAGE) | item bytes |');
  console.log('|---|---|---|---|');
  for (const row of await memoryPerItem(redis.url)) console.log(row);
  console.log('\n## Redis CPU per POST /public/<pub> (1 KiB, limits on), 50 connections, 5 s\n');
  for (let run = 0; run < 3; run++) console.log(JSON.stringify(await redisCpuPerRequest(redis.url, 5)));
} finally {
  redis.process.kill('SIGKILL');
  await rm(redis.dir, { recursive: true, force: true });
}
