// `npm run bench:relay`: the built relay (SQLite, Redis) against a bare Express hello world measured right
// before each case (both meet the same background load), with autocannon; req/s, p99 and CPU per request.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Request } from 'autocannon';
import { type Child, startChild, stopAllChildren } from './children.js';
import {
  CONNECTIONS,
  type Cycle,
  cannon,
  cycle,
  fetchKeyPairs,
  type KeyPair,
  sendEach,
  statusCounts,
} from './load.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const DURATION_S = Number(process.env.BENCH_DURATION ?? 10);
const WARMUP_S = 2;
/** How long a timed autocannon run may take before the bench gives up on it. */
const TIMED_LIMIT_MS = (WARMUP_S + DURATION_S) * 1000 + 30_000;
/** Relay req/s over hello-world req/s that the relay should reach. */
const TARGETS: Record<string, number> = { sqlite: 0.8, redis: 0.6 };
/** Key pairs the POST case cycles through: each gets a few hundred items, far below DEADROP_MAX_QUEUE. */
const POST_POOL_SIZE = 1000;
/** Keys pre-filled for the drain case, as a multiple of what the POST rate predicts it will drain. */
const DRAIN_HEADROOM = 2;
const DRAIN_POOL_MIN = 10_000;
const DRAIN_POOL_MAX = 1_000_000;
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** BENCH_STORES=sqlite (or redis): only those stores' cases, for a quicker look at one. */
const ONLY_STORES = process.env.BENCH_STORES?.split(',');

/** The row of the bare Express POST (bench/express-post.ts): no target, the ceiling of the relay's POST cases. */
const REFERENCE_CASE = 'bare Express POST 1 KiB (reference)';
/** A path segment shaped like a public key, for the reference app, which checks none. */
const randomKey = () => randomBytes(32).toString('base64url');

/** A JSON object of exactly `size` bytes. */
const jsonOfSize = (size: number) => JSON.stringify({ data: 'x'.repeat(size - '{"data":""}'.length) });
const PAYLOAD = jsonOfSize(1024);
const JSON_HEADERS = { 'content-type': 'application/json' };

interface CaseResult {
  case: string;
  store: string;
  reqPerSec: number;
  /** The server's CPU time per answered request: what a request costs, whatever else runs on the machine. */
  cpuUsPerReq: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  /** The hello world measured just before this case: req/s and CPU µs per request. */
  baseline?: { reqPerSec: number; cpuUsPerReq: number };
  /** Relay req/s ÷ hello-world req/s; undefined for the baseline itself. */
  ratio?: number;
  pass?: boolean;
  notes?: string;
}

/** A short warm-up (discarded), then the measured run; both draw from the same `requests`. */
async function measure(
  label: string,
  store: string,
  server: Child,
  requests: Request[],
): Promise<CaseResult> {
  const { url } = server;
  console.log(`• ${label} (${store}): ${WARMUP_S} s warm-up, ${DURATION_S} s measured…`);
  await cannon({ url, duration: WARMUP_S, requests }, TIMED_LIMIT_MS);
  const cpuBefore = await server.cpuMs();
  const result = await cannon({ url, duration: DURATION_S, requests }, TIMED_LIMIT_MS);
  const cpuMs = (await server.cpuMs()) - cpuBefore;
  return {
    case: label,
    store,
    reqPerSec: result.requests.average,
    cpuUsPerReq: (cpuMs * 1000) / Math.max(1, result.requests.total),
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes: statusCounts(result),
  };
}

const postTo = (keys: Cycle<KeyPair>): Request => ({
  method: 'POST',
  headers: JSON_HEADERS,
  body: PAYLOAD,
  setupRequest: (request) => ({ ...request, path: `/public/${keys.take().public}` }),
});

const publishTo = (keys: Cycle<KeyPair>): Request => ({
  method: 'POST',
  headers: JSON_HEADERS,
  body: PAYLOAD,
  setupRequest: (request) => ({ ...request, path: `/private/${keys.take().private}` }),
});

const readFrom = (keys: Cycle<KeyPair>): Request => ({
  method: 'GET',
  setupRequest: (request) => ({ ...request, path: `/public/${keys.take().public}` }),
});

const drainFrom = (keys: Cycle<KeyPair>): Request => ({
  method: 'GET',
  setupRequest: (request) => ({ ...request, path: `/private/${keys.take().private}` }),
});

/** Fails early, with a readable message, when the relay cannot store and drain one item. */
async function checkRelay(url: string, store: string): Promise<void> {
  const pair = (await (await fetch(`${url}/keys`)).json()) as KeyPair;
  const post = await fetch(`${url}/public/${pair.public}`, {
    method: 'POST',
    headers: JSON_HEADERS,
    body: PAYLOAD,
  });
  const drain = await fetch(`${url}/private/${pair.private}`);
  const drained = await drain.text();
  if (post.status !== 200 || drain.status !== 200 || drained !== `[${PAYLOAD}]`) {
    throw new Error(`the relay on ${store} failed a POST and drain: ${post.status}, ${drain.status}`);
  }
}

/**
 * A relay case right after the hello world, so that both meet the same load from whatever else runs on
 * this machine: the ratio is taken against that adjacent baseline.
 */
async function againstBaseline(
  hello: Child,
  label: string,
  store: string,
  relay: Child,
  requests: Request[],
): Promise<CaseResult> {
  const baseline = await measure('hello world GET /', 'none', hello, [{ path: '/' }]);
  const result = await measure(label, store, relay, requests);
  return { ...result, baseline: { reqPerSec: baseline.reqPerSec, cpuUsPerReq: baseline.cpuUsPerReq } };
}

/** The four relay cases on one store; `shared` stores (Redis) are emptied of what the bench left. */
async function benchRelay(hello: Child, relay: Child, store: string, shared: boolean): Promise<CaseResult[]> {
  const { url } = relay;
  await checkRelay(url, store);
  const measureCase = (label: string, requests: Request[]) =>
    againstBaseline(hello, label, store, relay, requests);

  const postPool = await fetchKeyPairs(url, POST_POOL_SIZE);
  const post = await measureCase('public POST 1 KiB JSON', [postTo(cycle(postPool))]);
  if (shared) await sendEach(url, postPool.length, drainFrom(cycle(postPool)));
  const publish = await measureCase('private KV publish 1 KiB', [publishTo(cycle(postPool))]);
  const read = await measureCase('public KV read 1 KiB', [readFrom(cycle(postPool))]);
  if ((read.statusCodes['404'] ?? 0) > 0) read.notes = `${read.statusCodes['404']} reads found nothing`;

  // One key per drain, each holding one item, so that the drains measured are real ones and not 404s.
  const poolSize = Math.min(
    DRAIN_POOL_MAX,
    Math.max(DRAIN_POOL_MIN, Math.ceil(post.reqPerSec * (WARMUP_S + DURATION_S) * DRAIN_HEADROOM)),
  );
  console.log(`  filling ${poolSize} keys with one item each for the drain…`);
  const drainPool = await fetchKeyPairs(url, poolSize);
  const filled = await sendEach(url, poolSize, postTo(cycle(drainPool)));
  if (filled['200'] !== poolSize)
    throw new Error(`filling the drain keys answered ${JSON.stringify(filled)}`);
  const drainKeys = cycle(drainPool);
  const drain = await measureCase('private GET drain', [drainFrom(drainKeys)]);
  const wrapped = drainKeys.taken > poolSize;
  drain.notes =
    `${poolSize} keys × 1 item; 200 (drained) ${drain.statusCodes['200'] ?? 0}, ` +
    `404 (empty) ${drain.statusCodes['404'] ?? 0}${wrapped ? '; the key pool ran out' : ''}`;
  const left = poolSize - drainKeys.taken;
  if (shared && left > 0) await sendEach(url, left, drainFrom(cycle(drainPool.slice(drainKeys.taken))));
  return [post, publish, read, drain];
}

function withRatio(result: CaseResult): CaseResult {
  const ratio = result.reqPerSec / (result.baseline?.reqPerSec ?? Number.NaN);
  const target = TARGETS[result.store];
  return { ...result, ratio, pass: target === undefined ? undefined : ratio >= target };
}

function printTable(results: CaseResult[]): void {
  const header = [
    'case',
    'store',
    'req/s',
    'p99 ms',
    'CPU µs/req',
    'baseline req/s',
    'baseline CPU µs/req',
    'non-2xx',
    'errors',
    'CPU ratio',
    'ratio',
    'target',
    'verdict',
  ];
  const rows = results.map((r) => [
    r.case,
    r.store,
    r.reqPerSec.toFixed(0),
    r.p99Ms.toFixed(0),
    r.cpuUsPerReq.toFixed(0),
    r.baseline?.reqPerSec.toFixed(0) ?? '-',
    r.baseline?.cpuUsPerReq.toFixed(0) ?? '-',
    String(r.non2xx),
    String(r.errors),
    r.baseline ? (r.baseline.cpuUsPerReq / r.cpuUsPerReq).toFixed(3) : '-',
    (r.ratio ?? 1).toFixed(3),
    r.pass === undefined ? '-' : `≥ ${(TARGETS[r.store] ?? 1).toFixed(2)}`,
    r.pass === undefined ? 'reference' : r.pass ? 'PASS' : 'BELOW',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((cell, i) => (i < 2 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ');
  console.log(`\n${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}`);
  for (const row of rows) console.log(line(row));
  for (const r of results) {
    const codes = Object.entries(r.statusCodes)
      .map(([code, count]) => `${code}×${count}`)
      .join(' ');
    console.log(`  ${r.case} (${r.store}): ${codes || 'no answers'}${r.notes ? `; ${r.notes}` : ''}`);
  }
}

async function main(): Promise<void> {
  console.log('Building the relay (npm run build)…');
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });

  // The relay logs as it does by default (info: one access line per request) to stdout, which the bench
  // discards; the baseline logs nothing, as a hello world does.
  const common = { NODE_ENV: 'production' };
  const results: CaseResult[] = [];
  const dataDir = await mkdtemp(join(tmpdir(), 'deadrop-bench-'));
  try {
    // Runs throughout, idle while a relay case runs: each case is measured right after a baseline run.
    const hello = await startChild(
      'hello world',
      ['--import', 'tsx', 'bench/hello-world.ts'],
      common,
      '/',
      ROOT,
    );

    const relayEnv = {
      ...common,
      LOG_LEVEL: 'info',
      HOST: '127.0.0.1',
      // The bound is 1_000_000 at most: the POST pool keeps every queue far below it.
      DEADROP_MAX_QUEUE: '1000000',
      // What a crashed run leaves in Redis expires within the hour.
      DEADROP_TTL: '3600',
      // Rate limiting stays on, so its cost is measured, but so high that it never answers 429.
      DEADROP_RATE_LIMIT: '1000000000',
    };
    const stores: { store: string; shared: boolean; env: Record<string, string> }[] = [
      { store: 'sqlite', shared: false, env: { DEADROP_STORE: 'sqlite', DEADROP_DATA_DIR: dataDir } },
      {
        store: 'redis',
        shared: true,
        env: {
          DEADROP_STORE: 'redis',
          REDIS_URL,
          DEADROP_SECRET: randomBytes(24).toString('base64url'),
        },
      },
    ];
    // What Express alone leaves of the hello world's rate for a 1 KiB JSON POST: the ceiling of the POST cases.
    const bare = await startChild(
      'bare Express POST',
      ['--import', 'tsx', 'bench/express-post.ts'],
      common,
      '/',
      ROOT,
    );
    try {
      const pool = Array.from({ length: POST_POOL_SIZE }, () => ({ private: '', public: randomKey() }));
      const reference = await againstBaseline(hello, REFERENCE_CASE, 'none', bare, [postTo(cycle(pool))]);
      results.push(withRatio(reference));
    } finally {
      await bare.stop();
    }
    for (const { store, shared, env } of stores.filter(({ store }) => ONLY_STORES?.includes(store) ?? true)) {
      const relay = await startChild(
        `relay (${store})`,
        ['dist/src/cli.js', 'serve'],
        { ...relayEnv, ...env },
        '/id',
        ROOT,
      );
      try {
        for (const result of await benchRelay(hello, relay, store, shared)) results.push(withRatio(result));
      } finally {
        await relay.stop();
      }
    }
  } finally {
    await stopAllChildren();
    await rm(dataDir, { recursive: true, force: true });
  }

  printTable(results);
  const cores = availableParallelism();
  console.log(
    `\nautocannon and every server share this machine's ${cores} CPU(s) (${cpus()[0]?.model ?? '?'}).`,
  );

  const resultsDir = join(ROOT, 'bench', 'results');
  await mkdir(resultsDir, { recursive: true });
  const file = join(resultsDir, `relay-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  const settings = { connections: CONNECTIONS, durationS: DURATION_S, warmupS: WARMUP_S, payloadBytes: 1024 };
  const machine = { node: process.version, cpus: cores, cpuModel: cpus()[0]?.model };
  await writeFile(file, `${JSON.stringify({ date: new Date(), machine, settings, results }, null, 2)}\n`);
  console.log(`Results: ${file}`);
  const env = ['BENCH_DURATION', 'BENCH_STORES']
    .filter((name) => process.env[name])
    .map((name) => `${name}=${process.env[name]} `)
    .join('');
  console.log(`Rerun: cd ${ROOT} && ${env}npm run bench:relay`);
}

try {
  await main();
} catch (error) {
  console.error(`bench:relay failed: ${error instanceof Error ? error.message : error}`);
  await stopAllChildren();
  process.exitCode = 1;
}
