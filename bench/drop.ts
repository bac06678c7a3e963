// `npm run bench:drop`: a 1 GiB drop with both ends online (the CLI's send and get, through the relay's default
// 64 MiB room per key pair), against a plain /stream/ transfer of the same bytes through the same relay.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import express from 'express';
import { pino } from 'pino';
import { openBackend } from '../src/backend/open-backend.js';
import { composeRelay } from '../src/compose.js';
import { loadConfig } from '../src/config.js';
import { type Child, startChild, stopAllChildren } from './children.js';
import { printTable } from './table.js';
import { mainProfileIn, topEntries } from './top-entries.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const SELF = fileURLToPath(import.meta.url);
const MIB = 1024 * 1024;
const FILE_BYTES = Number(process.env.BENCH_DROP_MIB ?? 1024) * MIB;
/** Best of this many rounds, baseline and drop taking turns: other load only ever slows a run down. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
/** Drop MB/s over plain /stream/ MB/s, both ends online. */
const TARGET_RATIO = 0.6;
const RSS_SAMPLE_MS = 100;
/** What bench/side-usage.mjs writes to each side's stderr at its exit. */
const RSS_MARK = 'BENCH_MAXRSS_KIB=';
const CPU_MARK = 'BENCH_CPU_MS=';
/** The sides run as users run them: the built CLI (`npm run build` first), and the baseline on the built client. */
const CLI = join(ROOT, 'dist', 'src', 'cli.js');
const STREAM_SIDE = join(ROOT, 'bench', 'stream-side.mjs');
const SIDE_USAGE = join(ROOT, 'bench', 'side-usage.mjs');
/** With BENCH_CPU_PROF=<dir>, the relay and the drop's two ends write CPU profiles there; their top entries are printed. */
const PROFILE_DIR = process.env.BENCH_CPU_PROF;
const profileArgs = (name: string): string[] =>
  PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${join(PROFILE_DIR, name)}`] : [];

// ---- the relay's child mode: `tsx bench/drop.ts relay` ----

/** The relay under test: SQLite with its default blob limits (1 MiB, 64 MiB per key pair), rate limits off, and /rss. */
async function serveRelay(): Promise<void> {
  const env = { ...process.env, DEADROP_RATE_LIMIT: '0', DEADROP_WRITE_BUDGET: '0', DEADROP_STORE: 'sqlite' };
  const config = loadConfig(env);
  const logger = pino({ level: 'silent' });
  const backend = await openBackend(config, logger);
  const { app } = composeRelay({ config, backend, secret: config.secret as string, logger });
  const outer = express();
  outer.set('etag', false);
  outer.get('/rss', (_req, res) => {
    res.json({ rss: process.memoryUsage.rss() });
  });
  outer.locals.pipes = app.locals.pipes;
  outer.use(app);
  createServer({ requestTimeout: 0 }, outer).listen(Number(process.env.PORT), '127.0.0.1');
  // An exit of its own, so that --cpu-prof writes the profile.
  process.once('SIGTERM', () => process.exit(0));
}

// ---- the benchmark ----

/** What one side's process used: its peak RSS and its CPU time (user + system). */
interface Usage {
  maxRssKib: number;
  cpuMs: number;
}

interface Run {
  seconds: number;
  sides: [Usage, Usage];
  relayCpuMs: number;
}

/** The ends still running, stopped when the benchmark ends early (a failure, Ctrl-C). */
const runningSides = new Set<ChildProcess>();

/** `node <args>` as a process; resolves with its stdout's first line as soon as there is one. */
function startSide(args: string[], profileAs?: string) {
  const node = [...(profileAs ? profileArgs(profileAs) : []), '--import', SIDE_USAGE];
  const child: ChildProcess = spawn(process.execPath, [...node, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  runningSides.add(child);
  child.once('exit', () => runningSides.delete(child));
  let stdout = '';
  let stderr = '';
  const firstLine = new Promise<string>((resolve) => {
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      if (stdout.includes('\n')) resolve(stdout.split('\n')[0] as string);
    });
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const done = new Promise<Usage>((resolve, reject) => {
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`${args.join(' ')} failed (${code}): ${stderr.slice(-2000)}`));
      const mark = (name: string) => Number(new RegExp(`${name}(\\d+)`).exec(stderr)?.[1] ?? 0);
      resolve({ maxRssKib: mark(RSS_MARK), cpuMs: mark(CPU_MARK) });
    });
  });
  return { firstLine, done };
}

async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

async function writeRandomFile(path: string, bytes: number): Promise<void> {
  let left = bytes;
  await pipeline(
    (async function* () {
      while (left > 0) {
        const piece = randomBytes(Math.min(MIB, left));
        left -= piece.length;
        yield piece;
      }
    })(),
    createWriteStream(path),
  );
}

/** Samples the relay's RSS while `work` runs; answers `work`'s result and the highest RSS seen. */
async function withRelayRss<T>(url: string, work: () => Promise<T>): Promise<[T, number]> {
  let peak = 0;
  let sampling = true;
  const loop = (async () => {
    while (sampling) {
      const { rss } = (await (await fetch(`${url}/rss`)).json()) as { rss: number };
      peak = Math.max(peak, rss);
      await new Promise((resolve) => setTimeout(resolve, RSS_SAMPLE_MS));
    }
  })();
  try {
    return [await work(), peak];
  } finally {
    sampling = false;
    await loop;
  }
}

/** The file through /stream/: sender and receiver start together; timed from their spawn to both exits. */
async function streamRun(relay: Child, source: string, received: string): Promise<Run> {
  const pair = (await (await fetch(`${relay.url}/keys`)).json()) as { private: string; public: string };
  const relayCpu = await relay.cpuMs();
  const started = performance.now();
  const sender = startSide([STREAM_SIDE, 'send', relay.url, source, pair.private]);
  const receiver = startSide([STREAM_SIDE, 'get', relay.url, received, pair.public]);
  const sides = await Promise.all([sender.done, receiver.done]);
  const seconds = (performance.now() - started) / 1000;
  return { seconds, sides, relayCpuMs: (await relay.cpuMs()) - relayCpu };
}

/** The drop: `drop send` prints its link first, `drop get` starts on it; timed from the send's spawn to both exits. */
async function dropRun(relay: Child, source: string, received: string): Promise<Run> {
  const relayCpu = await relay.cpuMs();
  const started = performance.now();
  const sender = startSide([CLI, 'drop', 'send', source, '--relay', relay.url], 'sender');
  const link = await Promise.race([sender.firstLine, sender.done.then(() => '')]);
  const receiver = startSide([CLI, 'drop', 'get', link, '-o', received], 'receiver');
  const sides = await Promise.all([sender.done, receiver.done]);
  const seconds = (performance.now() - started) / 1000;
  return { seconds, sides, relayCpuMs: (await relay.cpuMs()) - relayCpu };
}

const mb = (bytes: number, seconds: number) => bytes / 1e6 / seconds;
const mib = (kib: number) => (kib / 1024).toFixed(0);
/** CPU ms per MiB moved, the lowest of the rounds. */
const perMib = (ms: number) => (ms / (FILE_BYTES / MIB)).toFixed(1);

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'deadrop-bench-drop-'));
  try {
    const source = join(work, 'source.bin');
    const received = join(work, 'received.bin');
    console.log(`Building the CLI, writing a ${FILE_BYTES / MIB} MiB random file…`);
    await promisify(execFile)('npm', ['run', 'build'], { cwd: ROOT });
    await writeRandomFile(source, FILE_BYTES);
    const expected = await fileSha256(source);
    const relay = await startChild(
      'relay',
      [...profileArgs('relay'), '--import', 'tsx', SELF, 'relay'],
      { DEADROP_DATA_DIR: join(work, 'data'), DEADROP_SECRET: randomBytes(24).toString('base64url') },
      '/rss',
      ROOT,
    );

    const best = { stream: 0, drop: 0 };
    const rss = { streamSend: 0, streamGet: 0, dropSend: 0, dropGet: 0, relayStream: 0, relayDrop: 0 };
    const cpu = {
      streamSend: Infinity,
      streamGet: Infinity,
      streamRelay: Infinity,
      dropSend: Infinity,
      dropGet: Infinity,
      dropRelay: Infinity,
    };
    for (let round = 1; round <= ROUNDS; round++) {
      console.log(`Round ${round}/${ROUNDS}: /stream/, then the drop…`);
      const [plain, relayPlain] = await withRelayRss(relay.url, () => streamRun(relay, source, received));
      if ((await fileSha256(received)) !== expected) throw new Error('/stream/: the bytes differ');
      await rm(received);
      const [drop, relayDrop] = await withRelayRss(relay.url, () => dropRun(relay, source, received));
      if ((await fileSha256(received)) !== expected) throw new Error('drop: the bytes differ');
      await rm(received);
      best.stream = Math.max(best.stream, mb(FILE_BYTES, plain.seconds));
      best.drop = Math.max(best.drop, mb(FILE_BYTES, drop.seconds));
      rss.streamSend = Math.max(rss.streamSend, plain.sides[0].maxRssKib);
      rss.streamGet = Math.max(rss.streamGet, plain.sides[1].maxRssKib);
      rss.dropSend = Math.max(rss.dropSend, drop.sides[0].maxRssKib);
      rss.dropGet = Math.max(rss.dropGet, drop.sides[1].maxRssKib);
      cpu.streamSend = Math.min(cpu.streamSend, plain.sides[0].cpuMs);
      cpu.streamGet = Math.min(cpu.streamGet, plain.sides[1].cpuMs);
      cpu.streamRelay = Math.min(cpu.streamRelay, plain.relayCpuMs);
      cpu.dropSend = Math.min(cpu.dropSend, drop.sides[0].cpuMs);
      cpu.dropGet = Math.min(cpu.dropGet, drop.sides[1].cpuMs);
      cpu.dropRelay = Math.min(cpu.dropRelay, drop.relayCpuMs);
      rss.relayStream = Math.max(rss.relayStream, relayPlain / 1024);
      rss.relayDrop = Math.max(rss.relayDrop, relayDrop / 1024);
      console.log(
        `  /stream/ ${mb(FILE_BYTES, plain.seconds).toFixed(0)} MB/s, drop ${mb(FILE_BYTES, drop.seconds).toFixed(0)} MB/s`,
      );
    }

    const ratio = best.drop / best.stream;
    const size = `${FILE_BYTES / MIB} MiB`;
    printTable(
      ['measure', '/stream/', 'drop (CLI)', 'ratio', 'target', 'verdict'],
      [
        [
          `${size}, both ends online, MB/s (best of ${ROUNDS})`,
          best.stream.toFixed(0),
          best.drop.toFixed(0),
          ratio.toFixed(3),
          `≥ ${TARGET_RATIO}`,
          ratio >= TARGET_RATIO ? 'PASS' : 'BELOW',
        ],
        ['peak RSS of the sender, MiB', mib(rss.streamSend), mib(rss.dropSend), '-', '-', '-'],
        ['peak RSS of the receiver, MiB', mib(rss.streamGet), mib(rss.dropGet), '-', '-', '-'],
        ['peak RSS of the relay, MiB', mib(rss.relayStream), mib(rss.relayDrop), '-', '-', '-'],
        ['CPU ms per MiB, sender', perMib(cpu.streamSend), perMib(cpu.dropSend), '-', '-', '-'],
        ['CPU ms per MiB, receiver', perMib(cpu.streamGet), perMib(cpu.dropGet), '-', '-', '-'],
        ['CPU ms per MiB, relay', perMib(cpu.streamRelay), perMib(cpu.dropRelay), '-', '-', '-'],
        [
          'CPU ms per MiB, all three',
          perMib(cpu.streamSend + cpu.streamGet + cpu.streamRelay),
          perMib(cpu.dropSend + cpu.dropGet + cpu.dropRelay),
          '-',
          '-',
          '-',
        ],
      ],
    );
    console.log(
      '  Both ends are processes timed from spawn to exit: the built CLI (dist/, as users run it) and, for /stream/, the built client; through one relay on SQLite with ' +
        'its default blob limits and rate limits off. The drop seals (XChaCha20-Poly1305), hashes (SHA-256), stores ' +
        'each 1 MiB chunk and verifies it on the way out; /stream/ passes the bytes through as they are.',
    );
    const env = ['BENCH_DROP_MIB', 'BENCH_ROUNDS', 'BENCH_CPU_PROF']
      .filter((name) => process.env[name])
      .map((name) => `${name}=${process.env[name]} `)
      .join('');
    console.log(`Rerun: cd ${ROOT} && ${env}npm run bench:drop`);
    if (PROFILE_DIR) {
      await relay.stop();
      // Each end wrote profiles per round (the largest, a main thread, is shown); the relay one for the whole run.
      for (const name of ['sender', 'receiver', 'relay']) {
        const profile = await mainProfileIn(join(PROFILE_DIR, name));
        if (!profile) continue;
        console.log(`\nTop self time, ${name} (${profile}):`);
        for (const line of topEntries(profile, 14)) console.log(`  ${line}`);
      }
    }
  } finally {
    for (const side of runningSides) side.kill('SIGKILL');
    await stopAllChildren();
    await rm(work, { recursive: true, force: true });
  }
}

const [mode] = process.argv.slice(2);
try {
  if (mode === 'relay') await serveRelay();
  else await main();
} catch (error) {
  console.error(`bench:drop failed: ${error instanceof Error ? error.message : error}`);
  process.exitCode = 1;
}
