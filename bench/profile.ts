// `npm run bench:profile -- [case] [store]`: a CPU profile of the built relay under one autocannon load,
// summarised as the top functions and packages by self time (the profile file is kept for DevTools).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon, { type Request } from 'autocannon';
import { startChild, stopAllChildren } from './children.js';
import { cycle, fetchKeyPairs, sendEach } from './load.js';
import { printTable } from './table.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const DURATION_S = Number(process.env.BENCH_DURATION ?? 10);
const TOP = 25;
const PAYLOAD = JSON.stringify({ data: 'x'.repeat(1024 - '{"data":""}'.length) });
const JSON_HEADERS = { 'content-type': 'application/json' };
/** Keys filled for the drain case: more than a relay drains in DURATION_S at 10 000 req/s. */
const DRAIN_KEYS = Number(process.env.BENCH_DRAIN_KEYS ?? Math.max(20_000, DURATION_S * 10_000));

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface CpuProfile {
  nodes: ProfileNode[];
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Where a function comes from: a package under node_modules, node's own code, or the project. */
function origin(url: string): string {
  const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (match) return match[1] as string;
  if (url.startsWith('node:')) return 'node';
  if (url === '') return '(native/gc/idle)';
  return url.includes('/dist/') ? 'deadrop' : url;
}

/** Self time by function and by origin, in ms, over `windowMs` ending `skipEndMs` before the profile's end. */
export function summarise(profile: CpuProfile, windowMs: number, skipEndMs: number) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const byFunction = new Map<string, number>();
  const byOrigin = new Map<string, number>();
  let total = 0;
  // Sample times, from the end backwards: start-up and key setup fall outside the window.
  const times: number[] = [];
  let at = profile.endTime;
  for (let i = profile.samples.length - 1; i >= 0; i--) {
    times[i] = at;
    at -= profile.timeDeltas[i] ?? 0;
  }
  const to = profile.endTime - skipEndMs * 1000;
  const from = to - windowMs * 1000;
  profile.samples.forEach((id, i) => {
    const node = byId.get(id);
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    const time = times[i] ?? 0;
    if (!node || time < from || time > to) return;
    total += ms;
    const { functionName, url, lineNumber } = node.callFrame;
    const file = url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/dist\//, 'dist/');
    const name = `${functionName || '(anonymous)'} ${file ? `${file}:${lineNumber + 1}` : ''}`.trim();
    byFunction.set(name, (byFunction.get(name) ?? 0) + ms);
    const source = functionName === '(idle)' ? '(idle)' : origin(url);
    byOrigin.set(source, (byOrigin.get(source) ?? 0) + ms);
  });
  const top = (map: Map<string, number>) => [...map].sort((a, b) => b[1] - a[1]).slice(0, TOP);
  return { total, functions: top(byFunction), origins: top(byOrigin) };
}

async function main() {
  const [which = 'post', store = 'sqlite'] = process.argv.slice(2);
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
  const dir = await mkdtemp(join(tmpdir(), 'deadrop-profile-'));
  const env: Record<string, string> = {
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
    DEADROP_MAX_QUEUE: '1000000',
    DEADROP_TTL: '3600',
    DEADROP_RATE_LIMIT: '1000000000',
    ...(store === 'redis'
      ? {
          DEADROP_STORE: 'redis',
          REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
          DEADROP_SECRET: randomBytes(24).toString('base64url'),
        }
      : { DEADROP_STORE: store, DEADROP_DATA_DIR: join(dir, 'data') }),
  };
  const profiling = ['--cpu-prof', `--cpu-prof-dir=${dir}`];
  // `hello`: the baseline itself, profiled the same way, so the two profiles can be compared.
  const relay =
    which === 'hello'
      ? await startChild(
          'hello world',
          [...profiling, '--import', 'tsx', 'bench/hello-world.ts'],
          {},
          '/',
          ROOT,
        )
      : await startChild(`relay (${store})`, [...profiling, 'dist/src/cli.js', 'serve'], env, '/id', ROOT);
  // A drain takes a key's whole queue: each gets one key holding one item, so that the drains profiled
  // are real ones and not 404s on keys already emptied. The other cases cycle through a few keys.
  const keyCount = which === 'hello' ? 0 : which === 'drain' ? DRAIN_KEYS : 200;
  const pairs = keyCount === 0 ? [] : await fetchKeyPairs(relay.url, keyCount);
  if (pairs.length > 0) {
    const fill = cycle(pairs);
    const filled = await sendEach(relay.url, pairs.length, {
      method: 'POST',
      headers: JSON_HEADERS,
      body: PAYLOAD,
      setupRequest: (r) => {
        const pair = fill.take();
        return { ...r, path: which === 'drain' ? `/public/${pair.public}` : `/private/${pair.private}` };
      },
    });
    if (filled['200'] !== pairs.length)
      throw new Error(`filling the keys answered ${JSON.stringify(filled)}`);
  }
  const keys = cycle(pairs);
  const next = () => keys.take();
  const requests: Record<string, Request> = {
    hello: { method: 'GET', path: '/' },
    post: {
      method: 'POST',
      headers: JSON_HEADERS,
      body: PAYLOAD,
      setupRequest: (r) => ({ ...r, path: `/public/${next().public}` }),
    },
    publish: {
      method: 'POST',
      headers: JSON_HEADERS,
      body: PAYLOAD,
      setupRequest: (r) => ({ ...r, path: `/private/${next().private}` }),
    },
    read: { method: 'GET', setupRequest: (r) => ({ ...r, path: `/public/${next().public}` }) },
    drain: { method: 'GET', setupRequest: (r) => ({ ...r, path: `/private/${next().private}` }) },
  };
  const request = requests[which];
  if (!request) throw new Error(`case must be one of ${Object.keys(requests).join(', ')}`);
  console.log(`Profiling "${which}" on ${store} for ${DURATION_S} s (LOG_LEVEL=${env.LOG_LEVEL})…`);
  const cpuBefore = await relay.cpuMs();
  const result = await autocannon({
    url: relay.url,
    connections: 50,
    duration: DURATION_S,
    requests: [request],
  });
  const cpuUsPerReq = (((await relay.cpuMs()) - cpuBefore) * 1000) / Math.max(1, result.requests.total);
  const loadEnded = Date.now();
  await relay.stop();
  const stopMs = Date.now() - loadEnded;
  const file = (await readdir(dir)).find((name) => name.endsWith('.cpuprofile'));
  if (!file) throw new Error('the relay wrote no profile');
  const profile = JSON.parse(await readFile(join(dir, file), 'utf8')) as CpuProfile;
  // The load's last seconds, leaving out the shutdown: what a request costs at full speed.
  const { total, functions, origins } = summarise(profile, (DURATION_S - 1) * 1000, stopMs);
  const pct = (ms: number) => `${((100 * ms) / total).toFixed(1)} %`;
  console.log(
    `\n${result.requests.average.toFixed(0)} req/s, p99 ${result.latency.p99} ms, ${cpuUsPerReq.toFixed(0)} µs of relay CPU per request`,
  );
  printTable(
    ['origin (self time)', 'ms', 'share'],
    origins.map(([name, ms]) => [name, ms.toFixed(0), pct(ms)]),
  );
  printTable(
    ['function (self time)', 'ms', 'share'],
    functions.map(([name, ms]) => [name.slice(0, 90), ms.toFixed(0), pct(ms)]),
  );
  console.log(`\nProfile: ${join(dir, file)} (open in Chrome DevTools)`);
}

try {
  await main();
} catch (error) {
  console.error(`bench:profile failed: ${error instanceof Error ? error.message : error}`);
  process.exitCode = 1;
} finally {
  await stopAllChildren();
}
