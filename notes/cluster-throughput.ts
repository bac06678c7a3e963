// One relay instance on a 3-shard local Redis Cluster against the same relay on one redis-server: req/s
// and the relay's CPU per request for public POSTs, alternating runs so machine noise hits both alike.
// Run: npx tsx notes/cluster-throughput.ts [runs]
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import { startRedisCluster } from '../test/support/redis-cluster.js';
import { type RelayProcess, startRelayProcess } from '../test/support/relay-process.js';

const RUNS = Number(process.argv[2] ?? 3);
const DURATION_S = 5;
const BODY = JSON.stringify({ data: 'x'.repeat(1024 - 11) });

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function startRedis(): Promise<{ url: string; child: ChildProcess; dir: string }> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'deadrop-throughput-'));
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir],
    {
      stdio: 'ignore',
    },
  );
  await sleep(300);
  return { url: `redis://127.0.0.1:${port}`, child, dir };
}

async function measure(relay: RelayProcess) {
  const pairs = await Promise.all(
    Array.from(
      { length: 200 },
      async () => (await (await fetch(`${relay.url}/keys`)).json()) as { public: string },
    ),
  );
  let next = 0;
  const run = () =>
    autocannon({
      url: relay.url,
      connections: 50,
      duration: DURATION_S,
      requests: [
        {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: BODY,
          setupRequest: (request) => ({
            ...request,
            path: `/public/${pairs[next++ % pairs.length]?.public}`,
          }),
        },
      ],
    });
  await autocannon({ url: relay.url, connections: 50, duration: 1 }); // warm-up
  const before = await relay.cpuMs();
  const result = await run();
  const cpuMs = (await relay.cpuMs()) - before;
  return {
    reqPerSec: Math.round(result.requests.average),
    cpuUsPerReq: Math.round((cpuMs * 1000) / result.requests.total),
    non2xx: result.non2xx,
  };
}

const env = {
  DEADROP_SECRET: randomBytes(24).toString('base64url'),
  LOG_LEVEL: 'warn',
  DEADROP_MAX_QUEUE: '1000000',
  DEADROP_RATE_LIMIT: '1000000000',
  DEADROP_WRITE_BUDGET: '1099511627776',
};
const cluster = await startRedisCluster();
const single = await startRedis();
const onCluster = await startRelayProcess({ ...env, REDIS_CLUSTER: cluster.seedUrls.join(',') });
const onSingle = await startRelayProcess({ ...env, REDIS_URL: single.url });
try {
  for (let run = 0; run < RUNS; run++) {
    console.log('single ', JSON.stringify(await measure(onSingle)));
    console.log('cluster', JSON.stringify(await measure(onCluster)));
  }
} finally {
  await Promise.all([onCluster.stop(), onSingle.stop()]);
  await cluster.stop();
  single.child.kill('SIGKILL');
  await rm(single.dir, { recursive: true, force: true });
}
