// `npm run bench:live`: latency from a public POST to the answer of the long-polling private GET that
// waits for it, on SQLite and on Redis, against the same POST→GET round trip with no waiting (baseline).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { startChild, stopAllChildren } from './children.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 500);
const TARGET_P50_MS = 5;
const TARGET_P99_MS = 20;
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const agent = new Agent({ connections: 8, pipelining: 1 });

const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;

async function call(method: 'GET' | 'POST', url: string, body?: string) {
  const response = await request(url, {
    method,
    dispatcher: agent,
    body,
    headers: body ? { 'content-type': 'application/json' } : {},
  });
  await response.body.text();
  return response.statusCode;
}

/** Each round: a GET waits, then a POST lands; the time is from the POST's start to the GET's answer. */
async function measure(base: string): Promise<{ waited: number[]; plain: number[] }> {
  const keys = JSON.parse(await (await fetch(`${base}/keys`)).text()) as { private: string; public: string };
  const item = JSON.stringify({ t: 'x'.repeat(100) });
  const waited: number[] = [];
  const plain: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    let answered = 0;
    const waiting = call('GET', `${base}/private/${keys.private}?wait=10`).then((status) => {
      answered = performance.now();
      if (status !== 200) throw new Error(`the waiting GET answered ${status}`);
    });
    await sleep(3); // lets the GET reach the relay and start waiting
    const posted = performance.now();
    await call('POST', `${base}/public/${keys.public}`, item);
    await waiting;
    waited.push(answered - posted);

    const started = performance.now();
    await call('POST', `${base}/public/${keys.public}`, item);
    await call('GET', `${base}/private/${keys.private}`);
    plain.push(performance.now() - started);
  }
  return { waited: waited.sort((a, b) => a - b), plain: plain.sort((a, b) => a - b) };
}

async function main() {
  console.log('Building the relay (npm run build)…');
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
  const dataDir = await mkdtemp(join(tmpdir(), 'deadrop-bench-live-'));
  const common = {
    LOG_LEVEL: 'silent',
    HOST: '127.0.0.1',
    DEADROP_RATE_LIMIT: '1000000000',
    DEADROP_TTL: '600',
  };
  const stores: { store: string; env: Record<string, string> }[] = [
    { store: 'sqlite', env: { DEADROP_STORE: 'sqlite', DEADROP_DATA_DIR: dataDir } },
    {
      store: 'redis',
      env: { DEADROP_STORE: 'redis', REDIS_URL, DEADROP_SECRET: randomBytes(24).toString('base64url') },
    },
  ];
  const rows: string[][] = [];
  try {
    for (const { store, env } of stores) {
      const relay = await startChild(
        `relay (${store})`,
        ['dist/src/cli.js', 'serve'],
        { ...common, ...env },
        '/id',
        ROOT,
      );
      console.log(`• ${store}: ${ROUNDS} rounds…`);
      const { waited, plain } = await measure(relay.url);
      await relay.stop();
      const p50 = quantile(waited, 0.5);
      const p99 = quantile(waited, 0.99);
      rows.push([
        store,
        p50.toFixed(2),
        p99.toFixed(2),
        quantile(plain, 0.5).toFixed(2),
        p50 < TARGET_P50_MS && p99 < TARGET_P99_MS ? 'PASS' : 'BELOW',
      ]);
    }
  } finally {
    await stopAllChildren();
    await agent.close();
    await rm(dataDir, { recursive: true, force: true });
  }
  const header = [
    'store',
    'POST→waiting GET p50 ms',
    'p99 ms',
    'baseline POST+GET p50 ms',
    `target p50<${TARGET_P50_MS} p99<${TARGET_P99_MS}`,
  ];
  const widths = header.map((title, i) =>
    Math.max(title.length, ...rows.map((row) => (row[i] ?? '').length)),
  );
  for (const row of [header, ...rows])
    console.log(row.map((cell, i) => cell.padStart(widths[i] ?? 0)).join('  '));
  console.log(`\nRerun: cd ${ROOT} && npm run bench:live`);
}

await main();
