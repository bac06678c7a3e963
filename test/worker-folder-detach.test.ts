// `deadrop call` for folders and stopped workers: a folder as a tar archive under the root's rules, detached
// requests answered through their ticket once the worker is back, and `info`.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { list as listTar } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { CommandIo } from '../src/client/call-command.js';
import { runCallCommand, runUserCommand, runWorkerCommand } from '../src/worker/cli.js';
import type { RunningWorker } from '../src/worker/worker.js';
import { listen, openTestRelay, type TestRelay, tempDir } from './helpers.js';

function capture(): CommandIo & { out: () => string; err: () => string } {
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
  return { stdout: out.stream, stderr: err.stream, out: out.text, err: err.text };
}

let relay: TestRelay;
let server: { url: string; close: () => Promise<void> };
let dir: string;
let userFile: string;
let configFile: string;
let worker: RunningWorker | undefined;
let address: string;
const LONG_NAME = `${'a-long-name-'.repeat(12)}end.txt`;

async function startWorker(): Promise<RunningWorker> {
  let started: RunningWorker | undefined;
  const io = capture();
  expect(
    await runWorkerCommand(['--config', configFile], { io, onStart: (running) => (started = running) }),
  ).toBe(undefined);
  return started as RunningWorker;
}

beforeAll(async () => {
  relay = await openTestRelay('sqlite');
  server = await listen(relay.app);
  dir = await tempDir();
  const photos = join(dir, 'root', 'photos');
  await mkdir(join(photos, 'trip', 'day1'), { recursive: true });
  await mkdir(join(photos, '.git'), { recursive: true });
  await mkdir(join(photos, 'empty'), { recursive: true });
  await mkdir(join(dir, 'outside'), { recursive: true });
  await writeFile(join(photos, 'cat.jpg'), randomBytes(70_000));
  await writeFile(join(photos, 'trip', 'day1', 'beach.jpg'), randomBytes(1_300_000));
  await writeFile(join(photos, 'trip', LONG_NAME), 'long names go in pax records\n');
  await writeFile(join(photos, 'trip', 'notes.txt'), 'sunny\n');
  await writeFile(join(photos, '.git', 'config'), 'excluded by **/.git/**');
  await writeFile(join(photos, 'trip', 'secret.key'), 'excluded by **/*.key');
  await writeFile(join(photos, 'raw.cr2'), 'left out by the include patterns');
  await writeFile(join(dir, 'outside', 'passwd'), 'outside the root');
  await symlink(join(dir, 'outside'), join(photos, 'escape-dir'));
  await symlink(join(dir, 'outside', 'passwd'), join(photos, 'escape-file'));
  await symlink(join(photos, 'cat.jpg'), join(photos, 'cat-link.jpg'));
  userFile = join(dir, 'user.json');
  const init = capture();
  expect(await runUserCommand(['init', '--key', userFile], init)).toBe(0);
  configFile = join(dir, 'worker.yml');
  await writeFile(
    configFile,
    stringify({
      relay: server.url,
      fingerprint: { level: 4 },
      reconnect: { min: '50ms', max: '200ms' },
      receivers: {
        fs: {
          roots: { shared: './root' },
          include: ['**/*.jpg', '**/*.txt', '**/*.key'],
          exclude: ['**/.git/**', '**/*.key'],
          operations: ['list', 'download', 'mkdir'],
        },
        exec: {
          commands: {
            say: {
              argv: [process.execPath, '-e', 'console.log(process.argv[1]); process.exit(3)', '{what}'],
              params: { what: { enum: ['hi', 'bye'] } },
            },
          },
        },
        wol: { targets: { nas: 'aa:bb:cc:dd:ee:ff' } },
      },
      auth: [
        {
          name: 'me',
          key: init.out().trim(),
          allow: { fs: ['list', 'download', 'mkdir'], exec: ['say'] },
        },
      ],
    }),
  );
  worker = await startWorker();
  address = worker.address;
}, 30_000);

afterAll(async () => {
  await worker?.stop();
  await server?.close();
  await relay?.dispose();
  await rm(dir, { recursive: true, force: true });
});

const call = async (args: string[]) => {
  const io = capture();
  const code = await runCallCommand([...args, '--key', userFile], io);
  return { code, out: io.out(), err: io.err() };
};

/** Every entry of a tar archive, with the bytes of its files. */
async function readArchive(file: string): Promise<Map<string, Buffer | 'dir'>> {
  const entries = new Map<string, Buffer | 'dir'>();
  const reading: Promise<void>[] = [];
  await listTar({
    file,
    onReadEntry: (entry) => {
      if (entry.type === 'Directory') {
        entries.set(entry.path, 'dir');
        entry.resume();
        return;
      }
      const chunks: Buffer[] = [];
      entry.on('data', (chunk: Buffer) => chunks.push(chunk));
      reading.push(new Promise((resolve) => entry.on('end', () => resolve())));
      entries.set(entry.path, Buffer.alloc(0));
      entry.on('end', () => entries.set(entry.path, Buffer.concat(chunks)));
    },
  });
  await Promise.all(reading);
  return entries;
}

describe('fs get on a folder', () => {
  it('streams it as a tar archive holding every included file, with its bytes, and nothing excluded or outside', async () => {
    const target = join(dir, 'photos.tar');
    const got = await call([address, 'fs', 'get', '/shared/photos', '-o', target]);
    expect(got.err).toBe('');
    expect(got.code).toBe(0);
    expect(got.out).toMatch(
      /^Saved \/shared\/photos to .*photos\.tar as a tar archive \(5 files, 1\.4 MiB\)\.\n$/,
    );
    const entries = await readArchive(target);
    expect([...entries.keys()].sort()).toEqual(
      [
        'photos/',
        'photos/cat-link.jpg',
        'photos/cat.jpg',
        'photos/empty/',
        'photos/trip/',
        `photos/trip/${LONG_NAME}`,
        'photos/trip/day1/',
        'photos/trip/day1/beach.jpg',
        'photos/trip/notes.txt',
      ].sort(),
    );
    const root = join(dir, 'root');
    for (const name of ['cat.jpg', 'trip/day1/beach.jpg', `trip/${LONG_NAME}`, 'trip/notes.txt']) {
      expect(entries.get(`photos/${name}`)).toEqual(await readFile(join(root, 'photos', name)));
    }
    // The link inside the root is archived as the file it leads to.
    expect(entries.get('photos/cat-link.jpg')).toEqual(await readFile(join(root, 'photos', 'cat.jpg')));
    const names = [...entries.keys()].join('\n');
    for (const left of ['.git', 'secret.key', 'raw.cr2', 'escape', 'passwd'])
      expect(names).not.toContain(left);
  });

  it('names the archive after the folder without -o, and does not replace a local one', async () => {
    const here = process.cwd();
    process.chdir(dir);
    try {
      const first = await call([address, 'fs', 'get', '/shared/photos/trip']);
      expect(first.code).toBe(0);
      expect(first.out).toContain('to trip.tar as a tar archive (3 files');
      expect((await readArchive(join(dir, 'trip.tar'))).has('trip/notes.txt')).toBe(true);
      const again = await call([address, 'fs', 'get', '/shared/photos/trip']);
      expect(again.code).toBe(1);
      expect(again.err).toContain('trip.tar exists here; add --force to replace it');
    } finally {
      process.chdir(here);
    }
  });

  it('refuses a folder reached through a link out of the root, and the top of the roots', async () => {
    const escaped = await call([address, 'fs', 'get', '/shared/photos/escape-dir', '-o', join(dir, 'x.tar')]);
    expect(escaped.code).toBe(1);
    expect(escaped.err).toContain('/shared/photos/escape-dir leads outside its root.');
    const top = await call([address, 'fs', 'get', '/', '-o', join(dir, 'y.tar')]);
    expect(top.code).toBe(1);
    expect(top.err).toContain('This needs a path inside a root');
  });
});

describe('info', () => {
  it('says what this user may use, and nothing more', async () => {
    const info = await call([address, 'info', '--json']);
    expect(info.code).toBe(0);
    expect(JSON.parse(info.out)).toMatchObject({
      fs: { operations: ['list', 'download', 'mkdir'], roots: ['shared'] },
      exec: [{ name: 'say', params: [{ name: 'what', values: ['hi', 'bye'] }] }],
      wol: [],
    });
  });
});

describe('detached requests', () => {
  it('are left while the worker is stopped and answered through their ticket once it is back', async () => {
    await worker?.stop();
    worker = undefined;
    const sent = await call([address, '--detach', 'exec', 'say', 'what=hi']);
    expect(sent.code).toBe(0);
    const ticket = sent.out.trim().split('\n').at(-1) as string;
    expect(ticket).toMatch(/^dt1\.[\w-]+$/);
    expect(sent.err).toContain('deadrop call --ticket dt1.');
    const made = await call([address, '--detach', '--lifetime', '2h', 'fs', 'mkdir', '/shared/queued']);
    const mkdirTicket = made.out.trim();
    // The relay of this test keeps data 60 s, as the worker reported in its descriptor: that caps the 2 hours asked.
    expect(made.err).toContain(
      'The relay keeps requests 60 s (its DEADROP_TTL); the request lives that long, not 7200 s.',
    );

    const early = await call(['--ticket', ticket, '--timeout', '1']);
    expect(early.code).toBe(1);
    expect(early.err).toContain('No answer yet');

    worker = await startWorker();
    expect(worker.address).toBe(address);
    const answered = await call(['--ticket', ticket, '--timeout', '20']);
    expect(answered).toMatchObject({ code: 3, out: 'hi\n' });
    expect(answered.err).toContain('say: exit code 3');
    const dirMade = await call(['--ticket', mkdirTicket, '--timeout', '20']);
    expect(dirMade).toMatchObject({ code: 0, out: 'Made /shared/queued.\n' });

    const twice = await call(['--ticket', ticket, '--timeout', '1']);
    expect(twice.code).toBe(1);
    expect(twice.err).toContain('an answer is read once');
  });

  it('a ticket opens only with the key of the user who sent it', async () => {
    const sent = await call([address, '--detach', 'fs', 'list', '/shared']);
    const ticket = sent.out.trim();
    const otherKey = join(dir, 'other.json');
    expect(await runUserCommand(['init', '--key', otherKey], capture())).toBe(0);
    const io = capture();
    expect(await runCallCommand(['--ticket', ticket, '--timeout', '20', '--key', otherKey], io)).toBe(1);
    expect(io.err()).toMatch(/tampered with or is not for this key/);
  });

  it('refuses transfers and a bad lifetime with usage, and an unreadable ticket with a sentence', async () => {
    const get = await call([address, '--detach', 'fs', 'get', '/shared/photos/cat.jpg']);
    expect(get.code).toBe(2);
    expect(get.err).toContain('fs get cannot wait for a stopped worker');
    const lifetime = await call([address, '--detach', '--lifetime', 'soon', 'fs', 'list']);
    expect(lifetime.code).toBe(2);
    expect(lifetime.err).toContain('--lifetime takes a duration such as 90s');
    const bad = await call(['--ticket', 'nonsense']);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('A ticket is the last line "deadrop call --detach" printed');
  });
});
