// `npm run bench:drop`: a 256 MiB drop sent and fetched by the CLI, against plain one-to-one POST/GET of the same chunks.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { pino } from 'pino';
import { DROP_CHUNK_SIZE } from '../sdk/drop.js';
import { openBackend } from '../src/backend/open-backend.js';
import { composeRelay } from '../src/compose.js';
import { loadConfig } from '../src/config.js';
import { runDropCommand } from '../src/drop/cli.js';
import { startChild, stopAllChildren } from './children.js';
import { printTable } from './table.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const SELF = fileURLToPath(import.meta.url);
const MIB = 1024 * 1024;
const FILE_BYTES = Number(process.env.BENCH_DROP_MIB ?? 256) * MIB;
/** Best of this many rounds, baseline and drop taking turns: other load only ever slows a run down. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** Chunks in flight each way, as the drop SDK keeps them. */
const WINDOW = 4;
/** Drop MB/s over plain one-to-one MB/s, send and fetch together. */
const TARGET_RATIO = 0.8;
const RSS_SAMPLE_MS = 100;
const BLOB_LIMIT = MIB;
const RSS_MARK = 'BENCH_MAXRSS_KIB=';

// ---- child modes: `tsx bench/drop.ts relay|cli|baseline …` ----

/** The relay under test: SQLite, rate limits off, the blob limits of the bench, and /rss. */
async function serveRelay(): Promise<void> {
  const env = {
    ...process.env,
    DEADROP_RATE_LIMIT: '0',
    LOG_LEVEL: 'silent',
    DEADROP_STORE: 'sqlite',
    DEADROP_BLOB_LIMIT: String(BLOB_LIMIT),
  };
  const config = loadConfig(env);
  const logger = pino({ level: 'silent' });
  const backend = await openBackend(config, logger);
  const { app } = composeRelay({ config, backend, secret: config.secret as string, logger });
  const outer = express();
  outer.set('etag', false);
  outer.get('/rss', (_req, res) => {
    res.json({ rss: process.memoryUsage.rss() });
  });
  outer.use(app);
  createServer({ requestTimeout: 0 }, outer).listen(Number(process.env.PORT), '127.0.0.1');
}

/** Keeps at most WINDOW requests in flight; resolves when all are done. */
async function windowed(count: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: WINDOW }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

/** The baseline: the same chunks as plain octet-stream one-to-one fields, read from and written to files. */
async function baseline(args: string[]): Promise<number> {
  const [command, relay, path, keys] = args as [string, string, string, string];
  const chunks = Math.max(1, Math.ceil(FILE_BYTES / DROP_CHUNK_SIZE));
  if (command === 'send') {
    const pair = (await (await fetch(`${relay}/keys`)).json()) as { private: string; public: string };
    const file = await open(path);
    await windowed(chunks, async (index) => {
      const start = index * DROP_CHUNK_SIZE;
      const buffer = Buffer.alloc(Math.min(DROP_CHUNK_SIZE, FILE_BYTES - start));
      await file.read(buffer, 0, buffer.length, start);
      const res = await fetch(`${relay}/private/${pair.private}/c${index}`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: buffer,
      });
      if (!res.ok) throw new Error(`POST chunk ${index}: ${res.status} ${await res.text()}`);
      await res.arrayBuffer();
    });
    await file.close();
    process.stdout.write(`${pair.public}\n`);
  } else {
    const file = await open(path, 'w');
    await windowed(chunks, async (index) => {
      const res = await fetch(`${relay}/public/${keys}/c${index}`);
      if (!res.ok) throw new Error(`GET chunk ${index}: ${res.status}`);
      await file.write(new Uint8Array(await res.arrayBuffer()), 0, undefined, index * DROP_CHUNK_SIZE);
    });
    await file.close();
  }
  return 0;
}

// ---- the benchmark ----

interface Run {
  seconds: number;
  stdout: string;
  maxRssKib: number;
}

/** Runs `tsx bench/drop.ts <args>` and times it from spawn to exit, as a user would see it. */
function runChild(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', SELF, ...args],
      { cwd: ROOT, env: { ...process.env, ...env }, maxBuffer: 16 * MIB },
      (error, stdout, stderr) => {
        const seconds = (performance.now() - started) / 1000;
        if (error) return reject(new Error(`${args.join(' ')} failed: ${stderr || error.message}`));
        const maxRssKib = Number(new RegExp(`${RSS_MARK}(\\d+)`).exec(stderr)?.[1] ?? 0);
        resolve({ seconds, stdout: stdout.trim(), maxRssKib });
      },
    );
  });
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

/** Samples the relay's RSS while `work` runs; answers the highest seen. */
async function peakRelayRss(url: string, work: () => Promise<void>): Promise<number> {
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
    await work();
  } finally {
    sampling = false;
    await loop;
  }
  return peak;
}

const mb = (bytes: number, seconds: number) => bytes / 1e6 / seconds;
const mib = (kib: number) => (kib / 1024).toFixed(0);

const HEADER = ['measure', 'plain POST/GET', 'drop (CLI)', 'ratio', 'target', 'verdict'];

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'deadrop-bench-drop-'));
  try {
    const source = join(work, 'source.bin');
    const received = join(work, 'received.bin');
    console.log(`Writing a ${FILE_BYTES / MIB} MiB random file…`);
    await writeRandomFile(source, FILE_BYTES);
    const expected = await fileSha256(source);
    const relay = await startChild(
      'relay',
      ['--import', 'tsx', SELF, 'relay'],
      {
        DEADROP_DATA_DIR: join(work, 'data'),
        DEADROP_SECRET: randomBytes(24).toString('base64url'),
        // One drop must fit in one key pair: the default 64 MiB quota is for everyday relays.
        DEADROP_KEY_QUOTA: String(FILE_BYTES * 2),
        DEADROP_MAX_FIELDS: String(Math.max(1000, Math.ceil(FILE_BYTES / DROP_CHUNK_SIZE) + 1)),
      },
      '/rss',
      ROOT,
    );

    const best = { plainSend: 0, plainGet: 0, plainBoth: 0, dropSend: 0, dropGet: 0, dropBoth: 0 };
    const rss = { plain: 0, dropSend: 0, dropGet: 0, relay: 0 };
    for (let round = 1; round <= ROUNDS; round++) {
      console.log(`Round ${round}/${ROUNDS}: plain one-to-one, then the drop…`);
      const relayPeak = await peakRelayRss(relay.url, async () => {
        const sent = await runChild(['baseline', 'send', relay.url, source]);
        const got = await runChild(['baseline', 'get', relay.url, received, sent.stdout]);
        if ((await fileSha256(received)) !== expected) throw new Error('plain: the bytes differ');
        best.plainSend = Math.max(best.plainSend, mb(FILE_BYTES, sent.seconds));
        best.plainGet = Math.max(best.plainGet, mb(FILE_BYTES, got.seconds));
        best.plainBoth = Math.max(best.plainBoth, mb(FILE_BYTES, sent.seconds + got.seconds));
        rss.plain = Math.max(rss.plain, sent.maxRssKib, got.maxRssKib);
        await rm(received);

        const dropSent = await runChild(['cli', 'send', source, '--relay', relay.url]);
        const dropGot = await runChild(['cli', 'get', dropSent.stdout, '-o', received]);
        if ((await fileSha256(received)) !== expected) throw new Error('drop: the bytes differ');
        best.dropSend = Math.max(best.dropSend, mb(FILE_BYTES, dropSent.seconds));
        best.dropGet = Math.max(best.dropGet, mb(FILE_BYTES, dropGot.seconds));
        best.dropBoth = Math.max(best.dropBoth, mb(FILE_BYTES, dropSent.seconds + dropGot.seconds));
        rss.dropSend = Math.max(rss.dropSend, dropSent.maxRssKib);
        rss.dropGet = Math.max(rss.dropGet, dropGot.maxRssKib);
        await rm(received);
      });
      rss.relay = Math.max(rss.relay, relayPeak / 1024);
    }

    const ratio = best.dropBoth / best.plainBoth;
    const size = `${FILE_BYTES / MIB} MiB`;
    printTable(HEADER, [
      [
        `${size} send, MB/s`,
        best.plainSend.toFixed(0),
        best.dropSend.toFixed(0),
        (best.dropSend / best.plainSend).toFixed(3),
        '-',
        '-',
      ],
      [
        `${size} fetch, MB/s`,
        best.plainGet.toFixed(0),
        best.dropGet.toFixed(0),
        (best.dropGet / best.plainGet).toFixed(3),
        '-',
        '-',
      ],
      [
        `${size} send + fetch, MB/s (best of ${ROUNDS})`,
        best.plainBoth.toFixed(0),
        best.dropBoth.toFixed(0),
        ratio.toFixed(3),
        `≥ ${TARGET_RATIO}`,
        ratio >= TARGET_RATIO ? 'PASS' : 'BELOW',
      ],
      ['peak RSS of the client, send, MiB', mib(rss.plain), mib(rss.dropSend), '-', '-', '-'],
      ['peak RSS of the client, fetch, MiB', mib(rss.plain), mib(rss.dropGet), '-', '-', '-'],
      ['peak RSS of the relay, MiB', mib(rss.relay), '(same process)', '-', '-', '-'],
    ]);
    console.log(
      `  Both sides are processes timed from spawn to exit (tsx start-up included), ${DROP_CHUNK_SIZE}-byte chunks, ` +
        `${WINDOW} in flight, through one relay on SQLite with rate limits off. The drop encrypts (XChaCha20-Poly1305), ` +
        'hashes (SHA-256) and verifies on Node’s OpenSSL; plain sends the same chunks as they are.',
    );
    console.log(
      `Rerun: cd ${ROOT} && ${process.env.BENCH_DROP_MIB ? `BENCH_DROP_MIB=${FILE_BYTES / MIB} ` : ''}npm run bench:drop`,
    );
  } finally {
    await stopAllChildren();
    await rm(work, { recursive: true, force: true });
  }
}

const [mode, ...rest] = process.argv.slice(2);
const reportRss = () => process.stderr.write(`\n${RSS_MARK}${process.resourceUsage().maxRSS}\n`);
try {
  if (mode === 'relay') await serveRelay();
  else if (mode === 'cli') {
    process.exitCode = await runDropCommand(rest);
    reportRss();
  } else if (mode === 'baseline') {
    process.exitCode = await baseline(rest);
    reportRss();
  } else await main();
} catch (error) {
  console.error(`bench:drop failed: ${error instanceof Error ? error.message : error}`);
  process.exitCode = 1;
}
