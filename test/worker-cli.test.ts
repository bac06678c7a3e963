// The three commands src/cli.ts wires: `deadrop worker`, `deadrop call` and `deadrop user`, with their output captured.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createClient } from '../sdk/index.js';
import type { CommandIo } from '../src/client/call-command.js';
import { runCallCommand, runUserCommand, runWorkerCommand } from '../src/worker/cli.js';
import type { RunningWorker } from '../src/worker/worker.js';
import { listen, openTestRelay, type TestRelay, tempDir } from './helpers.js';

/** Output captured as text; `tty` makes stderr look like a terminal. */
function capture(tty = false): CommandIo & { out: () => string; err: () => string } {
  const sink = () => {
    let text = '';
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        text += chunk.toString();
        done();
      },
    });
    return { stream, text: () => text };
  };
  const out = sink();
  const err = sink();
  return {
    stdout: out.stream,
    stderr: Object.assign(err.stream, { isTTY: tty }),
    out: out.text,
    err: err.text,
  };
}

let relay: TestRelay;
let server: { url: string; close: () => Promise<void> };
let dir: string;
let userFile: string;
let configFile: string;
let worker: RunningWorker;
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

beforeAll(async () => {
  relay = await openTestRelay('sqlite');
  server = await listen(relay.app);
  dir = await tempDir();
  await mkdir(join(dir, 'root'));
  await writeFile(join(dir, 'root', 'hello.txt'), 'hello from the worker\n');
  await writeFile(join(dir, 'root', 'blob.bin'), randomBytes(300_000));
  userFile = join(dir, 'user.json');
  const init = capture();
  expect(await runUserCommand(['init', '--key', userFile], init)).toBe(0);
  configFile = join(dir, 'worker.yml');
  await writeFile(
    configFile,
    stringify({
      relay: server.url,
      fingerprint: { level: 4 },
      receivers: {
        fs: { roots: { files: './root' }, operations: ['list', 'find', 'grep', 'download', 'upload'] },
        exec: {
          commands: {
            say: {
              argv: [process.execPath, '-e', 'console.log(process.argv[1]); process.exit(3)', '{what}'],
              params: { what: { enum: ['hi', 'bye'] } },
            },
          },
        },
      },
      auth: [
        {
          name: 'me',
          key: init.out().trim(),
          allow: { fs: ['list', 'find', 'grep', 'download', 'upload'], exec: ['say'] },
        },
      ],
    }),
  );
  const started = capture();
  const code = await runWorkerCommand(['--config', configFile], {
    io: started,
    onStart: (running) => (worker = running),
  });
  expect(code).toBeUndefined();
  expect(started.out().trim()).toBe(worker.address);
}, 30_000);

afterAll(async () => {
  await worker?.stop();
  await server?.close();
  await relay?.dispose();
  await rm(dir, { recursive: true, force: true });
});

const call = async (args: string[], tty = false) => {
  const io = capture(tty);
  const code = await runCallCommand([worker.address, ...args, '--key', userFile], io);
  return { code, out: io.out(), err: io.err() };
};

describe('deadrop user', () => {
  it('init writes a key pair readable by its owner only and prints its public key; it keeps an existing one', async () => {
    expect((await stat(userFile)).mode & 0o777).toBe(0o600);
    const again = capture();
    expect(await runUserCommand(['init', '--key', userFile], again)).toBe(1);
    expect(again.err()).toMatch(/exists already; pass --force/);
    const show = capture();
    expect(await runUserCommand(['show', '--key', userFile], show)).toBe(0);
    expect(show.out()).toMatch(/^[\w-]{43}\n$/);
    const help = capture();
    expect(await runUserCommand(['--help'], help)).toBe(0);
    expect(help.out()).toMatch(/deadrop user <init\|show>/);
  });
});

describe('deadrop worker', () => {
  it('answers --help, and a config with problems with one sentence each and exit code 1', async () => {
    const help = capture();
    expect(await runWorkerCommand(['--help'], { io: help })).toBe(0);
    expect(help.out()).toMatch(/deadrop worker \[--config <file>\]/);
    const bad = join(dir, 'bad.yml');
    await writeFile(bad, stringify({ relay: 'ftp://x', receivers: { fs: { roots: { docs: '/nowhere' } } } }));
    const io = capture();
    expect(await runWorkerCommand(['-c', bad], { io })).toBe(1);
    expect(io.err()).toContain('"relay" must hold http:// or https:// URLs');
    expect(io.err()).toContain('"receivers.fs.roots.docs" must be an existing directory');
    expect(io.err()).toContain('"auth" must list at least one user key');
  });

  it('keeps its key file at mode 0600 and its address across restarts', async () => {
    expect((await stat(join(dir, 'worker-key.json'))).mode & 0o777).toBe(0o600);
    const io = capture();
    let second: RunningWorker | undefined;
    await runWorkerCommand(['--config', configFile], { io, onStart: (running) => (second = running) });
    await second?.stop();
    expect(io.out().trim()).toBe(worker.address);
  });
});

describe('deadrop call', () => {
  it('lists, finds and searches, for people and with --json for scripts', async () => {
    const listing = await call(['fs', 'list', '/files']);
    expect(listing.code).toBe(0);
    expect(listing.out).toMatch(/-\s+22 B\s+.*hello\.txt/);
    const found = await call(['fs', 'find', 'hello*', '--json']);
    expect(JSON.parse(found.out)).toEqual({
      results: [{ path: '/files/hello.txt', type: 'file' }],
      truncated: false,
    });
    const grep = await call(['fs', 'find', '*.txt', '--content', 'from the']);
    expect(grep.out).toBe('/files/hello.txt:1:hello from the worker\n');
  });

  it('downloads with -o and uploads, drawing the progress bar on stderr when asked', async () => {
    const target = join(dir, 'copy.bin');
    const got = await call(['fs', 'get', '/files/blob.bin', '-o', target, '--progress']);
    expect(got.code).toBe(0);
    expect(sha256(await readFile(target))).toBe(sha256(await readFile(join(dir, 'root', 'blob.bin'))));
    expect(got.err).toMatch(/blob\.bin \[.*\] \d+% \| .* of 293\.0 KiB \| .*\/s \| ETA/);
    const quiet = await call(['fs', 'get', '/files/hello.txt', '-o', '-']);
    expect(quiet.out).toBe('hello from the worker\n');
    expect(quiet.err).not.toMatch(/ETA/);
    const put = await call(['fs', 'put', target, '/files/', '--json']);
    expect(JSON.parse(put.out)).toMatchObject({ path: '/files/copy.bin', size: 300_000 });
  });

  it('runs a command and exits with its exit code; a refusal exits 1 with the reason', async () => {
    const said = await call(['exec', 'say', 'what=bye']);
    expect(said).toMatchObject({ code: 3, out: 'bye\n' });
    expect(said.err).toContain('say: exit code 3');
    const refused = await call(['exec', 'say', 'what=rm']);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/^deadrop call: The value of "what" is not one the command "say" accepts\./);
  });

  it('refuses a fake descriptor before sending anything, and reports usage errors with exit code 2', async () => {
    const plain = createClient(server.url);
    const fake = await plain.keys();
    await plain.publish(fake.private, {
      v: 1,
      id: worker.id,
      pk: 'A'.repeat(43),
      level: 4,
      counter: 0,
      types: [],
      exp: 0,
    });
    const io = capture();
    const code = await runCallCommand(
      [`${server.url}/public/${fake.public}#${worker.id}`, 'fs', 'list', '--key', userFile],
      io,
    );
    expect(code).toBe(1);
    expect(io.err()).toMatch(/does not have the fingerprint .* nothing was sent/);
    expect(await plain.drain(fake.private)).toEqual([]);
    expect((await call(['fs', 'frobnicate'])).code).toBe(2);
    const help = capture();
    expect(await runCallCommand(['--help'], help)).toBe(0);
    expect(help.out()).toContain('fs get <path> [-o <file>]');
  });
});

describe('deadrop call says what went wrong in the words the user typed', () => {
  it('a command the worker does not have is said to be missing, not forbidden', async () => {
    const missing = await call(['exec', 'nosuch']);
    expect(missing.code).toBe(1);
    expect(missing.err).toBe('deadrop call: The worker has no command named "nosuch".\n');
  });

  it('a refused operation is named as typed: "fs rm", not "delete"', async () => {
    const refused = await call(['fs', 'rm', '/files/hello.txt']);
    expect(refused.code).toBe(1);
    expect(refused.err).toBe(
      'deadrop call: This worker does not offer "fs rm" (the file operation "delete"); its owner enables it in worker.yml.\n',
    );
  });

  it('an upload onto an existing file names --overwrite, and --overwrite replaces it', async () => {
    const local = join(dir, 'hello.txt');
    await writeFile(local, 'replaced\n');
    const refused = await call(['fs', 'put', local, '/files/hello.txt']);
    expect(refused.code).toBe(1);
    expect(refused.err).toBe(
      'deadrop call: /files/hello.txt exists on the worker; add --overwrite to replace it.\n',
    );
    expect(await readFile(join(dir, 'root', 'hello.txt'), 'utf8')).toBe('hello from the worker\n');
    expect((await call(['fs', 'put', local, '/files/hello.txt', '--overwrite'])).code).toBe(0);
    expect(await readFile(join(dir, 'root', 'hello.txt'), 'utf8')).toBe('replaced\n');
    await writeFile(join(dir, 'root', 'hello.txt'), 'hello from the worker\n');
  });

  it('a missing local file is a sentence, not ENOENT', async () => {
    const missing = await call(['fs', 'put', join(dir, 'nosuch.txt'), '/files/']);
    expect(missing.code).toBe(1);
    expect(missing.err).toBe(`deadrop call: There is no file ${join(dir, 'nosuch.txt')} here to upload.\n`);
  });

  it('extra arguments are refused with usage, exit code 2', async () => {
    for (const args of [
      ['fs', 'list', '/files', 'extra'],
      ['fs', 'get', '/files/hello.txt', 'hello.txt'],
      ['fs', 'put', 'a', 'b', 'c'],
      ['wol', 'pc', 'now'],
    ]) {
      const extra = await call(args);
      expect(extra.code, args.join(' ')).toBe(2);
      expect(extra.err).toMatch(/takes (at most \d|no) arguments?, but got "[^"]+" too\./);
    }
  });

  it('-o does not replace an existing file unless --force', async () => {
    const target = join(dir, 'kept.txt');
    await writeFile(target, 'mine\n');
    const refused = await call(['fs', 'get', '/files/hello.txt', '-o', target]);
    expect(refused.code).toBe(1);
    expect(refused.err).toBe(
      `deadrop call: ${target} exists here; add --force to replace it, or -o to save elsewhere.\n`,
    );
    expect(await readFile(target, 'utf8')).toBe('mine\n');
    expect((await call(['fs', 'get', '/files/hello.txt', '-o', target, '--force'])).code).toBe(0);
    expect(await readFile(target, 'utf8')).toBe('hello from the worker\n');
  });
});
