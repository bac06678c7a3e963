// The worker's parts on their own: answers in parts, replay cache, config sentences, key file, argv.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  generateUserKeys,
  openAnswer,
  parseAddress,
  REQUEST_TYPES,
  SealError,
  sealAnswer,
  toBase64url,
  verifyFingerprint,
} from '../sdk/crypto.js';
import { connectWorker } from '../src/client/worker-client.js';
import { checkWorkerConfig, loadWorkerConfig, type WorkerConfigError } from '../src/worker/config.js';
import type { WorkerEvent } from '../src/worker/events.js';
import { buildArgv } from '../src/worker/exec-receiver.js';
import { openIdentity } from '../src/worker/key-file.js';
import { parseMac } from '../src/worker/receiver-config.js';
import { createReplayCache } from '../src/worker/replay-cache.js';
import { magicPacket } from '../src/worker/wol-receiver.js';
import { startWorker } from '../src/worker/worker.js';
import { listen, openTestRelay, tempDir, waitFor } from './helpers.js';

let dir: string;
beforeAll(async () => {
  dir = await tempDir();
  await mkdir(join(dir, 'docs'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const userKey = () => toBase64url(generateUserKeys().publicKey);

describe('answers', () => {
  const key = randomBytes(32);

  it('fit in one envelope when small and go in parts under 10 KiB each when large', async () => {
    expect(sealAnswer(key, 'rid-small1', { ok: true, result: 'x' })).toHaveLength(1);
    const answer = { ok: true as const, result: 'y'.repeat(40_000) };
    const messages = sealAnswer(key, 'rid-large1', answer);
    expect(messages.map((message) => message.uid)).toEqual([
      ...Array.from({ length: 9 }, (_, n) => `rid-large1.${n + 1}`),
      'rid-large1',
    ]);
    for (const { envelope } of messages) expect(JSON.stringify(envelope).length).toBeLessThan(10_240);
    const parts = new Map<string, unknown>(messages.map((message) => [message.uid, message.envelope]));
    expect(
      await openAnswer(key, 'rid-large1', parts.get('rid-large1'), async (uid) => parts.get(uid)),
    ).toEqual(answer);
    parts.set('rid-large1.1', parts.get('rid-large1.2'));
    await expect(
      openAnswer(key, 'rid-large1', parts.get('rid-large1'), async (uid) => parts.get(uid)),
    ).rejects.toThrow(SealError);
  });
});

describe('the replay cache', () => {
  it('refuses a rid until its request expires, and refuses new ones rather than forget early', () => {
    const cache = createReplayCache(2);
    expect(cache.admit('a', 10, 0)).toBe('new');
    expect(cache.admit('a', 10, 5_000)).toBe('replayed');
    expect(cache.admit('b', 10, 5_000)).toBe('new');
    expect(cache.admit('c', 10, 5_000)).toBe('full');
    expect(cache.admit('c', 20, 10_000)).toBe('new');
  });
});

describe('worker.yml', () => {
  const base = () => ({
    relay: 'http://127.0.0.1:1',
    receivers: { fs: { roots: { docs: './docs' } } },
    auth: [{ name: 'me', key: userKey(), allow: { fs: '*' } }],
  });
  const problems = async (raw: unknown) =>
    checkWorkerConfig(raw, dir, 'worker.yml').then(
      () => [],
      (error: WorkerConfigError) => error.problems,
    );

  it('is read from YAML with defaults: read-only files, level 21, long-poll', async () => {
    const file = join(dir, 'worker.yml');
    await writeFile(
      file,
      `relay: http://127.0.0.1:1/\nreceivers:\n  fs:\n    roots: { docs: ./docs }\nauth:\n  - { name: me, key: ${userKey()}, allow: { fs: "*" } }\n`,
    );
    const config = await loadWorkerConfig(file);
    expect(config).toMatchObject({
      relays: ['http://127.0.0.1:1'],
      fingerprint: { level: 21, length: 8 },
      intake: 'longpoll',
    });
    expect(config.receivers.fs?.operations).toEqual(['list', 'stat', 'find', 'grep', 'download']);
    await writeFile(file, 'relay: [unclosed');
    await expect(loadWorkerConfig(file)).rejects.toThrow(/not valid YAML/);
  });

  it('names every problem in one sentence each', async () => {
    const raw = {
      ...base(),
      relais: 'x',
      fingerprint: { level: 99 },
      receivers: {
        fs: { roots: { docs: './docs' }, operations: ['list', 'shred'] },
        exec: { commands: { run: { argv: ['sh', '-c', '{script}'], params: { other: { default: 'x' } } } } },
        wol: { targets: { pc: 'not-a-mac' } },
      },
      auth: [
        { name: 'me', key: 'short', allow: {} },
        { name: 'you', key: userKey(), allow: { fs: ['upload'] } },
      ],
    };
    expect(await problems(raw)).toEqual([
      '"(top level).relais" is not a setting here; the settings are relay, keyFile, fingerprint, intake, reconnect, concurrency, receivers, auth.',
      '"receivers.fs.operations" names "shred", which is not an operation; they are list, stat, find, grep, download, upload, mkdir, delete.',
      '"receivers.exec.commands.run.params.other" needs a "pattern" or an "enum": a parameter is never free text.',
      '"receivers.exec.commands.run.argv" uses {script}, but "params" does not define "script".',
      '"receivers.wol.targets.pc" needs a MAC address such as "aa:bb:cc:dd:ee:ff", but it is "not-a-mac".',
      '"auth[0].key" must be a user\'s public key as "deadrop user init" prints it, but it is "short".',
      '"auth[1].allow.fs" names the operation "upload", which this worker does not offer; it offers list.',
      '"fingerprint.level" must be a whole number from 0 to 28, but it is 99.',
    ]);
  });

  it('accepts a parameter with an anchored pattern and substitutes it into argv, never a shell', () => {
    const command = {
      argv: ['ping', '-c', '{count}', 'host-{name}'],
      params: new Map([
        ['count', { values: ['1', '3'], default: '1' }],
        ['name', { pattern: /^(?:[a-z]+)$/u }],
      ]),
      timeoutMs: 1000,
      maxOutputBytes: 100,
    };
    expect(buildArgv('ping', command, { name: 'nas' })).toEqual(['ping', '-c', '1', 'host-nas']);
    expect(() => buildArgv('ping', command, { name: 'nas; reboot' })).toThrow(/not one the command/);
    expect(() => buildArgv('ping', command, { name: 'nas', extra: '1' })).toThrow(/no parameter "extra"/);
    expect(() => buildArgv('ping', command, {})).toThrow(/needs the parameter "name"/);
  });
});

describe('the key file', () => {
  it('is made on first start at mode 0600, kept after, and its id follows the configured level', async () => {
    const file = join(dir, 'keys', 'worker-key.json');
    let issued = 0;
    const issue = async () => ({ private: `p${++issued}`.padEnd(32, 'x'), public: 'q'.padEnd(32, 'x') });
    const first = await openIdentity(file, { level: 6, length: 8 }, issue, () => {});
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(verifyFingerprint(first.keys.publicKey, first.id, 6, first.counter)).toBe(true);
    const again = await openIdentity(file, { level: 6, length: 8 }, issue, () => {});
    expect(again).toMatchObject({ id: first.id, relayKeys: first.relayKeys });
    const relevelled = await openIdentity(file, { level: 7, length: 6 }, issue, () => {});
    expect(relevelled.keys.publicKey).toEqual(first.keys.publicKey);
    expect(relevelled.id.split(':')).toHaveLength(6);
    expect(issued).toBe(1);
    await writeFile(file, '{"v":1,"secretKey":"AAAA","publicKey":"BBBB"}');
    await expect(openIdentity(file, { level: 6, length: 8 }, issue, () => {})).rejects.toThrow(/damaged/);
    expect(JSON.parse(await readFile(file, 'utf8')).publicKey).toBe('BBBB');
  });
});

describe('small formats', () => {
  it('reads MAC addresses and builds the 102-byte magic packet', () => {
    const mac = parseMac('01-23-45-67-89-AB') as Buffer;
    expect(parseMac('0123456789ab')).toEqual(mac);
    expect(parseMac('01:23-45:67:89:ab')).toBeUndefined();
    const packet = magicPacket(mac);
    expect(packet).toHaveLength(102);
    expect(packet.subarray(0, 6)).toEqual(Buffer.alloc(6, 0xff));
    expect(packet.subarray(96)).toEqual(mac);
  });

  it('reads a worker address and says what one looks like when it is not', () => {
    expect(
      parseAddress('https://relay.example/base/public/abcdefghijklmnopqrstuvwxyz012345#g6:ul:u7'),
    ).toEqual({
      relay: 'https://relay.example/base',
      publicKey: 'abcdefghijklmnopqrstuvwxyz012345',
      id: 'G6:UL:U7',
    });
    expect(() => parseAddress('https://relay.example/public/abcdefghijklmnopqrstuvwxyz012345')).toThrow(
      /worker's id/,
    );
    expect(() => parseAddress('relay.example')).toThrow(/not a URL/);
  });
});

describe('a worker on server-sent events', () => {
  it('takes requests from the event stream and answers them', async () => {
    const relay = await openTestRelay('memory');
    const server = await listen(relay.app);
    const user = generateUserKeys();
    const events: WorkerEvent[] = [];
    const config = await checkWorkerConfig(
      {
        ...base(),
        relay: server.url,
        intake: 'sse',
        fingerprint: { level: 4 },
        keyFile: join(dir, 'sse-key.json'),
        auth: [{ key: toBase64url(user.publicKey), allow: { fs: ['list'] } }],
      },
      dir,
      'worker.yml',
    );
    const worker = await startWorker({ config, emit: (event) => events.push(event) });
    try {
      await waitFor(() => events.some((event) => event.type === 'published'), 'the descriptor');
      const client = await connectWorker(worker.address, { user });
      expect(await client.request(REQUEST_TYPES.fs('list'), { path: '/' })).toMatchObject({
        entries: [{ name: 'docs' }],
      });
    } finally {
      await worker.stop();
      await server.close();
      await relay.dispose();
    }
  });

  function base() {
    return { receivers: { fs: { roots: { docs: './docs' } } } };
  }
});
