// `deadrop drop` as users run it: a mistyped link, a fetch killed and resumed, a drop far past the quota with both
// ends running (real processes), a failed upload, and folders.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DROP_CHUNK_SIZE, parseDropLink } from '../sdk/drop.js';
import { runDropCommand } from '../src/drop/cli.js';
import type { DropIo } from '../src/drop/terminal.js';
import { type DropRelay, mistype, openDropRelay } from './drop-relay.js';
import { sleep, waitFor } from './helpers.js';

const MIB = 1_048_576;

let relay: DropRelay;
let work: string;
/** Chunk reads (`c<n>` of `?peek`) the relay served, in order. */
const peeks: string[] = [];
/** Milliseconds each chunk read is held back: a slow link, so that a fetch can be killed halfway. */
let peekDelayMs = 0;

beforeAll(async () => {
  relay = await openDropRelay('sqlite', {
    config: { writeBudget: 2 * 1024 * MIB },
    onRequest: async (req) => {
      const chunk = /\/(c\d+)\?peek/.exec(req.originalUrl)?.[1];
      if (!chunk) return;
      peeks.push(chunk);
      if (peekDelayMs > 0) await sleep(peekDelayMs);
    },
  });
  work = await mkdtemp(join(tmpdir(), 'deadrop-drop-cli-'));
});
afterAll(async () => {
  await relay.close();
  await rm(work, { recursive: true, force: true });
});

const fileHash = async (path: string) => {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
};

/** Runs `deadrop drop <args>` in this process with captured output. */
async function cli(
  args: string[],
  options: { cwd?: string; signal?: AbortSignal; onStdout?: () => void } = {},
) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: string[] = [];
  const err: string[] = [];
  stdout.on('data', (chunk) => {
    out.push(String(chunk));
    options.onStdout?.();
  });
  stderr.on('data', (chunk) => err.push(String(chunk)));
  const io: DropIo = {
    stdin: Readable.from(['']),
    stdout,
    stderr,
    env: { DEADROP_URL: relay.url },
    cwd: options.cwd ?? work,
    ...(options.signal && { signal: options.signal }),
  };
  const code = await runDropCommand(args, io);
  return { code, stdout: out.join(''), stderr: err.join('') };
}

/** `deadrop drop <args>` as its own process (through tsx), as a user runs it. */
function cliProcess(args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'drop', ...args], {
    env: { ...process.env, DEADROP_URL: relay.url },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += String(chunk);
  });
  child.stderr.on('data', (chunk) => {
    stderr += String(chunk);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, stdout: () => stdout, stderr: () => stderr };
}

/** The resident memory of a process, in bytes (Linux). */
async function rssOf(child: ChildProcess): Promise<number> {
  const status = await readFile(`/proc/${child.pid}/status`, 'utf8').catch(() => '');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

describe('deadrop drop get', () => {
  it('with a mistyped link says so and burns nothing; the right link then saves equal bytes', async () => {
    const dir = await mkdtemp(join(work, 'typo-'));
    const bytes = randomBytes(3 * MIB);
    await writeFile(join(dir, 'photo.jpg'), bytes);
    const link = (await cli(['send', 'photo.jpg'], { cwd: dir })).stdout.trim();
    const into = await mkdtemp(join(work, 'typo-get-'));
    const wrong = await cli(['get', mistype(link, 40)], { cwd: into });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('a character of it is wrong');
    expect(wrong.stderr).toContain('Nothing was fetched');
    expect(await readdir(into)).toEqual([]);
    const right = await cli(['get', link], { cwd: into });
    expect(right.code).toBe(0);
    expect((await readFile(join(into, 'photo.jpg'))).equals(bytes)).toBe(true);
    expect(await readdir(into)).toEqual(['photo.jpg']);
  });

  it('killed halfway (a real process, SIGKILL), resumes from its part file: nothing kept is fetched again', async () => {
    const dir = await mkdtemp(join(work, 'resume-'));
    const bytes = randomBytes(24 * DROP_CHUNK_SIZE + 4321);
    await writeFile(join(dir, 'movie.mkv'), bytes);
    const link = (await cli(['send', 'movie.mkv'], { cwd: dir })).stdout.trim();
    const { publicKey } = parseDropLink(link);
    const into = await mkdtemp(join(work, 'resume-get-'));
    const part = join(into, `.deadrop-${publicKey}.part`);

    peekDelayMs = 150;
    try {
      peeks.length = 0;
      const first = cliProcess(['get', link, '-o', into]);
      await waitFor(
        async () => ((await stat(part).catch(() => undefined))?.size ?? 0) >= 8 * DROP_CHUNK_SIZE,
        'a third of the drop saved',
        30_000,
      );
      first.child.kill('SIGKILL');
      await first.exited;
      const keptChunks = Math.floor((await stat(part)).size / DROP_CHUNK_SIZE);
      expect(keptChunks).toBeGreaterThanOrEqual(8);
      expect(keptChunks).toBeLessThan(24);
      expect(await readdir(into)).toEqual(expect.arrayContaining([`.deadrop-${publicKey}.key`]));

      peekDelayMs = 0;
      const before = peeks.length;
      const second = cliProcess(['get', link, '-o', into]);
      expect(await second.exited).toBe(0);
      expect(second.stderr()).toContain('Resuming movie.mkv');
      expect(second.stdout().trim()).toBe(join(into, 'movie.mkv'));
      expect((await readFile(join(into, 'movie.mkv'))).equals(bytes)).toBe(true);
      expect(await readdir(into)).toEqual(['movie.mkv']);
      const again = peeks.slice(before).map((uid) => Number(uid.slice(1)));
      expect(again.length).toBeGreaterThan(0);
      expect(Math.min(...again)).toBeGreaterThanOrEqual(keptChunks);
    } finally {
      peekDelayMs = 0;
    }
  }, 90_000);
});

describe('a drop far larger than the quota, both ends running', () => {
  it('300 MiB through the default 64 MiB room: equal bytes, the sender’s memory flat, the relay never over the quota', async () => {
    const dir = await mkdtemp(join(work, 'large-'));
    const into = await mkdtemp(join(work, 'large-get-'));
    const source = join(dir, 'disk.img');
    const block = randomBytes(MIB);
    await writeFile(
      source,
      Buffer.concat(
        Array.from({ length: 300 }, (_, i) =>
          Buffer.concat([block.subarray(0, 8), Buffer.from(String(i).padStart(8, '0')), block.subarray(16)]),
        ),
      ),
    );

    const sender = cliProcess(['send', source]);
    await waitFor(() => sender.stdout().includes('/drop#'), 'the link', 30_000);
    const link = sender.stdout().trim();
    const { publicKey } = parseDropLink(link);
    // stderr is another pipe: its lines may come a moment after the link on stdout.
    await waitFor(
      () => sender.stderr().includes('keep this running until it says it is done'),
      'the warning',
    );
    const baseline = await rssOf(sender.child);
    let peakRss = baseline;
    let peakHeld = 0;
    const sampling = setInterval(async () => {
      peakRss = Math.max(peakRss, await rssOf(sender.child));
      peakHeld = Math.max(peakHeld, await relay.store.blobBytes(publicKey));
    }, 50);
    try {
      const receiver = cliProcess(['get', link, '-o', into]);
      expect(await receiver.exited).toBe(0);
      expect(await sender.exited).toBe(0);
    } finally {
      clearInterval(sampling);
    }
    expect(await fileHash(join(into, 'disk.img'))).toBe(await fileHash(source));
    expect(sender.stderr()).toContain('Done');
    expect(peakHeld).toBeGreaterThan(32 * MIB);
    expect(peakHeld).toBeLessThanOrEqual(64 * MIB);
    // Flat: what 300 MiB of file adds to the sender is a few chunks in flight, not the file.
    expect(peakRss - baseline).toBeLessThan(80 * MIB);
  }, 180_000);
});

describe('deadrop drop send', () => {
  it('interrupted or failed, withdraws everything it wrote: the link opens nothing', async () => {
    const dir = await mkdtemp(join(work, 'fail-'));
    await writeFile(join(dir, 'big.bin'), randomBytes(40 * MIB));
    const stop = new AbortController();
    const sent = await cli(['send', 'big.bin'], {
      cwd: dir,
      signal: stop.signal,
      onStdout: () => stop.abort(),
    });
    expect(sent.code).toBe(130);
    expect(sent.stderr).toContain(
      'Interrupted; the drop was withdrawn from the relay, so the link no longer opens.',
    );
    const { publicKey } = parseDropLink(sent.stdout.trim());
    expect(await relay.store.readValue(publicKey)).toBeUndefined();
    expect(await relay.store.fieldTtl(publicKey, 'k')).toBe(0);
    expect(await relay.store.blobBytes(publicKey)).toBe(0);
    const got = await cli(['get', sent.stdout.trim()], { cwd: dir });
    expect(got.stderr).toContain('There is no drop at this link');
  });

  it('a folder goes as one tar archive, saved as the archive or unpacked with --extract', async () => {
    const dir = await mkdtemp(join(work, 'folder-'));
    const tree: Record<string, Buffer> = {
      'photos/a.jpg': randomBytes(2 * MIB + 3),
      'photos/trip/b.jpg': randomBytes(1000),
      'photos/trip/deeper/c.txt': Buffer.from('hello'),
      'photos/empty.txt': Buffer.alloc(0),
    };
    for (const [path, bytes] of Object.entries(tree)) {
      await mkdir(join(dir, path, '..'), { recursive: true });
      await writeFile(join(dir, path), bytes);
    }
    const send = await cli(['send', 'photos'], { cwd: dir });
    expect(send.code).toBe(0);
    expect(send.stderr).toContain('photos.tar');

    const into = await mkdtemp(join(work, 'folder-get-'));
    const got = await cli(['get', send.stdout.trim(), '--extract'], { cwd: into });
    expect(got.code).toBe(0);
    expect(got.stdout.trim()).toBe(join(into, 'photos'));
    for (const [path, bytes] of Object.entries(tree))
      expect((await readFile(join(into, path))).equals(bytes)).toBe(true);
    expect(await readdir(into)).toEqual(['photos']);

    const archive = await cli(['send', 'photos'], { cwd: dir });
    const kept = await cli(['get', archive.stdout.trim()], { cwd: into });
    expect(kept.stdout.trim()).toBe(join(into, 'photos.tar'));
    expect((await stat(join(into, 'photos.tar'))).size).toBeGreaterThan(2 * MIB);

    const file = await cli(['send', 'photos/a.jpg'], { cwd: dir });
    const refused = await cli(['get', file.stdout.trim(), '--extract'], { cwd: into });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('a file, not a folder drop');
  });
});
