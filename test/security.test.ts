// Security: forged keys are refused, signatures are checked in constant time, and logs never hold a private key.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, get, type IncomingMessage, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { Writable } from 'node:stream';
import { format } from 'node:util';
import fc from 'fast-check';
import { pino } from 'pino';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { guardStore } from '../src/backend/guarded-store.js';
import { memoryLimiters } from '../src/backend/limiters.js';
import type { Backend } from '../src/backend/open-backend.js';
import { createOutageWatch } from '../src/backend/outage.js';
import { composeRelay } from '../src/compose.js';
import type { Config } from '../src/config.js';
import { createKeyring, type KeyPair } from '../src/keys.js';
import { createLocalNotifier } from '../src/live/notifier.js';
import { createMemoryTokenRegistry } from '../src/pipe/token-registry.js';
import { openSqliteStore } from '../src/store/sqlite-store.js';
import type { Store } from '../src/store/store.js';
import { createWebhookSender } from '../src/webhooks/webhook-sender.js';
import { listen, openTestRelay, randomSecret, sleep, testConfig, waitFor } from './helpers.js';

// Hoisted above the imports by vitest, and local to this file: keys.ts gets counting timingSafeEqual and createHmac.
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  return { ...real, timingSafeEqual: vi.fn(real.timingSafeEqual), createHmac: vi.fn(real.createHmac) };
});

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const SIG_LENGTH = 10;
const FORGERIES = 100_000;
const compare = vi.mocked(timingSafeEqual);
const hmac = vi.mocked(createHmac);

const replaceAt = (key: string, at: number, char: string) => key.slice(0, at) + char + key.slice(at + 1);

/** Picks `count` items spread evenly over `list`. */
const spreadSample = <T>(list: T[], count: number): T[] =>
  Array.from({ length: count }, (_, n) => list[Math.floor((n * list.length) / count)] as T);

/** Keys that look right and that no keyring of this secret issued, by family, 100 000 in all. */
function forgeKeys(pairs: KeyPair[], foreign: KeyPair[]): Record<string, string[]> {
  const keys = pairs.flatMap((pair) => [pair.private, pair.public]);
  const substitution: string[] = [];
  const transposition: string[] = [];
  for (const key of keys) {
    for (let at = 0; at < key.length; at++) {
      for (const char of BASE64URL) if (char !== key[at]) substitution.push(replaceAt(key, at, char));
      const [here, next] = [key[at] as string, key[at + 1]];
      if (next !== undefined && next !== here)
        transposition.push(key.slice(0, at) + next + here + key.slice(at + 2));
    }
  }
  const swappedSignature: string[] = [];
  const swappedSignatureHalves: string[] = [];
  for (const signed of keys) {
    for (const other of keys) {
      if (other === signed) continue;
      swappedSignature.push(signed.slice(0, SIG_LENGTH) + other.slice(SIG_LENGTH));
      swappedSignatureHalves.push(
        signed.slice(0, SIG_LENGTH / 2) + other.slice(SIG_LENGTH / 2, SIG_LENGTH) + signed.slice(SIG_LENGTH),
      );
    }
  }
  // A public key's rand under its private key's signature, and the other way round.
  const crossedType = pairs.flatMap((pair) => [
    pair.private.slice(0, SIG_LENGTH) + pair.public.slice(SIG_LENGTH),
    pair.public.slice(0, SIG_LENGTH) + pair.private.slice(SIG_LENGTH),
  ]);
  const foreignSecret = foreign.flatMap((pair) => [pair.private, pair.public]);
  const families = {
    substitution,
    transposition,
    swappedSignature,
    swappedSignatureHalves,
    crossedType,
    foreignSecret,
  };
  const sofar = Object.values(families).reduce((sum, family) => sum + family.length, 0);
  const random = fc.sample(fc.string({ unit: fc.constantFrom(...BASE64URL), minLength: 32, maxLength: 32 }), {
    numRuns: FORGERIES - sofar,
    seed: 424_242,
  });
  return { ...families, random };
}

describe('key forgery', () => {
  const secret = randomSecret();
  const keyring = createKeyring(secret);
  const pairs = Array.from({ length: 12 }, () => keyring.issue());
  let families: Record<string, string[]>;
  let forged: string[];
  beforeAll(() => {
    const foreign = Array.from({ length: 500 }, () => createKeyring(randomSecret()).issue());
    families = forgeKeys(pairs, foreign);
    forged = Object.values(families).flat();
  });
  afterEach(() => compare.mockClear());

  it('accepts none of 100 000 random, mutated, swapped and foreign keys', () => {
    expect(forged).toHaveLength(FORGERIES);
    for (const family of Object.values(families)) expect(family.length).toBeGreaterThan(0);
    const accepted = forged.filter((key, n) => {
      if (n % 10_000 === 0) compare.mockClear(); // the mock keeps every call: 200 000 of them
      return keyring.inspect(key) !== undefined;
    });
    expect(accepted).toEqual([]);
  });

  it('answers 401 over HTTP to a sample of 500 forged keys, on a public write and a private read', async () => {
    const relay = await openTestRelay('memory', { secret });
    try {
      const sample = Object.values(families).flatMap((family) => family.slice(0, 20));
      sample.push(...spreadSample(forged, 500 - sample.length));
      expect(sample).toHaveLength(500);
      const answers = new Set<string>();
      for (const key of sample) {
        const write = await relay.agent.post(`/public/${key}`).send({ forged: true });
        const read = await relay.agent.get(`/private/${key}`);
        answers.add(`POST ${write.status} ${write.body.statusCode} ${write.body.error}`);
        answers.add(`GET ${read.status} ${read.body.statusCode} ${read.body.error}`);
      }
      expect([...answers]).toEqual(['POST 401 401 Unauthorized', 'GET 401 401 Unauthorized']);
    } finally {
      await relay.dispose();
    }
  });
});

describe('signature checks', () => {
  const secret = randomSecret();
  const keyring = createKeyring(secret);
  const pair = keyring.issue();

  /**
   * What `inspect` answers for `key`, the byte lengths of each pair of buffers it compared, its HMACs:
   * on a keyring of the same secret that has verified no key yet, unless `on` is given.
   */
  const inspectCounting = (key: string, on = createKeyring(secret)) => {
    compare.mockClear();
    hmac.mockClear();
    const info = on.inspect(key);
    const hmacs = hmac.mock.calls.length;
    const comparisons = compare.mock.calls.map(([given, expected]) => [
      given.byteLength,
      expected.byteLength,
    ]);
    return { info, comparisons, hmacs };
  };
  const TWO_WHOLE_SIGNATURES = [
    [SIG_LENGTH, SIG_LENGTH],
    [SIG_LENGTH, SIG_LENGTH],
  ];

  /** `key` with its signature right on the first `right` characters and wrong on every other one. */
  const rightFor = (key: string, right: number) => {
    let forged = key;
    for (let at = right; at < SIG_LENGTH; at++) {
      forged = replaceAt(forged, at, BASE64URL[(BASE64URL.indexOf(key[at] as string) + 1) % 64] as string);
    }
    return forged;
  };

  it('compares both whole signatures for a valid private key and a valid public key', () => {
    // A valid private key costs one more HMAC after the checks: the one that derives its public key.
    expect(inspectCounting(pair.private)).toEqual({
      info: { type: 'private', public: pair.public },
      comparisons: TWO_WHOLE_SIGNATURES,
      hmacs: 3,
    });
    expect(inspectCounting(pair.public)).toEqual({
      info: { type: 'public' },
      comparisons: TWO_WHOLE_SIGNATURES,
      hmacs: 2,
    });
  });

  it('does the same work whether 0, 5, 9 or all 10 signature characters are right', () => {
    for (const key of [pair.private, pair.public]) {
      for (let right = 0; right < SIG_LENGTH; right++) {
        const forged = rightFor(key, right);
        expect(forged.slice(0, right)).toBe(key.slice(0, right));
        expect(inspectCounting(forged)).toEqual({
          info: undefined,
          comparisons: TWO_WHOLE_SIGNATURES,
          hmacs: 2,
        });
      }
      // Right signature, rand off by one character: the signature is as wrong as a random one.
      const otherRand = replaceAt(key, 31, key[31] === 'A' ? 'B' : 'A');
      expect(inspectCounting(otherRand)).toEqual({
        info: undefined,
        comparisons: TWO_WHOLE_SIGNATURES,
        hmacs: 2,
      });
    }
  });

  it('answers a genuine key it has verified before from memory, and never a forged one', () => {
    for (const key of [pair.private, pair.public]) {
      expect(inspectCounting(key, keyring).comparisons).toEqual(TWO_WHOLE_SIGNATURES);
      expect(inspectCounting(key, keyring)).toEqual({
        info: keyring.inspect(key),
        comparisons: [],
        hmacs: 0,
      });
      const forged = rightFor(key, SIG_LENGTH - 1);
      for (let again = 0; again < 3; again++) {
        expect(inspectCounting(forged, keyring)).toEqual({
          info: undefined,
          comparisons: TWO_WHOLE_SIGNATURES,
          hmacs: 2,
        });
      }
    }
  });

  it('compares two whole signatures for every well-formed key it has not verified before, whatever it is', () => {
    const wellFormed = fc.oneof(
      fc.string({ unit: fc.constantFrom(...BASE64URL), minLength: 32, maxLength: 32 }),
      fc
        .tuple(fc.constantFrom(pair.private, pair.public), fc.integer({ min: 0, max: SIG_LENGTH }))
        .map(([key, right]) => rightFor(key, right)),
    );
    fc.assert(
      fc.property(wellFormed, (key) => {
        expect(inspectCounting(key).comparisons).toEqual(TWO_WHOLE_SIGNATURES);
      }),
      { numRuns: 2000, seed: 7 },
    );
  });

  it('rejects a key of the wrong length or charset before any signature work', () => {
    const malformed = [
      '',
      'short',
      pair.private.slice(0, 31),
      `${pair.private}A`,
      `${pair.public}${pair.public}`,
      replaceAt(pair.private, 12, '+'),
      replaceAt(pair.private, 0, '/'),
      replaceAt(pair.public, 31, '='),
      replaceAt(pair.public, 5, '.'),
      replaceAt(pair.private, 20, '\u00e9'),
      replaceAt(pair.private, 3, '\u0000'),
      replaceAt(pair.private, 9, ' '),
      `${pair.private}\n`,
      ' '.repeat(32),
      '\u{1F642}'.repeat(16),
    ];
    const noWork = { info: undefined, comparisons: [], hmacs: 0 };
    for (const key of malformed) expect(inspectCounting(key)).toEqual(noWork);
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 64 }).filter((key) => !/^[A-Za-z0-9_-]{32}$/.test(key)),
        (key) => {
          expect(inspectCounting(key)).toEqual(noWork);
        },
      ),
      { numRuns: 2000, seed: 8 },
    );
  });
});

// ---------------------------------------------------------------------------------------------------------

/** Every line pino writes and, once `spyOnConsole()` ran, whatever reaches the console. */
function captureLogs() {
  const lines: string[] = [];
  const logger = pino(
    { level: 'trace' },
    new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    }),
  );
  const spyOnConsole = () =>
    (['log', 'info', 'warn', 'error', 'debug'] as const).map((method) =>
      vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
        lines.push(`console.${method}: ${format(...args)}\n`);
      }),
    );
  return { lines, logger, spyOnConsole };
}

/** The lines of `text` holding a private key or 16 characters in a row of one. */
function leaksOf(text: string, privateKeys: string[]): string[] {
  const lines = text.split('\n');
  return privateKeys.flatMap((key) => {
    const pieces = Array.from({ length: key.length - 15 }, (_, at) => key.slice(at, at + 16));
    return lines.filter((line) => pieces.some((piece) => line.includes(piece)));
  });
}

type FailureMode = 'none' | 'backend' | 'bug';

/** A store whose calls fail on demand with errors that quote their arguments, as database drivers do. */
function failingOnDemand(store: Store, state: { mode: FailureMode }, mode: FailureMode): Store {
  const wrapped = {} as Record<string, unknown>;
  for (const [name, method] of Object.entries(store) as [
    string,
    (...args: unknown[]) => Promise<unknown>,
  ][]) {
    wrapped[name] = async (...args: unknown[]) => {
      if (state.mode === mode && name !== 'close') {
        const message = `${name}(${JSON.stringify(args)}) failed`;
        throw mode === 'bug' ? new TypeError(message) : new Error(`SQLITE_IOERR: ${message}`);
      }
      return method(...args);
    };
  }
  return wrapped as unknown as Store;
}

/** A webhook receiver on loopback: /ok answers 200, /fail 500, /slow never. */
async function startReceiver(): Promise<{ origin: string; server: Server }> {
  const server = createServer((req, res) => {
    req.resume();
    if (req.url?.startsWith('/slow')) return;
    res.statusCode = req.url?.startsWith('/ok') ? 200 : 500;
    res.end(req.url?.startsWith('/ok') ? 'thanks' : 'nope');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

/** Opens an event stream (Accept: text/event-stream) and collects what arrives until `close()`. */
async function openEventStream(url: string, headers: Record<string, string> = {}) {
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    get(url, { headers: { accept: 'text/event-stream', ...headers } }, resolve).on('error', reject);
  });
  let text = '';
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => {
    text += chunk;
  });
  res.on('error', () => {});
  return { status: res.statusCode, text: () => text, close: () => res.destroy() };
}

/** Announces `announced` body bytes, sends `sent`, then hangs up. */
async function hangUpMidBody(url: string, path: string, announced: number, sent: string) {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  socket.on('error', () => {});
  socket.write(
    `POST ${path} HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: text/plain\r\nContent-Length: ${announced}\r\n\r\n${sent}`,
  );
  await sleep(50);
  socket.destroy();
  await sleep(20);
}

describe('logs', () => {
  const secret = randomSecret();
  const keyring = createKeyring(secret);
  const logs = captureLogs();
  const failure: { mode: FailureMode } = { mode: 'none' };
  const outage = createOutageWatch('the memory store', logs.logger);
  const store = failingOnDemand(
    guardStore(failingOnDemand(openSqliteStore(':memory:'), failure, 'backend'), outage),
    failure,
    'bug',
  );
  const backend: Backend = {
    store,
    outage,
    pipes: createMemoryTokenRegistry({ ttlMs: 60_000, max: 5 }),
    notifier: createLocalNotifier(),
    limiters: memoryLimiters,
    health: () => ({ kind: 'memory', up: !outage.down }),
    close: () => store.close(),
  };
  const issued: KeyPair[] = [];
  const keys = () => {
    const pair = keyring.issue();
    issued.push(pair);
    return pair;
  };
  const config = (overrides: Partial<Config> = {}) =>
    testConfig({ maxQueue: 3, maxFields: 2, webhookTimeoutMs: 500, sseHeartbeatSeconds: 1, ...overrides });
  let servers: Awaited<ReturnType<typeof listen>>[] = [];
  let receiver: { origin: string; server: Server };
  /** The default relay: webhooks to internal addresses refused. */
  let relay: string;
  /** A relay whose webhooks may reach loopback, so that deliveries to a local receiver run. */
  let hooked: string;
  /** A relay with tight rate limits and bans. */
  let limited: string;

  let consoleSpies: { mockRestore(): void }[] = [];

  beforeAll(async () => {
    consoleSpies = logs.spyOnConsole();
    const app = (overrides: Partial<Config>, webhooks?: ReturnType<typeof createWebhookSender>) =>
      composeRelay({
        config: config(overrides),
        backend,
        secret,
        logger: logs.logger,
        ...(webhooks && { webhooks }),
      }).app;
    receiver = await startReceiver();
    servers = [
      await listen(app({})),
      await listen(app({}, createWebhookSender({ timeoutMs: 500, allowPrivate: true, logger: logs.logger }))),
      await listen(app({ rateLimit: 3, rateWindowSeconds: 60, banAfter: 2, banTimeSeconds: 60 })),
    ];
    [relay, hooked, limited] = servers.map((server) => server.url) as [string, string, string];
  });

  afterAll(async () => {
    for (const spy of consoleSpies) spy.mockRestore();
    for (const server of servers) await server.close();
    receiver.server.closeAllConnections();
    await new Promise((resolve) => receiver.server.close(resolve));
  });

  it('hold no private key after a whole session over every route, error, webhook and stream', async () => {
    const k = keys();
    const other = keys();
    const http = request(relay);
    const json = { note: 'an ordinary item' };

    // Keys and id.
    await http.get('/keys').expect(200);
    await http.get(`/keys/${k.private}`).expect(200);
    await http.get(`/keys/${k.public}`).expect(200);
    await http.get(`/keys/${replaceAt(k.private, 3, k.private[3] === 'A' ? 'B' : 'A')}`).expect(400);
    await http.get('/id').expect(200);

    // Aggregator, with redirects whose URLs carry the private key.
    const ok = `https://client.example/done?key=${k.private}`;
    const err = `https://client.example/failed/${k.private}#${k.private}`;
    const redirects = `?ok=${encodeURIComponent(ok)}&err=${encodeURIComponent(err)}`;
    await http.post(`/public/${k.public}`).send(json).expect(200);
    await http.post(`/public/${k.public}`).type('form').send('a=1&b=2').expect(200);
    await http.post(`/public/${k.public}${redirects}`).type('text').send('text').expect(303);
    await http.post(`/public/${k.private}${redirects}`).send(json).expect(303); // wrong type: to `err`
    await http
      .post(`/public/${k.public}?ok=${encodeURIComponent(k.private)}`)
      .send(json)
      .expect(400);
    await http.post(`/public/${k.public}`).send(json).expect(507); // DEADROP_MAX_QUEUE is 3
    await http.get(`/private/${k.private}?stats`).expect(200);
    await http.get(`/private/${k.private}`).expect(200);
    await http.get(`/private/${k.private}`).expect(404);

    // Long-poll: one that times out, one that an item ends.
    await http.get(`/private/${k.private}?wait=0.1`).expect(404);
    const waiting = http.get(`/private/${k.private}?wait=2`);
    const answered = waiting.then((res) => res.status);
    await sleep(50);
    await http.post(`/public/${k.public}`).send(json).expect(200);
    expect(await answered).toBe(200);

    // Live delivery: an event stream that gets an item, then is aborted; a bad Last-Event-ID.
    const stream = await openEventStream(`${relay}/private/${k.private}`, { 'last-event-id': '0' });
    expect(stream.status).toBe(200);
    await waitFor(() => stream.text().includes('retry:'), 'the event stream to open');
    await http.post(`/public/${k.public}`).send(json).expect(200);
    await waitFor(() => stream.text().includes('data:'), 'the event');
    stream.close();
    await http
      .get(`/private/${k.private}`)
      .set('Accept', 'text/event-stream')
      .set('Last-Event-ID', 'x')
      .expect(400);

    // Key-value.
    await http.post(`/private/${k.private}${redirects}`).send({ published: 1 }).expect(303);
    await http.get(`/public/${k.public}`).expect(200);
    await http.patch(`/private/${k.private}`).expect(200);
    await http.delete(`/private/${k.private}`).expect(204);
    await http.get(`/public/${k.public}`).expect(404);
    await http.patch(`/private/${k.public}`).expect(401);

    // One-to-one.
    await http.post(`/private/${k.private}/uid-1`).send(json).expect(200);
    await http.post(`/private/${k.private}/uid-2`).send(json).expect(200);
    await http.post(`/private/${k.private}/uid-3`).send(json).expect(507); // DEADROP_MAX_FIELDS is 2
    await http.get(`/private/${k.private}/uid-1`).expect(200);
    await http.get(`/public/${k.public}/uid-1`).expect(200);
    await http.get(`/public/${k.public}/uid-1?wait=0.1`).expect(404);
    await http.delete(`/private/${k.private}/uid-2`).expect(204);
    await http.get(`/private/${k.private}/bad%20uid`).expect(400);

    // Errors of every kind, with the private key in the path.
    await http.get(`/public/${k.private}`).expect(401);
    await http.get(`/private/${k.public}`).expect(401);
    await http
      .post(`/private/${k.private}`)
      .set('Content-Type', 'text/plain')
      .send('x'.repeat(20_000))
      .expect(413);
    await http
      .post(`/private/${k.private}`)
      .set('Content-Type', 'text/plain; charset=latin1')
      .send('x')
      .expect(415);
    await http
      .post(`/private/${k.private}`)
      .set('Content-Type', 'application/json')
      .send('{"a":')
      .expect(400);
    await http.post(`/private/${k.private}`).set('Content-Type', 'application/json').send('').expect(400);
    await http.put(`/private/${k.private}`).send(json).expect(405);
    await http.head(`/private/${k.private}`).expect(405);
    await http.get(`/nothing/${k.private}`).expect(404);
    await http.get(`/private/${k.private}/a/b`).expect(404);
    await http.get(`/private/${k.private}?wait=abc`).expect(400);
    await http.get(`/private/${k.private}?wait=0&wait=1`).expect(400);
    await http.get(`/private/${k.private}%zz`).expect(400);
    await http.get(`/private/${k.private}%`).expect(400);
    await hangUpMidBody(relay, `/private/${k.private}`, 100, 'partial');

    // Webhooks refused when registered, with the private key in the URL.
    for (const hook of [
      `http://127.0.0.1:9/hook?key=${k.private}`,
      `http://hook:${k.private}@10.0.0.1/`,
      `http://[::1]/${k.private}`,
      `ftp://192.0.2.1/?key=${k.private}`,
      `http://${k.private}`.padEnd(3000, 'x'),
      k.private,
    ]) {
      await http.get(`/private/${k.private}?hook=${encodeURIComponent(hook)}`).expect(400);
    }
    await http.get(`/private/${k.private}?hook=a&hook=b`).expect(400);

    // Webhooks registered on the relay that may reach loopback: delivered, refused by the receiver,
    // unreachable, too slow; each URL carries the private key in its credentials, path and query.
    const h = request(hooked);
    const hookUrl = (path: string, origin = receiver.origin) =>
      `${origin.replace('//', `//hook:${k.private}@`)}/${path}/${k.private}?key=${k.private}`;
    for (const [path, origin, delivered] of [
      ['ok', receiver.origin, true],
      ['fail', receiver.origin, false],
      ['slow', receiver.origin, false],
      ['closed', 'http://127.0.0.1:1', false],
    ] as const) {
      await h
        .get(`/private/${k.private}?stats&hook=${encodeURIComponent(hookUrl(path, origin))}`)
        .expect(200);
      const res = await h.post(`/public/${k.public}`).send(json).expect(200);
      expect(res.body.webhook).toBe(delivered);
    }
    await h.get(`/private/${k.private}`).expect(200);

    // Rate limits, then a ban.
    const l = request(limited);
    const statuses: number[] = [];
    for (let n = 0; n < 8; n++) statuses.push((await l.get(`/private/${other.private}`)).status);
    expect(statuses).toContain(429);
    expect(statuses.at(-1)).toBe(403);

    // The store fails: a backend error (503, logged once as an outage), then a bug (500, logged with its cause).
    for (const mode of ['backend', 'bug'] as const) {
      failure.mode = mode;
      const status = mode === 'backend' ? 503 : 500;
      await http.get(`/private/${k.private}`).expect(status);
      await http.get(`/private/${k.private}?stats`).expect(status);
      await http.post(`/private/${k.private}`).send(json).expect(status);
      await http.post(`/private/${k.private}/uid-9`).send(json).expect(status);
      await http.post(`/public/${k.public}${redirects}`).send(json).expect(303);
      await http.get(`/private/${k.private}?hook=${encodeURIComponent(hookUrl('ok'))}`).expect(400);
      await h.get(`/private/${k.private}?hook=${encodeURIComponent(hookUrl('ok'))}`).expect(status);
      await http.delete(`/private/${k.private}/uid-1`).expect(status);
    }
    failure.mode = 'none';
    await sleep(100); // the last access-log lines are written when the answers finish

    const text = logs.lines.join('');
    expect(text).toContain('request completed');
    expect(text).toContain('request failed');
    expect(text).toContain('webhook not delivered');
    expect(text).toContain('the memory store is unreachable');
    expect(text).toContain('"statusCode":500');
    expect(
      leaksOf(
        text,
        issued.map((pair) => pair.private),
      ),
    ).toEqual([]);
  }, 30_000);

  it('keeps a private key out of the access log wherever the path puts it', async () => {
    const k = keys();
    const http = request(relay);
    for (const path of [
      `/${k.private}`,
      `/${k.private}/x`,
      `/private%2F${k.private}`,
      `/private%2f${k.private}?stats`,
      `/x;${k.private}`,
      `//${k.private}`,
      `/p/r/i/v/${k.private}`,
    ]) {
      await http.get(path).expect(404);
    }
    await sleep(50);
    expect(leaksOf(logs.lines.join(''), [k.private])).toEqual([]);
  });
});
