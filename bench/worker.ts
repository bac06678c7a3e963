// `npm run bench:worker`: request round trips through relay and worker, and a 256 MiB download against a plain pipe.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once, setMaxListeners } from 'node:events';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { generateUserKeys, toBase64url } from '../sdk/crypto.js';
import { FILE_CHUNK_BYTES, STREAM_BUFFER_BYTES } from '../sdk/e2e/node-streams.js';
import { REQUEST_TYPES } from '../sdk/e2e/protocol.js';
import { createClient } from '../sdk/index.js';
import { downloadFile } from '../src/client/transfers.js';
import { connectWorker } from '../src/client/worker-client.js';
import { loadConfig } from '../src/config.js';
import { startRelay } from '../src/server.js';
import { runWorkerCommand } from '../src/worker/cli.js';
import { startChild, stopAllChildren } from './children.js';
import { printTable } from './table.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const SELF = fileURLToPath(import.meta.url);
const MIB = 1024 * 1024;
const DOWNLOAD_BYTES = Number(process.env.BENCH_MIB ?? 256) * MIB;
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 200);
const WARMUP_REQUESTS = 20;
/** One transfer of each kind first, so that neither is measured while the JIT is still compiling its code. */
const WARMUP_BYTES = 32 * MIB;
/** Baseline and worker take turns this many times; the best of each counts (other load only slows a run). */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const TARGET_P50_MS = 20;
const TARGET_DOWNLOAD_RATIO = 0.7;
/** The whole run is cut after this, so that a stuck child cannot hang the benchmark. */
const LIMIT_MS = 300_000;

/** A Writable that drops what it gets, counting it: both downloads end in one. */
function discard(): Writable & { bytes: number } {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      sink.bytes += chunk.length;
      done();
    },
  }) as Writable & { bytes: number };
  sink.bytes = 0;
  return sink;
}

async function writeRandomFile(path: string, bytes: number): Promise<void> {
  const handle = await open(path, 'w');
  for (let left = bytes; left > 0; left -= 8 * MIB) await handle.write(randomBytes(Math.min(left, 8 * MIB)));
  await handle.close();
}

/** Role "relay": `deadrop serve` on 127.0.0.1:$PORT (SQLite in $DEADROP_DATA_DIR). */
async function runRelay(): Promise<void> {
  const relay = await startRelay(loadConfig(process.env));
  process.once('SIGTERM', () => void relay.close().then(() => process.exit(0)));
}

/** Role "sender": the baseline's sending side; each stdin line `<private key> <file>` is piped raw to /pipe/. */
async function runSender(relayUrl: string): Promise<void> {
  const relay = createClient(relayUrl);
  process.stdin.setEncoding('utf8');
  let pending = '';
  for await (const chunk of process.stdin) {
    pending += chunk;
    for (let at = pending.indexOf('\n'); at >= 0; at = pending.indexOf('\n')) {
      const [key, file] = pending.slice(0, at).split(' ') as [string, string];
      pending = pending.slice(at + 1);
      // The worker's read size, so that both send chunks of the same size.
      const body = Readable.toWeb(createReadStream(file, { highWaterMark: FILE_CHUNK_BYTES }));
      await relay.pipeSend(key, body as unknown as ReadableStream<Uint8Array>, {
        type: 'application/octet-stream',
      });
      process.stdout.write('sent\n');
    }
  }
}

/** Starts `node --import tsx bench/worker.ts <args>` and resolves with it once it printed a line matching `ready`. */
async function startRole(args: string[], ready: RegExp): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', SELF, ...args], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
  });
  roles.add(child);
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    stderr = (stderr + text).slice(-4000);
  });
  child.stdout?.setEncoding('utf8');
  // A data listener, not for-await: leaving a for-await loop would destroy stdout under the child.
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (text: string) => {
      out += text;
      const line = out.split('\n').find((candidate) => ready.test(candidate));
      if (line) {
        out = '';
        resolve({ child, line });
      }
    });
    child.once('exit', () => reject(new Error(`${args[0]} ended before it was ready:\n${stderr}`)));
  });
}

const roles = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of roles) child.kill('SIGKILL');
});

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;

const HEADER = ['measure', 'baseline', 'worker', 'ratio', 'target', 'verdict'];

async function main(): Promise<void> {
  const deadline = AbortSignal.timeout(LIMIT_MS);
  setMaxListeners(0, deadline);
  const dir = await mkdtemp(join(tmpdir(), 'deadrop-bench-worker-'));
  try {
    console.log(
      `Writing a ${DOWNLOAD_BYTES / MIB} MiB file and starting the relay, a worker and a sender (127.0.0.1)…`,
    );
    await mkdir(join(dir, 'files'));
    await writeRandomFile(join(dir, 'files', 'big.bin'), DOWNLOAD_BYTES);
    await writeRandomFile(join(dir, 'files', 'warmup.bin'), WARMUP_BYTES);
    await writeFile(join(dir, 'files', 'small.txt'), 'small');
    const relayChild = await startChild(
      'relay',
      ['--import', 'tsx', SELF, 'relay'],
      {
        DEADROP_DATA_DIR: join(dir, 'data'),
        DEADROP_SECRET: randomBytes(24).toString('base64url'),
        DEADROP_RATE_LIMIT: '0',
        LOG_LEVEL: 'silent',
        HOST: '127.0.0.1',
      },
      '/id',
      ROOT,
    );
    const user = generateUserKeys();
    await writeFile(
      join(dir, 'worker.yml'),
      stringify({
        relay: relayChild.url,
        fingerprint: { level: 8 },
        receivers: { fs: { roots: { files: './files' }, operations: ['stat', 'download'] } },
        auth: [{ name: 'bench', key: toBase64url(user.publicKey), allow: { fs: '*' } }],
      }),
    );
    const { line: address } = await startRole(['worker', join(dir, 'worker.yml')], /^http/);
    const { child: sender } = await startRole(['sender', relayChild.url], /^ready/);
    const worker = await connectWorker(address.trim(), { user });
    const relay = createClient(relayChild.url);

    console.log(
      `Round trips: ${WARMUP_REQUESTS} to warm up, then ${REQUESTS} timed (fs stat, one at a time)…`,
    );
    const times: number[] = [];
    for (let n = 0; n < WARMUP_REQUESTS + REQUESTS; n++) {
      const started = performance.now();
      await worker.request(REQUEST_TYPES.fs('stat'), { path: '/files/small.txt' }, { signal: deadline });
      if (n >= WARMUP_REQUESTS) times.push(performance.now() - started);
    }
    times.sort((a, b) => a - b);
    const [p50, p99] = [percentile(times, 0.5), percentile(times, 0.99)];

    const viaWorker = async (name: string, bytes: number) => {
      const sink = discard();
      const started = performance.now();
      await downloadFile(worker, `/files/${name}`, sink, { signal: deadline });
      if (sink.bytes !== bytes) throw new Error(`worker: ${sink.bytes} bytes arrived`);
      return bytes / 1e6 / ((performance.now() - started) / 1000);
    };
    const viaPipe = async (name: string, bytes: number) => {
      const pair = await relay.keys();
      const sink = discard();
      const started = performance.now();
      sender.stdin?.write(`${pair.private} ${join(dir, 'files', name)}\n`);
      const response = await relay.pipeReceive(pair.public, { signal: deadline });
      // The same read-ahead as the client's download (STREAM_BUFFER_BYTES), so only the worker's work differs.
      const body = Readable.fromWeb(response.body as unknown as NodeReadableStream<Uint8Array>, {
        highWaterMark: STREAM_BUFFER_BYTES,
      });
      await pipeline(body, sink);
      if (sink.bytes !== bytes) throw new Error(`pipe: ${sink.bytes} bytes arrived`);
      return bytes / 1e6 / ((performance.now() - started) / 1000);
    };
    console.log(`Warming up both paths (${WARMUP_BYTES / MIB} MiB each)…`);
    await viaPipe('warmup.bin', WARMUP_BYTES);
    await viaWorker('warmup.bin', WARMUP_BYTES);
    const best = { pipe: 0, worker: 0 };
    for (let round = 1; round <= ROUNDS; round++) {
      console.log(
        `Round ${round}/${ROUNDS}: ${DOWNLOAD_BYTES / MIB} MiB through a plain pipe, then through the worker…`,
      );
      best.pipe = Math.max(best.pipe, await viaPipe('big.bin', DOWNLOAD_BYTES));
      best.worker = Math.max(best.worker, await viaWorker('big.bin', DOWNLOAD_BYTES));
    }

    const ratio = best.worker / best.pipe;
    const verdict = (pass: boolean) => (pass ? 'PASS' : 'BELOW');
    printTable(HEADER, [
      [
        `round trip p50, ms (${REQUESTS} requests)`,
        '-',
        p50.toFixed(1),
        '-',
        `< ${TARGET_P50_MS}`,
        verdict(p50 < TARGET_P50_MS),
      ],
      [`round trip p99, ms (${REQUESTS} requests)`, '-', p99.toFixed(1), '-', '-', '-'],
      [
        `${DOWNLOAD_BYTES / MIB} MiB download, MB/s (best of ${ROUNDS})`,
        best.pipe.toFixed(0),
        best.worker.toFixed(0),
        ratio.toFixed(3),
        `≥ ${TARGET_DOWNLOAD_RATIO}`,
        verdict(ratio >= TARGET_DOWNLOAD_RATIO),
      ],
    ]);
    console.log(
      '  round trip: client → relay → worker (long-poll) → relay → client, sealed and signed, on SQLite.\n' +
        '  baseline: the same file sent raw by a sender process through /pipe/ (SDK pipeSend → pipeReceive);\n' +
        '  worker: fs download, sealed frames from the worker process, opened by the client.',
    );
    const env = ['BENCH_MIB', 'BENCH_REQUESTS', 'BENCH_ROUNDS']
      .filter((name) => process.env[name])
      .map((name) => `${name}=${process.env[name]} `)
      .join('');
    console.log(`Rerun: cd ${ROOT} && ${env}npm run bench:worker`);
  } finally {
    for (const child of roles) {
      child.kill('SIGTERM');
      await Promise.race([once(child, 'exit'), new Promise((resolve) => setTimeout(resolve, 3000))]);
    }
    await stopAllChildren();
    await rm(dir, { recursive: true, force: true });
  }
}

const [role, ...rest] = process.argv.slice(2);
if (role === 'relay') await runRelay();
else if (role === 'worker') await runWorkerCommand(['--config', rest[0] as string]);
else if (role === 'sender') {
  process.stdout.write('ready\n');
  await runSender(rest[0] as string);
} else {
  try {
    await main();
  } catch (error) {
    console.error(`bench:worker failed: ${error instanceof Error ? error.message : error}`);
    process.exitCode = 1;
  }
}
