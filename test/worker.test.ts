// A worker and its users end to end: a real relay on SQLite, a real worker, the client, and the relay's raw files.
import { createHash, randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { type RawKeyPair, toBase64url } from '../sdk/crypto.js';
import { REQUEST_TYPES } from '../sdk/e2e/protocol.js';
import { downloadFile, uploadFile } from '../src/client/transfers.js';
import { createUserKeyFile, loadUserKeys } from '../src/client/user-keys.js';
import { connectWorker, type WorkerClient } from '../src/client/worker-client.js';
import { continueUnlessPipe } from '../src/http/pipe-routes.js';
import { loadWorkerConfig } from '../src/worker/config.js';
import type { WorkerEvent } from '../src/worker/events.js';
import type { ExecResult } from '../src/worker/exec-receiver.js';
import { type RunningWorker, startWorker } from '../src/worker/worker.js';
import { openTestRelay, type TestRelay, tempDir, waitFor } from './helpers.js';

/** Distinctive strings of this session: none may ever be found in the relay's files. */
const MARK = randomBytes(6).toString('hex');
const MARKERS = {
  fileName: `report-${MARK}-name`,
  fileContent: `secret-content-${MARK}`,
  uploadContent: `uploaded-content-${MARK}`,
  uploadName: `upload-${MARK}-name`,
  command: `echo-${MARK}-cmd`,
  word: `word-${MARK}-param`,
  searchText: `needle-${MARK}-text`,
};
const MAC = 'de:ad:be:ef:00:01';
const BIG_BYTES = 20 * 1024 * 1024;

let relay: TestRelay;
let dataDir: string;
let workDir: string;
let root: string;
let server: { url: string; port: number; close: () => Promise<void> };
let worker: RunningWorker;
let udp: Socket;
const udpPackets: Buffer[] = [];
const events: WorkerEvent[] = [];
const users: Record<'alice' | 'bob' | 'mallory', { file: string; keys: RawKeyPair }> = {} as never;
let alice: WorkerClient;

/** Serves `app` on 127.0.0.1:`port` (0: any), as `deadrop serve` does for pipes. */
async function serveOn(app: TestRelay['app'], port: number) {
  const listening: Server = createServer(app);
  listening.on('checkContinue', continueUnlessPipe(app));
  await new Promise<void>((resolve) => listening.listen(port, '127.0.0.1', resolve));
  const bound = (listening.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${bound}`,
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        listening.closeAllConnections();
        listening.close(() => resolve());
      }),
  };
}

async function makeFiles() {
  root = join(workDir, 'root');
  const outside = join(workDir, 'outside');
  await mkdir(join(root, 'sub', 'deep'), { recursive: true });
  await mkdir(join(root, '.git'), { recursive: true });
  await mkdir(join(root, 'uploads'), { recursive: true });
  await mkdir(join(root, 'many'), { recursive: true });
  await mkdir(outside, { recursive: true });
  await writeFile(join(root, `${MARKERS.fileName}.txt`), `line one\n${MARKERS.fileContent}\n`);
  await writeFile(join(root, 'sub', 'deep', 'notes.txt'), `first\nsecond ${MARKERS.searchText} here\n`);
  await writeFile(join(root, '.git', 'config'), 'hidden');
  await writeFile(join(root, 'private.key'), 'hidden');
  await writeFile(join(root, 'big.bin'), randomBytes(BIG_BYTES));
  for (let n = 0; n < 300; n++) {
    await writeFile(
      join(root, 'many', `a-rather-long-file-name-to-need-parts-${String(n).padStart(3, '0')}.txt`),
      '',
    );
  }
  await writeFile(join(outside, 'secret.txt'), 'outside the root');
  await symlink(outside, join(root, 'escape'));
  await symlink(join(outside, 'secret.txt'), join(root, 'escape-file'));
}

async function writeConfig(): Promise<string> {
  const file = join(workDir, 'worker.yml');
  const node = process.execPath;
  const config = {
    relay: server.url,
    keyFile: 'worker-key.json',
    fingerprint: { level: 8 },
    reconnect: { min: '50ms', max: '400ms' },
    receivers: {
      fs: {
        roots: { files: './root' },
        exclude: ['**/.git/**', '**/*.key'],
        operations: ['list', 'stat', 'find', 'grep', 'download', 'upload', 'mkdir', 'delete'],
      },
      exec: {
        commands: {
          [MARKERS.command]: {
            argv: [node, '-e', 'console.log("echo:" + process.argv[1])', '{word}'],
            params: { word: { pattern: '[A-Za-z0-9-]{1,60}' } },
          },
          sleepy: { argv: [node, '-e', 'setTimeout(() => {}, 10000)'], timeout: '300ms' },
          loud: { argv: [node, '-e', 'process.stdout.write("x".repeat(100000))'], maxOutput: '1KiB' },
        },
      },
      wol: {
        targets: { desk: { mac: MAC, address: '127.0.0.1', port: (udp.address() as AddressInfo).port } },
      },
    },
    auth: [
      {
        name: 'alice',
        key: toBase64url(users.alice.keys.publicKey),
        allow: { fs: '*', exec: '*', wol: '*' },
      },
      { name: 'bob', key: toBase64url(users.bob.keys.publicKey), allow: { fs: ['list'] } },
    ],
  };
  await writeFile(file, stringify(config));
  return file;
}

/** Every byte of every file the relay keeps (SQLite and its WAL), read raw. */
async function relayBytes(): Promise<Buffer> {
  const names = await readdir(dataDir);
  return Buffer.concat(
    await Promise.all(names.map((name) => readFile(join(dataDir, name)).catch(() => Buffer.alloc(0)))),
  );
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const asUser = (name: keyof typeof users) => connectWorker(worker.address, { user: users[name].keys });

beforeAll(async () => {
  dataDir = await tempDir();
  workDir = await tempDir();
  relay = await openTestRelay('sqlite', { dataDir });
  server = await serveOn(relay.app, 0);
  udp = createSocket('udp4');
  udp.on('message', (packet) => udpPackets.push(packet));
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
  for (const name of ['alice', 'bob', 'mallory'] as const) {
    const file = join(workDir, `${name}.json`);
    await createUserKeyFile(file);
    users[name] = { file, keys: await loadUserKeys(file) };
  }
  await makeFiles();
  const config = await loadWorkerConfig(await writeConfig());
  worker = await startWorker({ config, emit: (event) => events.push(event) });
  await waitFor(() => events.some((event) => event.type === 'published'), 'the descriptor');
  alice = await asUser('alice');
}, 60_000);

// "During the session": after every test, the relay's raw files are searched for every marker.
afterEach(async () => {
  const bytes = await relayBytes();
  for (const marker of Object.values(MARKERS)) expect(bytes.includes(marker), marker).toBe(false);
});

afterAll(async () => {
  await worker?.stop();
  await server?.close();
  await relay?.dispose();
  udp?.close();
  await rm(workDir, { recursive: true, force: true });
  await rm(dataDir, { recursive: true, force: true });
});

describe('a worker serving its files', () => {
  it('prints an address of the relay, its public path and its id, and publishes a descriptor there', async () => {
    expect(worker.address).toMatch(
      /^http:\/\/127\.0\.0\.1:\d+\/public\/[\w-]{32}#([A-Z2-7]{2}:){7}[A-Z2-7]{2}$/,
    );
    expect(alice.descriptor).toMatchObject({ v: 1, id: worker.id, level: 8 });
    expect(alice.descriptor.types).toContain(REQUEST_TYPES.fs('download'));
    expect(alice.descriptor.exp).toBeGreaterThan(Date.now() / 1000 + 30);
  });

  it('lists "/" as its roots and a root without excluded files or links that lead out', async () => {
    expect(await alice.request(REQUEST_TYPES.fs('list'), { path: '/' })).toMatchObject({
      entries: [{ name: 'files', type: 'dir' }],
    });
    const listing = await alice.request<{ entries: { name: string }[] }>(REQUEST_TYPES.fs('list'), {
      path: '/files',
    });
    const names = listing.entries.map((entry) => entry.name);
    expect(names).toEqual(['many', 'sub', 'uploads', 'big.bin', `${MARKERS.fileName}.txt`]);
  });

  it('answers a listing too large for one relay value in parts', async () => {
    const listing = await alice.request<{ entries: unknown[] }>(REQUEST_TYPES.fs('list'), {
      path: '/files/many',
    });
    expect(listing.entries).toHaveLength(300);
  });

  it('finds files by name and lines by content, never inside excluded or linked directories', async () => {
    const byName = await alice.request<{ results: { path: string }[] }>(REQUEST_TYPES.fs('find'), {
      pattern: '*.txt',
    });
    expect(byName.results.map((entry) => entry.path)).toEqual(
      expect.arrayContaining([`/files/${MARKERS.fileName}.txt`, '/files/sub/deep/notes.txt']),
    );
    expect(
      byName.results.some((entry) => entry.path.includes('secret') || entry.path.includes('escape')),
    ).toBe(false);
    const byContent = await alice.request(REQUEST_TYPES.fs('grep'), {
      pattern: 'notes.*',
      text: MARKERS.searchText,
    });
    expect(byContent).toEqual({
      matches: [{ path: '/files/sub/deep/notes.txt', line: 2, text: `second ${MARKERS.searchText} here` }],
      truncated: false,
      skipped: 0,
    });
  });

  it('downloads a 20 MiB file through the pipe with the same SHA-256', async () => {
    const chunks: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        chunks.push(chunk);
        done();
      },
    });
    const seen: number[] = [];
    const result = await downloadFile(alice, '/files/big.bin', sink, {
      progress: { start: (total) => seen.push(total), update: () => {} },
    });
    const original = sha256(await readFile(join(root, 'big.bin')));
    expect(seen).toEqual([BIG_BYTES]);
    expect(result).toEqual({ path: '/files/big.bin', size: BIG_BYTES });
    expect(sha256(Buffer.concat(chunks))).toBe(original);
  });

  it('uploads a file, keeps an existing one unless told to overwrite, and makes and deletes directories', async () => {
    const local = join(workDir, 'to-upload.bin');
    const content = Buffer.concat([Buffer.from(MARKERS.uploadContent), randomBytes(3 * 1024 * 1024)]);
    await writeFile(local, content);
    const path = `/files/uploads/${MARKERS.uploadName}.bin`;
    const result = await uploadFile(alice, local, path);
    expect(result).toEqual({ path, size: content.length, sha256: sha256(content) });
    expect(sha256(await readFile(join(root, 'uploads', `${MARKERS.uploadName}.bin`)))).toBe(sha256(content));
    await expect(uploadFile(alice, local, path)).rejects.toMatchObject({ code: 'conflict' });
    expect(await uploadFile(alice, local, path, { overwrite: true })).toMatchObject({ size: content.length });
    await alice.request(REQUEST_TYPES.fs('mkdir'), { path: '/files/uploads/new-dir' });
    await expect(alice.request(REQUEST_TYPES.fs('delete'), { path: '/files/uploads' })).rejects.toMatchObject(
      {
        code: 'conflict',
      },
    );
    await alice.request(REQUEST_TYPES.fs('delete'), { path: '/files/uploads/new-dir' });
    await alice.request(REQUEST_TYPES.fs('delete'), { path });
    expect(await readdir(join(root, 'uploads'))).toEqual([]);
  });
});

describe('a worker running commands and waking machines', () => {
  it('runs a named command with a checked parameter and answers its output', async () => {
    const result = await alice.request<ExecResult>(REQUEST_TYPES.exec, {
      name: MARKERS.command,
      params: { word: MARKERS.word },
    });
    expect(result).toMatchObject({ exitCode: 0, stdout: `echo:${MARKERS.word}\n`, timedOut: false });
  });

  it('refuses a parameter that fails its pattern, and stops a command at its timeout and output cap', async () => {
    await expect(
      alice.request(REQUEST_TYPES.exec, { name: MARKERS.command, params: { word: 'a; rm -rf /' } }),
    ).rejects.toMatchObject({ code: 'bad_request' });
    expect(await alice.request(REQUEST_TYPES.exec, { name: 'sleepy' })).toMatchObject({
      timedOut: true,
      signal: 'SIGKILL',
    });
    const loud = await alice.request<ExecResult>(REQUEST_TYPES.exec, { name: 'loud' });
    expect(loud).toMatchObject({ truncated: true, exitCode: 0 });
    expect(loud.stdout).toHaveLength(1024);
  });

  it('sends the wake-on-LAN magic packet to the configured address', async () => {
    expect(await alice.request(REQUEST_TYPES.wol, { target: 'desk' })).toEqual({ target: 'desk', mac: MAC });
    await waitFor(() => udpPackets.length > 0, 'the magic packet');
    const mac = Buffer.from(MAC.replace(/:/g, ''), 'hex');
    expect(udpPackets[0]).toEqual(Buffer.concat([Buffer.alloc(6, 0xff), ...Array(16).fill(mac)]));
  });
});
