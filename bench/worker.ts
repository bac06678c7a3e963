// `npm run bench:worker`: request round trips, downloads and uploads through a worker against plain pipe transfers, and the CLI's start.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once, setMaxListeners } from 'node:events';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { createFrameOpener, createFrameSealer, FRAME_SIZE, generateFrameKey } from '../sdk/e2e/frames.js';
import { toBase64url } from '../sdk/e2e/index.js';
import { nodeSuite } from '../sdk/e2e/native-suite.js';
import { createFileSink, FILE_CHUNK_BYTES } from '../sdk/e2e/node-streams.js';
import { REQUEST_TYPES } from '../sdk/e2e/protocol.js';
import { createClient } from '../sdk/index.js';
import { createNodePipe } from '../src/client/node-pipe.js';
import { downloadFile, uploadFile } from '../src/client/transfers.js';
import { createUserKeyFile, loadUserKeys } from '../src/client/user-keys.js';
import { connectWorker } from '../src/client/worker-client.js';
import { startChild, stopAllChildren } from './children.js';
import { printTable } from './table.js';
import { mainProfileIn, topEntries } from './top-entries.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const SELF = fileURLToPath(import.meta.url);
const MIB = 1024 * 1024;
/** The transfer sizes, in MiB: the issue's 256 MiB and 1 GiB. */
const SIZES_MIB = (process.env.BENCH_MIB ?? '256,1024').split(',').map(Number);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 200);
const WARMUP_REQUESTS = 20;
/** One transfer of each kind first, so that neither is measured while the JIT is still compiling its code. */
const WARMUP_BYTES = 32 * MIB;
/** Baseline and worker take turns this many times per size; the best of each counts, the spread is shown. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** Runs of `deadrop call … fs list` as its own process. */
const CLI_RUNS = Number(process.env.BENCH_CLI_RUNS ?? 7);
/** With BENCH_ONLY=workerDownload,pipeDownload… only those transfers run (to profile one path alone). */
const ONLY = process.env.BENCH_ONLY?.split(',');
/** With BENCH_CPU_PROF=<dir>, every process writes a CPU profile there and the top entries are printed. */
const PROFILE_DIR = process.env.BENCH_CPU_PROF;
/**
 * With BENCH_NODE_FLAGS="--initial-old-space-size=64" (say), every Node process of the run gets those flags: this
 * one (it starts itself again with them), the relay, the worker, the peer, the CLI runs. Baseline and worker are
 * tuned alike, so a runtime setting can be tried without favouring either side.
 */
const NODE_FLAGS = (process.env.BENCH_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
const TARGET_P50_MS = 20;
const TARGET_TRANSFER_RATIO = 0.8;
const TARGET_CLI_OVERHEAD_MS = 300;
/** The whole run is cut after this, so that a stuck child cannot hang the benchmark. */
const LIMIT_MS = 1_200_000;

/** A Writable that drops what it gets, counting it: downloads end in one, on both paths. */
function discard(): Writable & { bytes: number } {
  const sink = new Writable({
    highWaterMark: FILE_CHUNK_BYTES,
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
  const block = randomBytes(8 * MIB);
  for (let left = bytes; left > 0; left -= block.length)
    await handle.write(block.subarray(0, Math.min(left, block.length)));
  await handle.close();
}

/** A child process run to its end, its output kept. */
const runToEnd = promisify(execFile);

/** Bytes sealed, opened and hashed to time the work a sealed transfer adds, best of CIPHER_RUNS. */
const CIPHER_BYTES = 128 * MIB;
const CIPHER_RUNS = 3;
/** The sealed stream opened again and again: what is sealed or opened is dropped, as a transfer drops it. */
const CIPHER_SAMPLE_FRAMES = 16;

/**
 * CPU ms per MB of sealing frames and of opening them (the native suite, frame by frame, as the transfers do)
 * and of hashing plaintext, in this process, with nothing else running in it: the work a sealed transfer adds
 * to a plain one.
 */
function cipherCost(): { seal: number; open: number; hash: number } {
  const key = generateFrameKey(nodeSuite);
  const plain = randomBytes(FRAME_SIZE);
  const frames = CIPHER_BYTES / FRAME_SIZE;
  const sampleSealer = createFrameSealer(key, nodeSuite);
  const sample = [sampleSealer.header];
  for (let frame = 0; frame < CIPHER_SAMPLE_FRAMES; frame++)
    sample.push(...sampleSealer.sealPieces(plain, frame === CIPHER_SAMPLE_FRAMES - 1));
  const cpuOf = (work: () => void) => {
    const before = process.cpuUsage();
    work();
    const { user, system } = process.cpuUsage(before);
    return (user + system) / 1000 / (CIPHER_BYTES / 1e6);
  };
  let best = {
    seal: Number.POSITIVE_INFINITY,
    open: Number.POSITIVE_INFINITY,
    hash: Number.POSITIVE_INFINITY,
  };
  for (let run = 0; run < CIPHER_RUNS; run++) {
    const sealer = createFrameSealer(key, nodeSuite);
    const seal = cpuOf(() => {
      for (let frame = 0; frame < frames; frame++) sealer.sealPieces(plain);
    });
    const open = cpuOf(() => {
      for (let pass = 0; pass < frames / CIPHER_SAMPLE_FRAMES; pass++) {
        const opener = createFrameOpener(key, nodeSuite);
        for (const piece of sample) opener.push(piece);
        opener.finish();
      }
    });
    // An upload's plaintext is also hashed by the worker (SHA-256, as fs-transfer.ts does), a download's is not.
    const hash = cpuOf(() => {
      const sha256 = createHash('sha256');
      for (let frame = 0; frame < frames; frame++) sha256.update(plain);
      sha256.digest();
    });
    best = {
      seal: Math.min(best.seal, seal),
      open: Math.min(best.open, open),
      hash: Math.min(best.hash, hash),
    };
  }
  return best;
}

/**
 * The Node flags of the process `name`: BENCH_NODE_FLAGS, and with BENCH_CPU_PROF a profile folder of its own
 * (tsx's loader thread writes a profile there too).
 */
const nodeArgs = (name: string) => [
  ...NODE_FLAGS,
  ...(PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${join(PROFILE_DIR, name)}`] : []),
];

/**
 * Role "peer": the baseline's other end, in its own process as the worker is. Each stdin line is
 * `send <private key> <file>` (the file raw to /pipe/) or `receive <public key> <file>` (from /pipe/ to the
 * file), through the same pipe code as the worker's; it answers `done` or `failed <reason>`.
 */
async function runPeer(relayUrl: string): Promise<void> {
  const pipe = createNodePipe(relayUrl);
  process.stdin.setEncoding('utf8');
  process.stdout.write('ready\n');
  let pending = '';
  for await (const chunk of process.stdin) {
    pending += chunk;
    for (let at = pending.indexOf('\n'); at >= 0; at = pending.indexOf('\n')) {
      const [verb, key, file] = pending.slice(0, at).split(' ') as [string, string, string];
      pending = pending.slice(at + 1);
      try {
        // With its length, as the worker sends its sealed stream.
        if (verb === 'send') {
          const body = createReadStream(file, { highWaterMark: FILE_CHUNK_BYTES });
          await pipe.send(key, body, undefined, statSync(file).size);
        } else await pipeline(await pipe.receive(key), createFileSink(file));
        process.stdout.write('done\n');
      } catch (error) {
        process.stdout.write(`failed ${(error as Error).message}\n`);
      }
    }
  }
}

const roles = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of roles) child.kill('SIGKILL');
});

/** Starts `node <args>` and resolves once it printed a line matching `ready`; its later lines go to `lines`. */
async function startRole(name: string, args: string[], ready: RegExp) {
  const child = spawn(process.execPath, [...nodeArgs(name), ...args], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
  });
  roles.add(child);
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    stderr = (stderr + text).slice(-4000);
  });
  const lines: string[] = [];
  const waiters: (() => void)[] = [];
  child.stdout?.setEncoding('utf8');
  let out = '';
  // A data listener, not for-await: leaving a for-await loop would destroy stdout under the child.
  child.stdout?.on('data', (text: string) => {
    out += text;
    for (let at = out.indexOf('\n'); at >= 0; at = out.indexOf('\n')) {
      lines.push(out.slice(0, at));
      out = out.slice(at + 1);
      waiters.shift()?.();
    }
  });
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', () => reject(new Error(`${name} ended:\n${stderr}`))),
  );
  exited.catch(() => {});
  /** The next line the role prints. */
  const nextLine = async (): Promise<string> => {
    while (lines.length === 0)
      await Promise.race([new Promise<void>((resolve) => waiters.push(resolve)), exited]);
    return lines.shift() as string;
  };
  const first = await nextLine();
  if (!ready.test(first)) throw new Error(`${name} said "${first}" first:\n${stderr}`);
  return { child, first, nextLine };
}

/** CPU time a process has used so far, user and system, in ms (Linux's /proc/<pid>/stat, 100 ticks a second). */
function cpuMs(pid: number): number {
  if (pid === process.pid) {
    const usage = process.cpuUsage();
    return (usage.user + usage.system) / 1000;
  }
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** The peak resident memory of a process so far, in MiB (Linux's VmHWM). */
function peakRssMib(pid: number): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : Number.NaN;
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
const median = (values: number[]) =>
  percentile(
    [...values].sort((a, b) => a - b),
    0.5,
  );
const spread = (values: number[]) => `${Math.min(...values).toFixed(0)}–${Math.max(...values).toFixed(0)}`;

const HEADER = ['measure', 'baseline', 'worker', 'ratio', 'target', 'verdict'];

async function main(): Promise<void> {
  const deadline = AbortSignal.timeout(LIMIT_MS);
  setMaxListeners(0, deadline);
  const dir = await mkdtemp(join(tmpdir(), 'deadrop-bench-worker-'));
  try {
    if (PROFILE_DIR) await mkdir(PROFILE_DIR, { recursive: true });
    console.log(
      `Writing ${SIZES_MIB.join(' and ')} MiB files and starting a relay, a worker and a peer (127.0.0.1)…`,
    );
    await mkdir(join(dir, 'files'));
    await mkdir(join(dir, 'uploads'));
    for (const size of SIZES_MIB) await writeRandomFile(join(dir, 'files', `${size}.bin`), size * MIB);
    await writeRandomFile(join(dir, 'files', 'warmup.bin'), WARMUP_BYTES);
    await writeFile(join(dir, 'files', 'small.txt'), 'small');
    const relayChild = await startChild(
      'relay',
      [...nodeArgs('relay'), '--import', 'tsx', 'src/cli.ts', 'serve'],
      {
        DEADROP_DATA_DIR: join(dir, 'data'),
        DEADROP_RATE_LIMIT: '0',
        LOG_LEVEL: 'silent',
        HOST: '127.0.0.1',
      },
      '/id',
      ROOT,
    );
    const userFile = join(dir, 'user.json');
    await createUserKeyFile(userFile);
    const user = await loadUserKeys(userFile);
    await writeFile(
      join(dir, 'worker.yml'),
      stringify({
        relay: relayChild.url,
        fingerprint: { level: 8 },
        receivers: {
          fs: {
            roots: { files: './files', uploads: './uploads' },
            operations: ['list', 'stat', 'download', 'upload'],
          },
        },
        auth: [{ name: 'bench', key: toBase64url(user.publicKey), allow: { fs: '*' } }],
      }),
    );
    const worker = await startRole(
      'worker',
      ['--import', 'tsx', 'src/cli.ts', 'worker', '--config', join(dir, 'worker.yml')],
      /^http/,
    );
    const peer = await startRole('peer', ['--import', 'tsx', SELF, 'peer', relayChild.url], /^ready/);
    const address = worker.first.trim();
    const client = await connectWorker(address, { user });
    const relay = createClient(relayChild.url);
    const pipe = createNodePipe(relayChild.url);

    console.log(
      `Round trips: ${WARMUP_REQUESTS} to warm up, then ${REQUESTS} timed (fs stat, one at a time)…`,
    );
    const times: number[] = [];
    for (let n = 0; n < WARMUP_REQUESTS + REQUESTS; n++) {
      const started = performance.now();
      await client.request(REQUEST_TYPES.fs('stat'), { path: '/files/small.txt' }, { signal: deadline });
      if (n >= WARMUP_REQUESTS) times.push(performance.now() - started);
    }
    times.sort((a, b) => a - b);
    const [p50, p99] = [percentile(times, 0.5), percentile(times, 0.99)];

    const mbPerSec = (bytes: number, started: number) => bytes / 1e6 / ((performance.now() - started) / 1000);
    const peerDone = async () => {
      const line = await peer.nextLine();
      if (line !== 'done') throw new Error(`peer: ${line}`);
    };
    const transfers = {
      /** The peer sends the file raw; this process receives it. */
      pipeDownload: async (name: string, bytes: number) => {
        const pair = await relay.keys();
        const started = performance.now();
        peer.child.stdin?.write(`send ${pair.private} ${join(dir, 'files', name)}\n`);
        const sink = discard();
        await pipeline(await pipe.receive(pair.public, deadline), sink);
        await peerDone();
        if (sink.bytes !== bytes) throw new Error(`pipe: ${sink.bytes} bytes arrived`);
        return mbPerSec(bytes, started);
      },
      workerDownload: async (name: string, bytes: number) => {
        const sink = discard();
        const started = performance.now();
        await downloadFile(client, `/files/${name}`, sink, { signal: deadline });
        if (sink.bytes !== bytes) throw new Error(`worker: ${sink.bytes} bytes arrived`);
        return mbPerSec(bytes, started);
      },
      /** This process sends the file raw; the peer receives it into a file. */
      pipeUpload: async (name: string, bytes: number) => {
        const pair = await relay.keys();
        const started = performance.now();
        peer.child.stdin?.write(`receive ${pair.public} ${join(dir, 'uploads', `pipe-${name}`)}\n`);
        await pipe.send(
          pair.private,
          createReadStream(join(dir, 'files', name), { highWaterMark: FILE_CHUNK_BYTES }),
          deadline,
        );
        await peerDone();
        const rate = mbPerSec(bytes, started);
        await rm(join(dir, 'uploads', `pipe-${name}`));
        return rate;
      },
      workerUpload: async (name: string, bytes: number) => {
        const started = performance.now();
        const result = await uploadFile(client, join(dir, 'files', name), `/uploads/${name}`, {
          overwrite: true,
          signal: deadline,
          timeoutSeconds: 600,
        });
        if (result.size !== bytes) throw new Error(`worker: ${result.size} bytes stored`);
        const rate = mbPerSec(bytes, started);
        await rm(join(dir, 'uploads', name));
        return rate;
      },
    };
    type Kind = keyof typeof transfers;

    console.log(`Warming up every path (${WARMUP_BYTES / MIB} MiB each)…`);
    for (const run of Object.values(transfers)) await run('warmup.bin', WARMUP_BYTES);
    const clientProfile = PROFILE_DIR ? await startProfile() : undefined;

    const rows: string[][] = [];
    const memory: string[][] = [];
    const processes = {
      client: process.pid,
      worker: worker.child.pid as number,
      peer: peer.child.pid as number,
      relay: relayChild.pid,
    };
    /** CPU ms per MB of each process, per kind of transfer, summed over the rounds of the largest size. */
    const cpu: Record<string, Record<string, number>> = {};
    for (const size of SIZES_MIB) {
      const rates: Record<Kind, number[]> = {
        pipeDownload: [],
        workerDownload: [],
        pipeUpload: [],
        workerUpload: [],
      };
      for (let round = 1; round <= ROUNDS; round++) {
        console.log(`${size} MiB, round ${round}/${ROUNDS}: download and upload, plain pipe then worker…`);
        for (const kind of (Object.keys(transfers) as Kind[]).filter(
          (name) => !ONLY || ONLY.includes(name),
        )) {
          const before = Object.fromEntries(
            Object.entries(processes).map(([name, pid]) => [name, cpuMs(pid)]),
          );
          rates[kind].push(await transfers[kind](`${size}.bin`, size * MIB));
          cpu[kind] ??= {};
          for (const [name, pid] of Object.entries(processes)) {
            const used = (cpuMs(pid) - (before[name] as number)) / ((size * MIB) / 1e6) / ROUNDS;
            (cpu[kind] as Record<string, number>)[name] =
              (round === 1 ? 0 : ((cpu[kind] as Record<string, number>)[name] ?? 0)) + used;
          }
        }
      }
      for (const [what, base, through] of [
        ['download', rates.pipeDownload, rates.workerDownload],
        ['upload', rates.pipeUpload, rates.workerUpload],
      ] as const) {
        if (base.length === 0 || through.length === 0) continue;
        const ratio = Math.max(...through) / Math.max(...base);
        rows.push([
          `${size} MiB ${what}, MB/s (best of ${ROUNDS}; all)`,
          `${Math.max(...base).toFixed(0)} (${spread(base)})`,
          `${Math.max(...through).toFixed(0)} (${spread(through)})`,
          ratio.toFixed(3),
          `≥ ${TARGET_TRANSFER_RATIO}`,
          ratio >= TARGET_TRANSFER_RATIO ? 'PASS' : 'BELOW',
        ]);
      }
      memory.push([
        `after the ${size} MiB rounds`,
        peakRssMib(process.pid).toFixed(0),
        peakRssMib(worker.child.pid as number).toFixed(0),
        peakRssMib(peer.child.pid as number).toFixed(0),
      ]);
    }

    console.log(
      `The added work alone: ${CIPHER_BYTES / MIB} MiB sealed, opened and hashed in a new process, then in this one…`,
    );
    const cipherArgs = [...NODE_FLAGS, '--import', 'tsx', SELF, 'cipher'];
    const { stdout: freshCost } = await runToEnd(process.execPath, cipherArgs, { cwd: ROOT });
    const ciphers = [
      { where: 'a new process', ...(JSON.parse(freshCost) as ReturnType<typeof cipherCost>) },
      { where: 'this one, after its transfers', ...cipherCost() },
    ];

    console.log(`The CLI: ${CLI_RUNS} runs of "deadrop call <address> fs list" as its own process…`);
    const cli =
      CLI_RUNS > 0 ? await measureCli(address, userFile) : { runs: [0], run: 0, bareNode: 0, overhead: 0 };

    printTable(HEADER, [
      [
        `round trip p50, ms (${REQUESTS} requests)`,
        '-',
        p50.toFixed(1),
        '-',
        `< ${TARGET_P50_MS}`,
        p50 < TARGET_P50_MS ? 'PASS' : 'BELOW',
      ],
      [`round trip p99, ms (${REQUESTS} requests)`, '-', p99.toFixed(1), '-', '-', '-'],
      ...rows,
      [
        `CLI overhead, ms (median of ${CLI_RUNS}: run − its network work)`,
        `node ${cli.bareNode.toFixed(0)}`,
        `${cli.overhead.toFixed(0)} (run ${cli.run.toFixed(0)}, ${spread(cli.runs)})`,
        '-',
        `< ${TARGET_CLI_OVERHEAD_MS}`,
        cli.overhead < TARGET_CLI_OVERHEAD_MS ? 'PASS' : 'BELOW',
      ],
    ]);
    printTable(['peak RSS, MiB (VmHWM)', 'client', 'worker', 'baseline peer'], memory);
    printTable(
      [`CPU ms per MB (${SIZES_MIB.at(-1)} MiB rounds)`, 'client', 'worker', 'peer', 'relay', 'all'],
      Object.entries(cpu).map(([kind, used]) => [
        kind,
        ...Object.values(used).map((ms) => ms.toFixed(2)),
        Object.values(used)
          .reduce((sum, ms) => sum + ms, 0)
          .toFixed(2),
      ]),
    );
    // Both ends share this machine's cores with the relay: a transfer that keeps them busy goes at a rate
    // inverse to the CPU it spends per MB, so the work it must add caps the ratio at plain ÷ (plain + added):
    // sealing and opening, and for an upload the worker's hash. A process that has streamed gigabytes pays
    // more for the same work (its collections cost more).
    const total = (kind: Kind) => Object.values(cpu[kind] ?? {}).reduce((sum, ms) => sum + ms, 0);
    printTable(
      [
        'the added work alone, in',
        'seal ms/MB',
        'open ms/MB',
        'hash ms/MB',
        'plain pipe ms/MB',
        'ratio it allows',
      ],
      (['pipeDownload', 'pipeUpload'] as const)
        .filter((kind) => cpu[kind])
        .flatMap((kind) =>
          ciphers.map(({ where, seal, open, hash }) => {
            const upload = kind === 'pipeUpload';
            const added = seal + open + (upload ? hash : 0);
            return [
              `${where} (${upload ? 'upload' : 'download'})`,
              seal.toFixed(2),
              open.toFixed(2),
              upload ? hash.toFixed(2) : '-',
              total(kind).toFixed(2),
              (total(kind) / (total(kind) + added)).toFixed(3),
            ];
          }),
        ),
    );
    console.log(
      '  round trip: client → relay → worker (long-poll) → relay → client, sealed and signed, on SQLite.\n' +
        '  baseline: the same file raw through /pipe/ between this process and a peer process, by the same pipe\n' +
        '  code as the worker (download: peer → here, into a sink; upload: here → peer, into a file);\n' +
        '  worker: fs download / fs upload, sealed frames, opened on the other side (an upload is also hashed and\n' +
        '  renamed into place). CLI: `node dist/src/cli.js call <address> fs list` (built first), wall time of the\n' +
        '  process less the same descriptor read and request made from this process; "node" is `node -e 0`.',
    );
    const env = [
      'BENCH_MIB',
      'BENCH_REQUESTS',
      'BENCH_ROUNDS',
      'BENCH_CLI_RUNS',
      'BENCH_ONLY',
      'BENCH_CPU_PROF',
      'BENCH_NODE_FLAGS',
    ]
      .filter((name) => process.env[name])
      .map((name) => `${name}=${JSON.stringify(process.env[name])} `)
      .join('');
    console.log(`Rerun: cd ${ROOT} && ${env}npm run bench:worker`);

    if (PROFILE_DIR) {
      await mkdir(join(PROFILE_DIR, 'client'), { recursive: true });
      await writeFile(
        join(PROFILE_DIR, 'client', 'main.cpuprofile'),
        JSON.stringify(await clientProfile?.stop()),
      );
      // The peer ends when its input does; the worker and the relay on SIGTERM: each writes its profile then.
      peer.child.stdin?.end();
      worker.child.kill('SIGTERM');
      await Promise.all([once(peer.child, 'exit'), once(worker.child, 'exit')]);
      await stopAllChildren();
      for (const name of ['client', 'worker', 'peer', 'relay']) {
        // The process's main thread wrote the largest profile; tsx's loader thread a small one.
        const main = await mainProfileIn(join(PROFILE_DIR, name));
        if (!main) continue;
        console.log(`\nTop self time, ${name} (${main}):`);
        for (const line of topEntries(main, 14)) console.log(`  ${line}`);
      }
    }
  } finally {
    for (const child of roles) child.kill('SIGTERM');
    await stopAllChildren();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Profiles this process through the inspector (its children use --cpu-prof); `stop` gives the profile. */
async function startProfile() {
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return {
    async stop() {
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      return profile;
    },
  };
}

/** `deadrop call <address> fs list` as its own process, wall time; and `node -e 0` for comparison. */
async function measureCli(address: string, userFile: string) {
  await runToEnd('npm', ['run', 'build'], { cwd: ROOT });
  const time = async (args: string[]) => {
    const started = performance.now();
    await runToEnd(process.execPath, [...NODE_FLAGS, ...args], { cwd: ROOT });
    return performance.now() - started;
  };
  const runs: number[] = [];
  const bare: number[] = [];
  const inside: number[] = [];
  for (let n = 0; n < CLI_RUNS; n++) {
    bare.push(await time(['-e', '0']));
    runs.push(await time(['dist/src/cli.js', 'call', address, 'fs', 'list', '--key', userFile]));
    // What the CLI does over the network, measured in this process: the descriptor read and the round trip.
    const user = await loadUserKeys(userFile);
    const started = performance.now();
    const client = await connectWorker(address, { user });
    await client.request(REQUEST_TYPES.fs('list'), { path: '/' });
    inside.push(performance.now() - started);
  }
  return {
    runs,
    run: median(runs),
    bareNode: median(bare),
    overhead: median(runs) - median(inside),
  };
}

const [role, ...rest] = process.argv.slice(2);
if (role === 'peer') await runPeer(rest[0] as string);
else if (role === 'cipher') console.log(JSON.stringify(cipherCost()));
else if (NODE_FLAGS.some((flag) => !process.execArgv.includes(flag))) {
  // Started without the flags asked for: run again with them (execArgv keeps tsx's loader), as this process.
  const args = [...NODE_FLAGS, ...process.execArgv, SELF, ...process.argv.slice(2)];
  const again = spawn(process.execPath, args, { stdio: 'inherit' });
  const [code] = await once(again, 'exit');
  process.exitCode = code ?? 1;
} else {
  try {
    await main();
  } catch (error) {
    console.error(`bench:worker failed: ${error instanceof Error ? error.message : error}`);
    process.exitCode = 1;
  }
}
