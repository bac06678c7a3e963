// What a worker refuses, end to end on a real SQLite relay: strangers, tampering, replays, path escapes, fake workers.
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  fingerprint,
  fromBase64url,
  generateUserKeys,
  generateWorkerKeys,
  openAnswer,
  type RequestEnvelope,
  sealRequest,
  toBase64url,
} from '../sdk/crypto.js';
import { REQUEST_TYPES } from '../sdk/e2e/protocol.js';
import { createClient, type DeadropClient } from '../sdk/index.js';
import { uploadFile } from '../src/client/transfers.js';
import { connectWorker, DescriptorError, type WorkerClient } from '../src/client/worker-client.js';
import { continueUnlessPipe } from '../src/http/pipe-routes.js';
import { checkWorkerConfig } from '../src/worker/config.js';
import type { WorkerEvent } from '../src/worker/events.js';
import { type RunningWorker, startWorker } from '../src/worker/worker.js';
import { openTestRelay, type TestRelay, tempDir, waitFor } from './helpers.js';

let relay: TestRelay;
let server: { port: number; close: () => Promise<void> };
let url: string;
let workDir: string;
let worker: RunningWorker;
let plain: DeadropClient;
let alice: WorkerClient;
const events: WorkerEvent[] = [];
const aliceKeys = generateUserKeys();
const bobKeys = generateUserKeys();

async function serveOn(app: TestRelay['app'], port: number) {
  const listening: Server = createServer(app);
  listening.on('checkContinue', continueUnlessPipe(app));
  await new Promise<void>((resolve) => listening.listen(port, '127.0.0.1', resolve));
  return {
    port: (listening.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        listening.closeAllConnections();
        listening.close(() => resolve());
      }),
  };
}

const publicKey = () => worker.address.split('/public/')[1]?.split('#')[0] as string;
const workerKey = () => fromBase64url(alice.descriptor.pk);
const refusals = (reason: string) =>
  events.filter((event) => event.type === 'refused' && event.reason === reason);

/** Posts an envelope as a user would, and takes what the worker left at its rid within `wait` seconds. */
async function postAndTake(envelope: RequestEnvelope, wait = 1) {
  const taking = plain.receive(publicKey(), envelope.rid, { wait });
  await plain.post(publicKey(), envelope);
  return taking;
}

beforeAll(async () => {
  workDir = await tempDir();
  const root = join(workDir, 'root');
  const outside = join(workDir, 'outside');
  await mkdir(join(root, 'inner'), { recursive: true });
  await mkdir(outside);
  await writeFile(join(root, 'inner', 'ok.txt'), 'inside');
  await writeFile(join(outside, 'secret.txt'), 'outside the root');
  await symlink(outside, join(root, 'out-dir'));
  await symlink(join(outside, 'secret.txt'), join(root, 'out-file'));
  relay = await openTestRelay('sqlite');
  server = await serveOn(relay.app, 0);
  url = `http://127.0.0.1:${server.port}`;
  plain = createClient(url);
  const config = await checkWorkerConfig(
    {
      relay: url,
      keyFile: join(workDir, 'worker-key.json'),
      fingerprint: { level: 8 },
      reconnect: { min: '50ms', max: '300ms' },
      receivers: {
        fs: { roots: { files: root }, operations: ['list', 'stat', 'download', 'upload', 'mkdir'] },
      },
      auth: [
        { name: 'alice', key: toBase64url(aliceKeys.publicKey), allow: { fs: '*' } },
        { name: 'bob', key: toBase64url(bobKeys.publicKey), allow: { fs: ['list'] } },
      ],
    },
    workDir,
    'test',
  );
  worker = await startWorker({ config, emit: (event) => events.push(event) });
  await waitFor(() => events.some((event) => event.type === 'published'), 'the descriptor');
  alice = await connectWorker(worker.address, { user: aliceKeys });
}, 30_000);

afterAll(async () => {
  await worker?.stop();
  await server?.close();
  await relay?.dispose();
  await rm(workDir, { recursive: true, force: true });
});

describe('users', () => {
  it('refuses a user key that is not in the auth list, with an encrypted answer', async () => {
    const mallory = await connectWorker(worker.address, { user: generateUserKeys() });
    await expect(mallory.request(REQUEST_TYPES.fs('list'), { path: '/' })).rejects.toMatchObject({
      code: 'forbidden',
    });
    expect(refusals('unknown-user').length).toBeGreaterThan(0);
  });

  it('refuses an operation the user is not granted, and one the worker does not offer', async () => {
    const bob = await connectWorker(worker.address, { user: bobKeys });
    expect(await bob.request(REQUEST_TYPES.fs('list'), { path: '/files' })).toMatchObject({ path: '/files' });
    await expect(bob.request(REQUEST_TYPES.fs('stat'), { path: '/files/inner' })).rejects.toMatchObject({
      code: 'forbidden',
    });
    await expect(alice.request(REQUEST_TYPES.fs('delete'), { path: '/files/inner' })).rejects.toMatchObject({
      code: 'unsupported',
    });
    await expect(alice.request(REQUEST_TYPES.exec, { name: 'x' })).rejects.toMatchObject({
      code: 'unsupported',
    });
  });
});

describe('requests', () => {
  const sealed = (overrides: { now?: number } = {}) =>
    sealRequest({
      workerPublicKey: workerKey(),
      to: worker.id,
      typ: REQUEST_TYPES.fs('list'),
      body: { path: '/' },
      user: aliceKeys,
      ttlSeconds: 60,
      ...overrides,
    });

  it('drops a request whose ciphertext or header was changed, and keeps working', async () => {
    const { envelope } = sealed();
    const ct = fromBase64url(envelope.ct);
    ct[10] = (ct[10] as number) ^ 1;
    expect(await postAndTake({ ...envelope, ct: toBase64url(ct) })).toBeUndefined();
    expect(await postAndTake({ ...sealed().envelope, typ: REQUEST_TYPES.fs('upload') })).toBeUndefined();
    await plain.post(publicKey(), 'not an envelope at all');
    await waitFor(() => refusals('tampered').length >= 3, 'three refusals');
    expect(await alice.request(REQUEST_TYPES.fs('list'), { path: '/' })).toMatchObject({ path: '/' });
  });

  it('answers a request once: the same envelope posted again is dropped as a replay', async () => {
    const { envelope, responseKey } = sealed();
    const first = await postAndTake(envelope);
    expect(await openAnswer(responseKey, envelope.rid, first, async () => undefined)).toMatchObject({
      ok: true,
    });
    expect(await postAndTake(envelope)).toBeUndefined();
    expect(refusals('replayed').map((event) => event.type === 'refused' && event.rid)).toContain(
      envelope.rid,
    );
  });

  it('answers an expired request with an encrypted "expired"', async () => {
    const { envelope, responseKey } = sealed({ now: Date.now() - 120_000 });
    const answer = await openAnswer(
      responseKey,
      envelope.rid,
      await postAndTake(envelope),
      async () => undefined,
    );
    expect(answer).toMatchObject({ ok: false, error: { code: 'expired' } });
  });
});

describe('paths', () => {
  it.each([
    ['a ".." segment', '/files/inner/../../outside/secret.txt', 'forbidden'],
    ['a ".." right after the root', '/files/../files/inner/ok.txt', 'forbidden'],
    ['a link to a directory outside', '/files/out-dir/secret.txt', 'forbidden'],
    ['a link to a file outside', '/files/out-file', 'forbidden'],
    ['an absolute path of the machine', '/etc/passwd', 'not_found'],
    ['a doubled slash', '//etc/passwd', 'not_found'],
    ['a relative path', 'etc/passwd', 'bad_request'],
    ['backslashes', '/files\\..\\..\\etc\\passwd', 'bad_request'],
  ])('refuses %s', async (_, path, code) => {
    await expect(
      alice.request(
        REQUEST_TYPES.fs('download'),
        { path },
        { reply: { pipe: 'x'.repeat(32), key: toBase64url(new Uint8Array(32)) } },
      ),
    ).rejects.toMatchObject({ code });
    await expect(alice.request(REQUEST_TYPES.fs('stat'), { path })).rejects.toMatchObject({ code });
  });

  it('lists neither links that lead out nor what is behind them, and writes nothing through them', async () => {
    const listing = await alice.request<{ entries: { name: string }[] }>(REQUEST_TYPES.fs('list'), {
      path: '/files',
    });
    expect(listing.entries.map((entry) => entry.name)).toEqual(['inner']);
    await expect(alice.request(REQUEST_TYPES.fs('list'), { path: '/files/out-dir' })).rejects.toMatchObject({
      code: 'forbidden',
    });
    await expect(
      alice.request(REQUEST_TYPES.fs('mkdir'), { path: '/files/out-dir/new' }),
    ).rejects.toMatchObject({
      code: 'forbidden',
    });
    const local = join(workDir, 'local.txt');
    await writeFile(local, 'payload');
    await expect(uploadFile(alice, local, '/files/out-dir/planted.txt')).rejects.toMatchObject({
      code: 'forbidden',
    });
    await expect(uploadFile(alice, local, '/files/out-file', { overwrite: true })).rejects.toMatchObject({
      code: 'forbidden',
    });
  });
});

describe('the descriptor', () => {
  it('is refused by the client when its key does not have the fingerprint of the address, before anything is sent', async () => {
    const fake = await plain.keys();
    const impostor = generateWorkerKeys();
    const { counter } = fingerprint(impostor.publicKey, 8, 8);
    await plain.publish(fake.private, { ...alice.descriptor, pk: toBase64url(impostor.publicKey), counter });
    const address = `${url}/public/${fake.public}#${worker.id}`;
    await expect(connectWorker(address, { user: aliceKeys })).rejects.toThrow(DescriptorError);
    await expect(connectWorker(address, { user: aliceKeys })).rejects.toThrow(/fingerprint/);
    expect(await plain.drain(fake.private)).toEqual([]);
    await plain.publish(fake.private, 'not a descriptor');
    await expect(connectWorker(address, { user: aliceKeys })).rejects.toThrow(DescriptorError);
  });
});

describe('the relay going away', () => {
  it('is survived: the worker reconnects with backoff and a later request succeeds', async () => {
    const port = server.port;
    await server.close();
    await waitFor(
      () => events.some((event) => event.type === 'relay-down' && event.during === 'intake'),
      'the outage',
    );
    server = await serveOn(relay.app, port);
    const listing = await alice.request(REQUEST_TYPES.fs('list'), { path: '/files/inner' });
    expect(listing).toMatchObject({ entries: [{ name: 'ok.txt' }] });
    expect(events.some((event) => event.type === 'relay-up')).toBe(true);
  });
});
