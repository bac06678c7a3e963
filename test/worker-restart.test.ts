// Restarts: a restarted worker still refuses a replay, and a worker is back within 2 s of its relay's return (real processes).
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { generateUserKeys, openAnswer, REQUEST_TYPES, sealRequest, toBase64url } from '../sdk/crypto.js';
import { createClient } from '../sdk/index.js';
import { connectWorker } from '../src/client/worker-client.js';
import { loadWorkerConfig } from '../src/worker/config.js';
import type { WorkerEvent } from '../src/worker/events.js';
import { createReplayCache } from '../src/worker/replay-cache.js';
import { replayJournalOf, startWorker } from '../src/worker/worker.js';
import { listen, openTestRelay, tempDir, waitFor } from './helpers.js';

const dirs: string[] = [];
const children = new Set<ChildProcess>();
afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** A worker.yml in a fresh directory with one root and one user; answers its path and the user's keys. */
async function workerSetup(relay: string) {
  const dir = await tempDir();
  dirs.push(dir);
  await mkdir(join(dir, 'root'));
  await writeFile(join(dir, 'root', 'a.txt'), 'a');
  const user = generateUserKeys();
  const config = join(dir, 'worker.yml');
  await writeFile(
    config,
    stringify({
      relay,
      fingerprint: { level: 4 },
      receivers: { fs: { roots: { files: './root' } } },
      auth: [{ name: 'me', key: toBase64url(user.publicKey), allow: { fs: '*' } }],
    }),
  );
  return { dir, config, user };
}

describe('the replay journal', () => {
  it('keeps the ids still valid across a reopen, and only those', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const journal = join(dir, 'worker.replay');
    const first = createReplayCache(10, journal, 0);
    expect(first.admit('short-lived', 5, 0)).toBe('new');
    expect(first.admit('long-lived', 100, 0)).toBe('new');
    first.close();
    const second = createReplayCache(10, journal, 10_000);
    expect(second.admit('long-lived', 100, 10_000)).toBe('replayed');
    expect(second.admit('short-lived', 5, 10_000)).toBe('new');
    second.close();
    expect((await readFile(journal, 'utf8')).split('\n').filter(Boolean)).toEqual([
      'long-lived 100',
      'short-lived 5',
    ]);
  });
});

describe('a restarted worker', () => {
  it('does not carry out a request it took before the restart, when it is posted again', async () => {
    const relay = await openTestRelay('sqlite');
    const server = await listen(relay.app);
    const { config: file, user } = await workerSetup(server.url);
    const config = await loadWorkerConfig(file);
    const events: WorkerEvent[] = [];
    let worker = await startWorker({ config, emit: (event) => events.push(event) });
    try {
      const plain = createClient(server.url);
      const client = await connectWorker(worker.address, { user });
      const workerPublicKey = Uint8Array.from(Buffer.from(client.descriptor.pk, 'base64url'));
      const { envelope, responseKey } = sealRequest({
        workerPublicKey,
        to: worker.id,
        typ: REQUEST_TYPES.fs('list'),
        body: { path: '/files' },
        user,
      });
      const publicKey = client.address.publicKey;
      const first = plain.receive(publicKey, envelope.rid, { wait: 10 });
      await plain.post(publicKey, envelope);
      const answer = await openAnswer(responseKey, envelope.rid, await first, async () => undefined);
      expect(answer).toMatchObject({ ok: true, result: { path: '/files' } });

      await worker.stop();
      expect(await readFile(replayJournalOf(config.keyFile), 'utf8')).toContain(envelope.rid);
      worker = await startWorker({ config, emit: (event) => events.push(event) });
      const again = plain.receive(publicKey, envelope.rid, { wait: 3 });
      await plain.post(publicKey, envelope);
      await waitFor(
        () => events.some((event) => event.type === 'refused' && event.reason === 'replayed'),
        'the replay to be refused',
      );
      expect(await again).toBeUndefined();
      expect(events.filter((event) => event.type === 'answered')).toHaveLength(1);
    } finally {
      await worker.stop();
      await server.close();
      await relay.dispose();
    }
  }, 30_000);
});

/** A port free a moment ago, for a relay that must come back on the same one. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** `deadrop <args>` as its own process (through tsx), its stderr kept. */
function deadrop(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const output = { stdout: '', stderr: '' };
  child.stdout?.setEncoding('utf8').on('data', (text: string) => {
    output.stdout += text;
  });
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    output.stderr += text;
  });
  return { child, output };
}

describe('a worker whose relay restarts', () => {
  it('is back within 2 s of the relay listening again, however long its backoff grew, and says so', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const { dir, config, user } = await workerSetup(url);
    const relayEnv = {
      PORT: String(port),
      HOST: '127.0.0.1',
      DEADROP_DATA_DIR: join(dir, 'data'),
      DEADROP_RATE_LIMIT: '0',
      LOG_LEVEL: 'silent',
    };
    const listening = async () =>
      fetch(`${url}/id`).then(
        (response) => response.ok,
        () => false,
      );
    let relay = deadrop(['serve'], relayEnv);
    await waitFor(listening, 'the relay', 20_000);
    const worker = deadrop(['worker', '--config', config]);
    await waitFor(() => worker.output.stdout.includes('#'), 'the worker address', 30_000);
    // The address is printed at start; users find the worker once its descriptor is published.
    await waitFor(() => worker.output.stderr.includes('descriptor published'), 'the descriptor', 30_000);
    const address = worker.output.stdout.trim();
    const list = async () =>
      (await connectWorker(address, { user })).request(REQUEST_TYPES.fs('list'), { path: '/files' });
    expect(await list()).toMatchObject({ entries: [{ name: 'a.txt' }] });

    relay.child.kill('SIGTERM');
    await once(relay.child, 'exit');
    // The outage lasts until the worker's backoff has grown past 2 s: coming back must not wait it out.
    await waitFor(
      () => [...worker.output.stderr.matchAll(/Retrying in (\d+) ms/g)].some(([, ms]) => Number(ms) >= 2000),
      'the backoff to grow past 2 s',
      30_000,
    );
    // The long-poll under way is cut, then the connections are refused: each in the wording of every command.
    expect(worker.output.stderr).toContain(
      `relay unreachable during intake: Nothing is listening at 127.0.0.1:${port} (connection refused): is the relay running`,
    );

    relay = deadrop(['serve'], relayEnv);
    await waitFor(listening, 'the relay to return', 20_000);
    const returned = Date.now();
    await waitFor(
      () => /relay reachable again after [\d.]+ s/.test(worker.output.stderr),
      'the worker',
      5000,
    );
    expect(Date.now() - returned).toBeLessThan(2000);
    expect(await list()).toMatchObject({ entries: [{ name: 'a.txt' }] });

    worker.child.kill('SIGTERM');
    relay.child.kill('SIGTERM');
    await Promise.all([once(worker.child, 'exit'), once(relay.child, 'exit')]);
  }, 90_000);
});
