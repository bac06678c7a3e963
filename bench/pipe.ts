// `npm run bench:pipe`: a 1 GiB stream and 1 KiB transfers through the pipe router, against a bare req.pipe(res) relay.
import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Agent, type Dispatcher, request } from 'undici';
import { createKeyring } from '../src/keys.js';
import { type Child, startChild, stopAllChildren } from './children.js';
import { printTable } from './table.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const MIB = 1024 * 1024;
const STREAM_BYTES = 1024 * MIB;
const WARMUP_BYTES = 64 * MIB;
/**
 * Every measure runs this many rounds, baseline and relay taking turns, and the best of each counts: other
 * load on the machine only ever slows a run down, and taking turns spreads it over both.
 */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const PAIRS = 20;
const TRANSFER_BYTES = 1024;
const DURATION_S = Number(process.env.BENCH_DURATION ?? 5);
const RSS_SAMPLE_MS = 100;
/** Relay MB/s over baseline MB/s, relay RSS growth, and relay transfers/s over baseline transfers/s. */
const TARGET_STREAM_RATIO = 0.9;
const TARGET_RSS_GROWTH_MIB = 64;
const TARGET_TRANSFER_RATIO = 0.5;
/** The whole run is cut after this, so that a stuck relay cannot hang the benchmark. */
const LIMIT_MS = 300_000;

const deadline = AbortSignal.timeout(LIMIT_MS);
// Every request listens to the one deadline.
setMaxListeners(0, deadline);
const dispatcher = new Agent({ keepAliveTimeout: 10_000 });
// RSS is sampled on its own connections, so that sampling never waits behind the stream.
const sampler = new Agent({ keepAliveTimeout: 10_000 });
const CHUNK = randomBytes(64 * 1024);
const PAYLOAD = randomBytes(TRANSFER_BYTES);
const SECRET = randomBytes(24).toString('base64url');

/** `total` bytes of one random 64 KiB chunk over and over: producing them costs the client next to nothing. */
function source(total: number): Readable {
  let left = total;
  return new Readable({
    highWaterMark: CHUNK.length,
    read() {
      if (left <= 0) {
        this.push(null);
        return;
      }
      const chunk = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left);
      left -= chunk.length;
      this.push(chunk);
    },
  });
}

async function call(
  url: string,
  method: Dispatcher.HttpMethod,
  body?: Buffer | Readable,
): Promise<Dispatcher.ResponseData> {
  return request(url, { method, body, dispatcher, signal: deadline });
}

/** Follows /pipe/'s redirect by hand, as curl -L does. */
async function locate(url: string, method: Dispatcher.HttpMethod, body?: Buffer): Promise<string> {
  const { statusCode, headers, body: answer } = await call(url, method, body);
  await answer.dump();
  if (statusCode !== 307) throw new Error(`${method} ${url} answered ${statusCode}, not 307`);
  return String(headers.location);
}

/** Both sides at once, the receiver counting what it gets; returns the bytes received. */
async function transfer(receiverUrl: string, senderUrl: string, body: Buffer | Readable): Promise<number> {
  const receiving = call(receiverUrl, 'GET').then(async ({ statusCode, body: stream }) => {
    let received = 0;
    for await (const chunk of stream) received += (chunk as Buffer).length;
    if (statusCode !== 200) throw new Error(`the receiver got ${statusCode}`);
    return received;
  });
  const sending = call(senderUrl, 'POST', body).then(async ({ statusCode, body: answer }) => {
    await answer.dump();
    if (statusCode !== 200) throw new Error(`the sender got ${statusCode}`);
  });
  const [received] = await Promise.all([receiving, sending]);
  return received;
}

interface Relay {
  name: string;
  child: Child;
  /** Where the receiver and the sender of one fresh transfer go (the relay hands them out at /pipe/). */
  endpoints(pair: number): Promise<[receiver: string, sender: string]>;
}

async function rss(child: Child): Promise<number> {
  const { body } = await request(`${child.url}/rss`, { dispatcher: sampler, signal: deadline });
  return ((await body.json()) as { rss: number }).rss;
}

/** MB/s of one stream of `bytes`, and the highest RSS of the relay's process while it ran. */
async function measureStream(relay: Relay, bytes: number): Promise<{ mbPerSec: number; peakRss: number }> {
  let peak = 0;
  let sampling = true;
  const sampleLoop = (async () => {
    while (sampling) {
      peak = Math.max(peak, await rss(relay.child));
      await new Promise((resolve) => setTimeout(resolve, RSS_SAMPLE_MS));
    }
  })();
  try {
    const [receiverUrl, senderUrl] = await relay.endpoints(0);
    const started = performance.now();
    const received = await transfer(receiverUrl, senderUrl, source(bytes));
    const seconds = (performance.now() - started) / 1000;
    if (received !== bytes) throw new Error(`${relay.name}: ${received} bytes arrived of ${bytes}`);
    return { mbPerSec: bytes / 1e6 / seconds, peakRss: peak };
  } finally {
    sampling = false;
    await sampleLoop;
  }
}

/** Completed 1 KiB transfers per second over `seconds`, `PAIRS` pairs at a time. */
async function measureTransfers(relay: Relay, seconds: number): Promise<{ perSec: number; errors: number }> {
  const stopAt = performance.now() + seconds * 1000;
  let done = 0;
  let errors = 0;
  await Promise.all(
    Array.from({ length: PAIRS }, async (_, pair) => {
      while (performance.now() < stopAt) {
        try {
          const [receiverUrl, senderUrl] = await relay.endpoints(pair);
          if ((await transfer(receiverUrl, senderUrl, PAYLOAD)) !== TRANSFER_BYTES) throw new Error('short');
          done++;
        } catch (error) {
          if (deadline.aborted) throw error;
          errors++;
        }
      }
    }),
  );
  return { perSec: done / seconds, errors };
}

const mib = (bytes: number) => bytes / MIB;

const HEADER = ['measure', 'baseline', 'relay', 'ratio', 'target', 'verdict'];

async function main(): Promise<void> {
  const tsx = ['--import', 'tsx'];
  const baselineChild = await startChild(
    'baseline',
    [...tsx, join(ROOT, 'bench/pipe-baseline.ts')],
    {},
    '/rss',
    ROOT,
  );
  const relayChild = await startChild(
    'relay',
    [...tsx, join(ROOT, 'bench/pipe-server.ts')],
    { BENCH_SECRET: SECRET },
    '/rss',
    ROOT,
  );
  const keyring = createKeyring(SECRET);
  const keyPairs = Array.from({ length: PAIRS }, () => keyring.issue());
  const baseline: Relay = {
    name: 'req.pipe(res)',
    child: baselineChild,
    endpoints: async () => {
      const url = `${baselineChild.url}/stream/${randomBytes(16).toString('base64url')}`;
      return [url, url];
    },
  };
  const relay: Relay = {
    name: 'relay',
    child: relayChild,
    endpoints: async (pair) => {
      const keys = keyPairs[pair] as { private: string; public: string };
      const pipe = `${relayChild.url}/pipe/`;
      return Promise.all([locate(pipe + keys.private, 'GET'), locate(pipe + keys.public, 'POST', PAYLOAD)]);
    },
  };

  console.log(`Warming up both relays (${mib(WARMUP_BYTES)} MiB stream, 1 s of 1 KiB transfers)…`);
  for (const target of [baseline, relay]) {
    await measureStream(target, WARMUP_BYTES);
    await measureTransfers(target, 1);
  }
  const rssBefore = { baseline: await rss(baselineChild), relay: await rss(relayChild) };

  const best = { baseMbPerSec: 0, relayMbPerSec: 0, basePerSec: 0, relayPerSec: 0 };
  const peakRss = { baseline: 0, relay: 0 };
  const failed = { baseline: 0, relay: 0 };
  for (let round = 1; round <= ROUNDS; round++) {
    console.log(`Round ${round}/${ROUNDS}: a ${mib(STREAM_BYTES)} MiB stream through each…`);
    const baseStream = await measureStream(baseline, STREAM_BYTES);
    const relayStream = await measureStream(relay, STREAM_BYTES);
    best.baseMbPerSec = Math.max(best.baseMbPerSec, baseStream.mbPerSec);
    best.relayMbPerSec = Math.max(best.relayMbPerSec, relayStream.mbPerSec);
    peakRss.baseline = Math.max(peakRss.baseline, baseStream.peakRss);
    peakRss.relay = Math.max(peakRss.relay, relayStream.peakRss);

    console.log(
      `Round ${round}/${ROUNDS}: ${TRANSFER_BYTES} B transfers, ${PAIRS} pairs, ${DURATION_S} s each…`,
    );
    const baseTransfers = await measureTransfers(baseline, DURATION_S);
    const relayTransfers = await measureTransfers(relay, DURATION_S);
    best.basePerSec = Math.max(best.basePerSec, baseTransfers.perSec);
    best.relayPerSec = Math.max(best.relayPerSec, relayTransfers.perSec);
    failed.baseline += baseTransfers.errors;
    failed.relay += relayTransfers.errors;
  }

  const streamRatio = best.relayMbPerSec / best.baseMbPerSec;
  const baseGrowth = mib(peakRss.baseline - rssBefore.baseline);
  const relayGrowth = mib(peakRss.relay - rssBefore.relay);
  const transferRatio = best.relayPerSec / best.basePerSec;
  const verdict = (pass: boolean) => (pass ? 'PASS' : 'BELOW');
  printTable(HEADER, [
    [
      `1 GiB stream, MB/s (best of ${ROUNDS})`,
      best.baseMbPerSec.toFixed(0),
      best.relayMbPerSec.toFixed(0),
      streamRatio.toFixed(3),
      `≥ ${TARGET_STREAM_RATIO}`,
      verdict(streamRatio >= TARGET_STREAM_RATIO),
    ],
    [
      'RSS growth in the streams, MiB',
      baseGrowth.toFixed(1),
      relayGrowth.toFixed(1),
      '-',
      `< ${TARGET_RSS_GROWTH_MIB}`,
      verdict(relayGrowth < TARGET_RSS_GROWTH_MIB),
    ],
    [
      `1 KiB transfers/s, ${PAIRS} pairs (best of ${ROUNDS})`,
      best.basePerSec.toFixed(0),
      best.relayPerSec.toFixed(0),
      transferRatio.toFixed(3),
      `≥ ${TARGET_TRANSFER_RATIO}`,
      verdict(transferRatio >= TARGET_TRANSFER_RATIO),
    ],
  ]);
  console.log(
    `  relay: the pipe router alone on Express 5 (memory registry); each transfer is /pipe/ (307) then ` +
      `/stream/ for both sides, 4 requests against the baseline's 2. Failed transfers: baseline ` +
      `${failed.baseline}, relay ${failed.relay}.`,
  );
  const durationEnv =
    (process.env.BENCH_DURATION ? `BENCH_DURATION=${DURATION_S} ` : '') +
    (process.env.BENCH_ROUNDS ? `BENCH_ROUNDS=${ROUNDS} ` : '');
  console.log(`Rerun: cd ${ROOT} && ${durationEnv}npm run bench:pipe`);
}

try {
  await main();
} catch (error) {
  console.error(`bench:pipe failed: ${error instanceof Error ? error.message : error}`);
  process.exitCode = 1;
} finally {
  await stopAllChildren();
  await Promise.all([dispatcher.close(), sampler.close()]);
}
