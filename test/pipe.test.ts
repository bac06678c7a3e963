// The built-in pipe as clients see it: /pipe/ redirects and /stream/ transfers, on real servers on port 0.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request,
  type Server,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { promisify } from 'node:util';
import express, { type ErrorRequestHandler } from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { composeRelay } from '../src/compose.js';
import type { Config } from '../src/config.js';
import { continueUnlessPipe, createPipeRouter, type PipeRouter } from '../src/http/pipe-routes.js';
import { createKeyring } from '../src/keys.js';
import {
  forgedKey,
  openTestBackend,
  randomSecret,
  silentLogger,
  sleep,
  tempDir,
  testConfig,
  waitFor,
} from './helpers.js';

const run = promisify(execFile);

interface Relay {
  url: string;
  router: PipeRouter;
  keys: () => { private: string; public: string };
  close: () => Promise<void>;
}

const opened: Relay[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((relay) => relay.close()));
});

const renderErrors: ErrorRequestHandler = (error, _req, res, next) => {
  if (res.headersSent) {
    next(error);
    return;
  }
  if (error.retryAfterSeconds !== undefined) res.set('Retry-After', String(error.retryAfterSeconds));
  res.status(error.statusCode ?? 500).json(error.toJSON?.() ?? {});
};

/** The router alone on a tiny app; `publicUrl: 'self'` sets DEADROP_PUBLIC_URL to the server's own URL. */
async function openRelay(
  options: {
    config?: Partial<Omit<Config, 'publicUrl'>>;
    publicUrl?: 'self';
    registry?: 'memory' | 'redis';
    secret?: string;
  } = {},
): Promise<Relay> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const secret = options.secret ?? randomSecret();
  const config = testConfig({ ...options.config, publicUrl: options.publicUrl === 'self' ? url : undefined });
  const { backend, dispose } = await openTestBackend(options.registry ?? 'memory', { config });
  const { relay: core } = composeRelay({ config, backend, secret, logger: silentLogger });
  const router = createPipeRouter({ config, relay: core, logger: silentLogger });
  const app = express();
  app.set('trust proxy', false);
  app.use(router);
  app.use(renderErrors);
  server.on('request', app);
  server.on('checkContinue', continueUnlessPipe(app));
  const keyring = createKeyring(secret);
  const relay = {
    url,
    router,
    keys: () => keyring.issue(),
    close: async () => {
      router.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await dispose();
    },
  };
  opened.push(relay);
  return relay;
}

/** One request without keep-alive; resolves with the response head, the body still to read. */
function send(
  url: string,
  method: string,
  options: { body?: Buffer | Readable; headers?: Record<string, string> } = {},
): { response: Promise<IncomingMessage>; abort: () => void } {
  const req = request(url, { method, agent: false, headers: options.headers });
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
  if (options.body instanceof Readable) {
    // Headers go out now, even before the body's first byte, as a streaming client sends them.
    req.flushHeaders();
    options.body.pipe(req);
  } else req.end(options.body);
  return { response, abort: () => req.destroy() };
}

/** The whole body, and whether it ended cleanly (false: the connection was cut first). */
function readBody(response: IncomingMessage): Promise<{ body: Buffer; complete: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    response.on('data', (chunk: Buffer) => chunks.push(chunk));
    response.on('error', () => {});
    response.once('close', () => resolve({ body: Buffer.concat(chunks), complete: response.complete }));
  });
}

async function readJson(response: IncomingMessage): Promise<{ statusCode: number; message: string }> {
  return JSON.parse((await readBody(response)).body.toString());
}

/** Asks /pipe/<key> and returns the redirect's Location as given. */
async function pipeLocation(url: string, key: string, method = 'GET', headers?: Record<string, string>) {
  const body = method === 'GET' ? undefined : Buffer.from('ignored');
  const response = await send(`${url}/pipe/${key}`, method, { body, ...(headers && { headers }) }).response;
  await readBody(response);
  expect(response.statusCode).toBe(307);
  return response.headers.location as string;
}

/** Asks /pipe/<key> and returns where the redirect leads, resolved as a client resolves it. */
async function pipe(url: string, key: string, method = 'GET'): Promise<string> {
  return new URL(await pipeLocation(url, key, method), url).href;
}

/** True when `promise` has not settled within `ms`. */
const stillPending = (promise: Promise<unknown>, ms = 300) =>
  Promise.race([promise.then(() => false), sleep(ms).then(() => true)]);

/** A body the test writes to as it pleases, to hold a stream open mid-transfer. */
const manualBody = () => new PassThrough();

describe.each(['memory', 'redis'] as const)('pairing at /pipe/ (%s registry)', (registry) => {
  it('sends both sides of one pair to the same /stream/ token, on the instance’s own base URL', async () => {
    const relay = await openRelay({ registry });
    const keys = relay.keys();
    const senderLocation = await pipe(relay.url, keys.public, 'POST');
    expect(senderLocation).toMatch(new RegExp(`^${relay.url}/stream/[A-Za-z0-9_-]{22}$`));
    expect(await pipe(relay.url, keys.private, 'GET')).toBe(senderLocation);
    expect(await relay.router.waitingTokens(keys.public)).toBe(0);
  });

  it('without DEADROP_PUBLIC_URL, redirects to a relative /stream/ path, whatever the Host header says', async () => {
    const relay = await openRelay({ registry });
    const keys = relay.keys();
    const location = await pipeLocation(relay.url, keys.public, 'POST', { host: 'evil.example' });
    expect(location).toMatch(/^\/stream\/[A-Za-z0-9_-]{22}$/);
  });

  it('pairs the owner’s POST with a public GET, and PUT like POST', async () => {
    const relay = await openRelay({ registry });
    const keys = relay.keys();
    const receiverLocation = await pipe(relay.url, keys.public, 'GET');
    expect(await pipe(relay.url, keys.private, 'PUT')).toBe(receiverLocation);
    // A public sender and the owner's receiver are another pipe of the same key pair.
    expect(await pipe(relay.url, keys.public, 'POST')).not.toBe(receiverLocation);
  });

  it('refuses a 6th waiting token for one key and method with a 429, and pairs with the oldest', async () => {
    const relay = await openRelay({ registry });
    const keys = relay.keys();
    const tokens = [];
    for (let n = 0; n < 5; n++) tokens.push(await pipe(relay.url, keys.private, 'GET'));
    expect(new Set(tokens).size).toBe(5);
    const sixth = await send(`${relay.url}/pipe/${keys.private}`, 'GET').response;
    expect(sixth.statusCode).toBe(429);
    expect(sixth.headers['retry-after']).toBe('5');
    expect(await readJson(sixth)).toEqual({
      statusCode: 429,
      error: 'Too Many Requests',
      message: '5 pipes already wait at this key for this method (DEADROP_PIPE_MAX); retry in 5 s.',
      code: 'too_many_pipes',
    });
    expect(await pipe(relay.url, keys.private, 'POST')).not.toContain(tokens[0]);
    expect(await pipe(relay.url, keys.public, 'PUT')).toBe(tokens[0]);
    expect(await pipe(relay.url, keys.public, 'POST')).toBe(tokens[1]);
  });

  it('expires a token after DEADROP_PIPE_TTL: the waiting receiver gets a 408, the token a 404', async () => {
    const relay = await openRelay({ registry, config: { pipeTtlSeconds: 1 } });
    const keys = relay.keys();
    const location = await pipe(relay.url, keys.private, 'GET');
    const started = Date.now();
    const waiting = await send(location, 'GET').response;
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(waiting.statusCode).toBe(408);
    expect((await readJson(waiting)).message).toContain('DEADROP_PIPE_TTL');
    expect(relay.router.streams()).toEqual({ held: 0, waiting: 0 });
    expect(await relay.router.waitingTokens(keys.public)).toBe(0);
    const late = await send(location, 'POST', { body: Buffer.from('late') }).response;
    expect(late.statusCode).toBe(404);
    // A new arrival gets a new token rather than the expired one.
    expect(await pipe(relay.url, keys.public, 'POST')).not.toBe(location);
  });
});

describe('streaming at /stream/', () => {
  it('sender first: the sender’s 200 comes at once, the receiver gets the bytes, the sender a report', async () => {
    const relay = await openRelay();
    const keys = relay.keys();
    const location = await pipe(relay.url, keys.public, 'POST');
    const sender = await send(location, 'POST', { body: Buffer.from('hello pipe') }).response;
    expect(sender.statusCode).toBe(200);
    expect(sender.headers['content-type']).toBe('text/plain; charset=utf-8');
    const senderReport = readBody(sender);
    expect(relay.router.streams()).toEqual({ held: 1, waiting: 1 });

    expect(await pipe(relay.url, keys.private, 'GET')).toBe(location);
    const receiver = await send(location, 'GET').response;
    expect(receiver.statusCode).toBe(200);
    expect(receiver.headers['content-type']).toBe('application/octet-stream');
    expect((await readBody(receiver)).body.toString()).toBe('hello pipe');
    const report = await senderReport;
    expect(report.complete).toBe(true);
    expect(report.body.toString()).toMatch(
      /^Waiting for the receiver .*\nThe receiver is here.*\nDone: 10 bytes sent\.\n$/,
    );
    expect(relay.router.streams()).toEqual({ held: 0, waiting: 0 });
  });

  it('receiver first: its headers wait for the sender, then carry the sender’s Content-Type', async () => {
    const relay = await openRelay();
    const keys = relay.keys();
    const location = await pipe(relay.url, keys.private, 'GET');
    const receiver = send(location, 'GET').response;
    expect(await stillPending(receiver)).toBe(true);
    expect(relay.router.streams()).toEqual({ held: 1, waiting: 1 });

    const sender = await send(await pipe(relay.url, keys.public, 'PUT'), 'PUT', {
      body: Buffer.from('{"a":1}'),
      headers: { 'content-type': 'application/json' },
    }).response;
    expect(sender.statusCode).toBe(200);
    const received = await receiver;
    expect(received.headers['content-type']).toBe('application/json');
    expect((await readBody(received)).body.toString()).toBe('{"a":1}');
    expect((await readBody(sender)).body.toString()).toContain('Done: 7 bytes sent.');
  });

  it('receiver first: once the sender is there its headers leave at once, before any byte', async () => {
    const relay = await openRelay();
    const keys = relay.keys();
    const location = await pipe(relay.url, keys.private, 'GET');
    const receiver = send(location, 'GET').response;
    await waitFor(() => relay.router.streams().waiting === 1, 'the receiver to wait');
    const body = manualBody();
    const sender = await send(location, 'POST', { body, headers: { 'content-type': 'text/csv' } }).response;
    const received = await receiver;
    expect(received.headers['content-type']).toBe('text/csv');
    const outcome = readBody(received);
    body.end('a,b\n');
    expect((await outcome).body.toString()).toBe('a,b\n');
    await readBody(sender);
  });

  it('an empty body arrives as an empty 200', async () => {
    const relay = await openRelay();
    const keys = relay.keys();
    const location = await pipe(relay.url, keys.public, 'PUT');
    const sender = await send(location, 'PUT', { body: Buffer.alloc(0) }).response;
    const report = readBody(sender);
    const receiver = await send(await pipe(relay.url, keys.private, 'GET'), 'GET').response;
    expect(receiver.statusCode).toBe(200);
    expect(receiver.headers['content-length']).toBe('0');
    expect((await readBody(receiver)).body.length).toBe(0);
    expect((await report).body.toString()).toContain('Done: 0 bytes sent.');
  });

  it('passes Content-Type, Content-Disposition and Content-Length through to the receiver', async () => {
    const relay = await openRelay();
    const keys = relay.keys();
    const location = await pipe(relay.url, keys.private, 'POST');
    const headers: IncomingHttpHeaders = {};
    const receiver = send(location, 'GET').response.then((response) => {
      Object.assign(headers, response.headers);
      return readBody(response);
    });
    await waitFor(() => relay.router.streams().waiting === 1, 'the receiver to wait');
    const sender = await send(location, 'POST', {
      body: Buffer.from('%PDF-1.7'),
      headers: { 'content-type': 'application/pdf', 'content-disposition': 'attachment; filename="a.pdf"' },
    }).response;
    await readBody(sender);
    expect((await receiver).body.toString()).toBe('%PDF-1.7');
    expect(headers['content-type']).toBe('application/pdf');
    expect(headers['content-disposition']).toBe('attachment; filename="a.pdf"');
    expect(headers['content-length']).toBe('8');
  });

  it('carries 50 MiB of random bytes intact (same SHA-256), streamed rather than buffered', async () => {
    const relay = await openRelay();
    const keys = relay.keys();
    const size = 50 * 1024 * 1024;
    const sentHash = createHash('sha256');
    let produced = 0;
    const body = new Readable({
      read() {
        if (produced >= size) {
          this.push(null);
          return;
        }
        const chunk = randomBytes(Math.min(256 * 1024, size - produced));
        produced += chunk.length;
        sentHash.update(chunk);
        this.push(chunk);
      },
    });
    const location = await pipe(relay.url, keys.public, 'POST');
    const sender = send(location, 'POST', { body }).response.then(readBody);
    expect(await pipe(relay.url, keys.private, 'GET')).toBe(location);
    const receiver = await send(location, 'GET').response;
    const receivedHash = createHash('sha256');
    let received = 0;
    for await (const chunk of receiver) {
      receivedHash.update(chunk as Buffer);
      received += (chunk as Buffer).length;
    }
    expect(received).toBe(size);
    expect(receivedHash.digest('hex')).toBe(sentHash.digest('hex'));
    expect((await sender).body.toString()).toContain(`Done: ${size} bytes sent.`);
  });

  it('answers a second receiver and a second sender on a busy token with a 409', async () => {
    const relay = await openRelay();
    const keys = relay.keys();
    const location = await pipe(relay.url, keys.private, 'GET');
    const receiver = send(location, 'GET').response;
    await waitFor(() => relay.router.streams().waiting === 1, 'the receiver to wait');
    const secondReceiver = await send(location, 'GET').response;
    expect(secondReceiver.statusCode).toBe(409);
    expect(await readJson(secondReceiver)).toMatchObject({ statusCode: 409, error: 'Conflict' });

    const body = manualBody();
    const sender = await send(location, 'POST', { body }).response;
    body.write('first half, ');
    const streaming = await receiver;
    const busySender = await send(location, 'POST', { body: Buffer.from('intruder') }).response;
    expect(busySender.statusCode).toBe(409);
    expect((await readJson(busySender)).message).toBe('This stream already has its sender and receiver.');
    expect((await send(location, 'GET').response).statusCode).toBe(409);
    body.end('second half');
    expect((await readBody(streaming)).body.toString()).toBe('first half, second half');
    await readBody(sender);
    expect((await send(location, 'GET').response).statusCode).toBe(404);
  });

  it('receiver leaving mid-stream: the sender’s transfer is cut and nothing waits behind', async () => {
    const relay = await openRelay();
    const keys = relay.keys();
    const location = await pipe(relay.url, keys.public, 'POST');
    const body = manualBody();
    const sender = await send(location, 'POST', { body }).response;
    const senderOutcome = readBody(sender);
    const receiving = send(location, 'GET');
    const receiver = await receiving.response;
    body.write(randomBytes(64 * 1024));
    await new Promise((resolve) => receiver.once('data', resolve));
    receiving.abort();
    expect((await senderOutcome).complete).toBe(false);
    body.destroy();
    await waitFor(() => relay.router.streams().held === 0, 'the token to be freed');
    expect(relay.router.streams()).toEqual({ held: 0, waiting: 0 });
    expect(await relay.router.waitingTokens(keys.public)).toBe(0);
    expect((await send(location, 'GET').response).statusCode).toBe(404);
  });

  it('sender leaving mid-stream: the receiver sees a truncated transfer, not a clean end', async () => {
    const relay = await openRelay();
    const keys = relay.keys();
    const location = await pipe(relay.url, keys.private, 'GET');
    const receiver = send(location, 'GET').response;
    await waitFor(() => relay.router.streams().waiting === 1, 'the receiver to wait');
    const body = manualBody();
    const sending = send(location, 'POST', { body });
    await sending.response;
    body.write('some bytes before the sender vanishes');
    const received = await receiver;
    const outcome = readBody(received);
    await new Promise((resolve) => received.once('data', resolve));
    sending.abort();
    const { body: got, complete } = await outcome;
    expect(complete).toBe(false);
    expect(got.toString()).toBe('some bytes before the sender vanishes');
    await waitFor(() => relay.router.streams().held === 0, 'the token to be freed');
    expect(relay.router.streams()).toEqual({ held: 0, waiting: 0 });
  });

  it('a waiting side that leaves frees its token: the other side then finds nothing', async () => {
    const relay = await openRelay();
    const keys = relay.keys();
    const location = await pipe(relay.url, keys.private, 'GET');
    const waiting = send(location, 'GET');
    waiting.response.catch(() => {});
    await waitFor(() => relay.router.streams().waiting === 1, 'the receiver to wait');
    waiting.abort();
    await waitFor(() => relay.router.streams().held === 0, 'the token to be freed');
    expect(await relay.router.waitingTokens(keys.public)).toBe(0);
    expect((await send(location, 'POST', { body: Buffer.from('x') }).response).statusCode).toBe(404);
    expect(await pipe(relay.url, keys.public, 'POST')).not.toBe(location);
  });

  it('a sender left waiting past DEADROP_PIPE_TTL gets the 408 as its last line and a cut transfer', async () => {
    const relay = await openRelay({ config: { pipeTtlSeconds: 1 } });
    const keys = relay.keys();
    const location = await pipe(relay.url, keys.public, 'POST');
    const body = manualBody();
    const sender = await send(location, 'POST', { body }).response;
    body.write('never delivered');
    expect(sender.statusCode).toBe(200);
    const { body: report, complete } = await readBody(sender);
    expect(complete).toBe(false);
    const lines = report.toString().trim().split('\n');
    expect(lines[0]).toBe('Waiting for the receiver (up to 1 s).');
    expect(JSON.parse(lines.at(-1) as string)).toMatchObject({ statusCode: 408, error: 'Request Timeout' });
    body.destroy();
    expect(relay.router.streams()).toEqual({ held: 0, waiting: 0 });
    expect(await relay.router.waitingTokens(keys.public)).toBe(0);
  });
});

describe('refusals', () => {
  it('answers a forged key with a 401, other methods with a 405 and Allow, unknown tokens with a 404', async () => {
    const relay = await openRelay();
    const forged = await send(`${relay.url}/pipe/${forgedKey()}`, 'POST', { body: Buffer.from('x') })
      .response;
    expect(forged.statusCode).toBe(401);
    expect((await readJson(forged)).message).toContain('not issued by this relay');

    for (const path of [`/pipe/${relay.keys().private}`, `/stream/${'A'.repeat(22)}`]) {
      for (const method of ['DELETE', 'PATCH', 'HEAD']) {
        const refused = await send(relay.url + path, method).response;
        expect(refused.statusCode).toBe(405);
        expect(refused.headers.allow).toBe('GET, POST, PUT');
        await readBody(refused);
      }
    }
    for (const token of ['A'.repeat(22), 'not-a-token']) {
      const unknown = await send(`${relay.url}/stream/${token}`, 'GET').response;
      expect(unknown.statusCode).toBe(404);
      expect(await readJson(unknown)).toMatchObject({ statusCode: 404, error: 'Not Found' });
    }
  });
});

describe('across instances and relays', () => {
  it('two instances on one Redis: the second arrival on B is sent to A, where the first one waits', async () => {
    const secret = randomSecret();
    const a = await openRelay({ registry: 'redis', publicUrl: 'self', secret });
    const b = await openRelay({ registry: 'redis', publicUrl: 'self', secret });
    const keys = a.keys();
    const location = await pipe(a.url, keys.private, 'GET');
    expect(location.startsWith(`${a.url}/stream/`)).toBe(true);
    expect(await pipe(b.url, keys.public, 'POST')).toBe(location);

    const receiver = send(location, 'GET').response;
    const sender = await send(location, 'POST', { body: Buffer.from('across') }).response;
    expect((await readBody(await receiver)).body.toString()).toBe('across');
    await readBody(sender);
    expect(b.router.streams().held).toBe(0);
    expect(await a.router.waitingTokens(keys.public)).toBe(0);
  });

  it('DEADROP_PIPING_URL: both sides are redirected to <piping url>/<token> instead of /stream/', async () => {
    const relay = await openRelay({ config: { pipingUrl: 'https://ppng.example/relay' } });
    const keys = relay.keys();
    const location = await pipe(relay.url, keys.private, 'POST');
    expect(location).toMatch(/^https:\/\/ppng\.example\/relay\/[A-Za-z0-9_-]{22}$/);
    expect(await pipe(relay.url, keys.public, 'GET')).toBe(location);
    expect(relay.router.streams().held).toBe(0);
  });

  it('curl -L on both sides moves a 3 MiB file intact', async () => {
    const relay = await openRelay();
    const keys = relay.keys();
    const dir = await tempDir();
    try {
      const file = join(dir, 'in.bin');
      const out = join(dir, 'out.bin');
      const data = randomBytes(3 * 1024 * 1024);
      await writeFile(file, data);
      const receiver = run('curl', ['-sS', '-f', '-L', `${relay.url}/pipe/${keys.private}`, '-o', out]);
      await waitFor(() => relay.router.streams().waiting === 1, 'curl to wait as the receiver');
      const sender = await run('curl', [
        '-sS',
        '-f',
        '-L',
        '--data-binary',
        `@${file}`,
        `${relay.url}/pipe/${keys.public}`,
      ]);
      await receiver;
      expect(sender.stdout).toContain(`Done: ${data.length} bytes sent.`);
      expect(
        createHash('sha256')
          .update(await readFile(out))
          .digest('hex'),
      ).toBe(createHash('sha256').update(data).digest('hex'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('curl -L -T - streams from stdin, since /pipe/ answers its 307 before asking for the body', async () => {
    const relay = await openRelay();
    const keys = relay.keys();
    const data = randomBytes(2 * 1024 * 1024);
    const sender = execFile('curl', ['-sS', '-f', '-L', '-T', '-', `${relay.url}/pipe/${keys.private}`]);
    const sent = new Promise<number | null>((resolve) => sender.once('exit', resolve));
    sender.stdin?.end(data);
    await waitFor(() => relay.router.streams().waiting === 1, 'curl to wait as the sender');
    const receiver = await send(await pipe(relay.url, keys.public, 'GET'), 'GET').response;
    const { body } = await readBody(receiver);
    expect(await sent).toBe(0);
    expect(body.equals(data)).toBe(true);
  });
});
