// The relay client (sdk/index.ts) against a real relay on port 0: every call, live delivery, pipes, errors, failover.
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { type AddressInfo, connect, createServer as createTcpServer, type Socket } from 'node:net';
import { build } from 'esbuild';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createClient, type DeadropClient, DeadropError } from '../sdk/index.js';
import { listen, openTestRelay, sleep, type TestRelay, waitFor } from './helpers.js';

let relay: TestRelay;
let server: { url: string; close: () => Promise<void> };
let client: DeadropClient;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  relay = await openTestRelay('sqlite', { config: { webhookAllowPrivate: true } });
  server = await listen(relay.app);
  client = createClient(server.url);
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  await server.close();
  await relay.dispose();
});

const urlOf = (listening: Server) => `http://127.0.0.1:${(listening.address() as AddressInfo).port}`;

/** Starts an HTTP server on port 0 that is closed after the test. */
async function serve(handler: Parameters<typeof createServer>[1]): Promise<string> {
  const started = createServer(handler);
  await new Promise<void>((resolve) => started.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        started.closeAllConnections();
        started.close(() => resolve());
      }),
  );
  return urlOf(started);
}

/** A URL where nothing listens: a port that was just closed, so connecting is refused. */
async function deadUrl(): Promise<string> {
  const probe = createTcpServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(probe.address() as AddressInfo).port}`;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return url;
}

/** The relay behind a server that records the method and path of every request it passes on. */
async function recordingRelay(): Promise<{ url: string; seen: string[] }> {
  const seen: string[] = [];
  const url = await serve((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    relay.app(req, res);
  });
  return { url, seen };
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('keys and instance', () => {
  it('issues a key pair and tells each key type, and the instance id', async () => {
    const pair = await client.keys();
    expect(pair.private).toMatch(/^[\w-]{32}$/);
    expect(await client.keyInfo(pair.private)).toEqual({ type: 'private', public: pair.public });
    expect(await client.keyInfo(pair.public)).toEqual({ type: 'public' });
    expect(await client.id()).toMatch(/^[\w-]{8}$/);
  });
});

describe('key-value', () => {
  it('publishes, reads, renews and unpublishes; reading nothing is undefined', async () => {
    const pair = await client.keys();
    expect(await client.read(pair.public)).toBeUndefined();
    await client.publish(pair.private, { status: 'back at 5', n: [1, 2] });
    expect(await client.read(pair.public)).toEqual({ status: 'back at 5', n: [1, 2] });
    await client.renew(pair.private);
    expect((await client.stats(pair.private)).publish.ttl).toBeGreaterThan(50);
    await client.publish(pair.private, 'plain text');
    expect(await client.read<string>(pair.public)).toBe('plain text');
    await client.unpublish(pair.private);
    expect(await client.read(pair.public)).toBeUndefined();
  });
});

describe('aggregator', () => {
  it('posts, shows stats and drains oldest first; an empty queue drains to []', async () => {
    const pair = await client.keys();
    expect(await client.post(pair.public, { vote: 'yes' })).toMatchObject({ webhook: false });
    await client.post(pair.public, 'no');
    expect((await client.stats(pair.private)).consume.count).toBe(2);
    expect(await client.drain(pair.private)).toEqual([{ vote: 'yes' }, 'no']);
    expect(await client.drain(pair.private)).toEqual([]);
  });

  it('a drain with wait is answered by a later post', async () => {
    const pair = await client.keys();
    const started = Date.now();
    const draining = client.drain(pair.private, { wait: 10 });
    await sleep(200);
    await client.post(pair.public, { late: true });
    expect(await draining).toEqual([{ late: true }]);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('a drain with wait that stays empty is [], and an aborted one throws the abort', async () => {
    const pair = await client.keys();
    expect(await client.drain(pair.private, { wait: 0.2 })).toEqual([]);
    const controller = new AbortController();
    const draining = client.drain(pair.private, { wait: 30, signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    await expect(draining).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('a drain with hook registers a webhook that later posts go to, signed', async () => {
    const pair = await client.keys();
    const delivered: { body: string; signature: string | undefined }[] = [];
    const hook = await serve((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (chunk) => {
        body += chunk;
      });
      req.on('end', () => {
        delivered.push({ body, signature: req.headers['x-deadrop-signature'] as string | undefined });
        res.end();
      });
    });
    expect(await client.drain(pair.private, { hook: `${hook}/in` })).toEqual([]);
    expect(await client.post(pair.public, { to: 'hook' })).toMatchObject({ webhook: true });
    expect(delivered).toHaveLength(1);
    expect(JSON.parse(delivered[0]?.body ?? '')).toEqual({ to: 'hook' });
    expect(delivered[0]?.signature).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(await client.drain(pair.private)).toEqual([]);
  });
});

describe('one-to-one', () => {
  it('sends to a uid, tells its ttl, and one receive takes it', async () => {
    const pair = await client.keys();
    await client.send(pair.private, 'alice', { code: 1234 });
    expect(await client.ttl(pair.private, 'alice')).toBeGreaterThan(50);
    expect(await client.receive(pair.public, 'alice')).toEqual({ code: 1234 });
    expect(await client.receive(pair.public, 'alice')).toBeUndefined();
    expect(await client.ttl(pair.private, 'alice')).toBe(0);
  });

  it('a withdrawn value is gone', async () => {
    const pair = await client.keys();
    await client.send(pair.private, 'bob', 'secret');
    await client.withdraw(pair.private, 'bob');
    expect(await client.receive(pair.public, 'bob')).toBeUndefined();
  });

  it('a receive with wait is answered by a later send', async () => {
    const pair = await client.keys();
    const receiving = client.receive(pair.public, 'rid-1', { wait: 10 });
    await sleep(200);
    await client.send(pair.private, 'rid-1', { answer: 42 });
    expect(await receiving).toEqual({ answer: 42 });
  });
});

/** A TCP proxy to the relay that can swallow what the relay sends and cut every connection. */
async function openCuttableProxy(target: string) {
  const { port } = new URL(target);
  const sockets = new Set<Socket>();
  let swallowed = '';
  let swallowing = false;
  const proxy = createTcpServer((downstream) => {
    const upstream = connect(Number(port), '127.0.0.1');
    for (const socket of [downstream, upstream]) {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => {
        sockets.delete(socket);
        downstream.destroy();
        upstream.destroy();
      });
    }
    downstream.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      if (swallowing) swallowed += chunk.toString();
      else downstream.write(chunk);
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        proxy.close(() => resolve());
      }),
  );
  return {
    url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    /** From now on, what the relay sends is lost on the way. */
    swallow: () => {
      swallowing = true;
    },
    swallowed: () => swallowed,
    /** Cuts every connection and lets later ones through again. */
    cut: () => {
      for (const socket of sockets) socket.destroy();
      swallowing = false;
    },
  };
}

describe('subscribe (server-sent events)', () => {
  it('receives queued and new items, and resumes after a cut connection without loss or duplicates', async () => {
    const pair = await client.keys();
    const proxy = await openCuttableProxy(server.url);
    const received: unknown[] = [];
    const ids: string[] = [];
    const controller = new AbortController();
    await client.post(pair.public, { n: 0 });
    const subscription = createClient(proxy.url).subscribe(
      pair.private,
      (item, id) => {
        received.push(item);
        ids.push(id);
      },
      { signal: controller.signal },
    );
    for (let n = 1; n <= 3; n++) await client.post(pair.public, { n });
    await waitFor(() => received.length === 4, 'the first four items');

    // Items the relay sends (and so consumes) but that never arrive must come again after the reconnect.
    proxy.swallow();
    for (let n = 4; n <= 6; n++) await client.post(pair.public, { n });
    await waitFor(() => proxy.swallowed().includes('{"n":6}'), 'the relay to send items 4 to 6');
    proxy.cut();
    for (let n = 7; n <= 9; n++) await client.post(pair.public, { n });
    await waitFor(() => received.length >= 10, 'items 4 to 9 after the reconnect', 10_000);
    await sleep(200);

    expect(received).toEqual(Array.from({ length: 10 }, (_, n) => ({ n })));
    expect(new Set(ids).size).toBe(10);
    controller.abort();
    await expect(subscription).resolves.toBeUndefined();
    expect(await client.drain(pair.private)).toEqual([]);
  });

  it('resumes after a given lastEventId in a new subscription', async () => {
    const pair = await client.keys();
    const first: { item: unknown; id: string }[] = [];
    const controller = new AbortController();
    const subscription = client.subscribe(pair.private, (item, id) => void first.push({ item, id }), {
      signal: controller.signal,
    });
    await client.post(pair.public, 'a');
    await client.post(pair.public, 'b');
    await waitFor(() => first.length === 2, 'two items');
    controller.abort();
    await subscription;

    const again: unknown[] = [];
    const second = new AbortController();
    const resumed = client.subscribe(pair.private, (item) => void again.push(item), {
      signal: second.signal,
      lastEventId: first[0]?.id,
    });
    await waitFor(() => again.length === 1, 'the item after the first id');
    expect(again).toEqual(['b']);
    second.abort();
    await resumed;
  });

  it('rejects on an error answer such as a public key', async () => {
    const pair = await client.keys();
    await expect(client.subscribe(pair.public, () => {})).rejects.toMatchObject({ status: 401 });
  });

  it('rejects when the callback throws', async () => {
    const pair = await client.keys();
    await client.post(pair.public, 'boom');
    await expect(
      client.subscribe(pair.private, () => {
        throw new Error('callback failed');
      }),
    ).rejects.toThrow('callback failed');
  });
});

describe('pipe', () => {
  /** `size` random bytes as a ReadableStream of 64 KiB chunks. */
  function randomStream(size: number): { stream: ReadableStream<Uint8Array>; hash: string } {
    const data = randomBytes(size);
    let at = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (at >= size) return controller.close();
        controller.enqueue(new Uint8Array(data.subarray(at, at + 65536)));
        at += 65536;
      },
    });
    return { stream, hash: sha256(data) };
  }

  it('streams a few MB from a public sender to the owner, byte for byte', async () => {
    const pair = await client.keys();
    const { stream, hash } = randomStream(4 * 1024 * 1024);
    // The receiver reads while the sender sends: the relay holds nothing, so neither side can wait for the other.
    const [received] = await Promise.all([
      client.pipeReceive(pair.private).then(async (res) => ({
        type: res.headers.get('content-type'),
        bytes: new Uint8Array(await res.arrayBuffer()),
      })),
      sleep(100).then(() => client.pipeSend(pair.public, stream, { type: 'application/x-test' })),
    ]);
    expect(received.type).toBe('application/x-test');
    expect(received.bytes.length).toBe(4 * 1024 * 1024);
    expect(sha256(received.bytes)).toBe(hash);
  });

  it('sends a Blob from the owner to a public receiver that comes later', async () => {
    const pair = await client.keys();
    const data = randomBytes(2 * 1024 * 1024);
    const [, received] = await Promise.all([
      client.pipeSend(pair.private, new Blob([data], { type: 'image/png' })),
      sleep(100).then(async () => {
        const res = await client.pipeReceive(pair.public);
        return { type: res.headers.get('content-type'), bytes: new Uint8Array(await res.arrayBuffer()) };
      }),
    ]);
    expect(received.type).toBe('image/png');
    expect(sha256(received.bytes)).toBe(sha256(data));
  });
});

describe('errors', () => {
  it('a 401 carries status, method, the server message and the URL with the key cut short', async () => {
    const pair = await client.keys();
    const error = await client.drain(pair.public).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DeadropError);
    const { status, method, url, serverMessage, message } = error as DeadropError;
    expect({ status, method, serverMessage }).toEqual({
      status: 401,
      method: 'GET',
      serverMessage: 'This path takes a private key, but a public key was given.',
    });
    expect(url).toBe(`${server.url}/private/${pair.public.slice(0, 4)}…`);
    expect(message).toBe(
      `Request failed with status 401 Unauthorized: GET ${url} (This path takes a private key, but a public key was given.)`,
    );
    expect(message).not.toContain(pair.public);
  });

  it('a 404 that is not an empty read throws with the server message', async () => {
    const error = (await createClient(`${server.url}/nowhere/`)
      .keys()
      .catch((caught: unknown) => caught)) as DeadropError;
    expect(error.message).toBe(
      `Request failed with status 404 Not Found: GET ${server.url}/nowhere/keys (There is no GET route here.)`,
    );
    expect(error.response?.status).toBe(404);
  });

  it('other error answers throw too, on reads that would answer nothing on a 404', async () => {
    const pair = await client.keys();
    await expect(client.read(pair.private)).rejects.toMatchObject({ status: 401 });
    await expect(client.receive(pair.public, 'not a uid!')).rejects.toMatchObject({ status: 400 });
    await expect(client.keyInfo('x'.repeat(32))).rejects.toMatchObject({ status: 400 });
  });

  it('a network error is wrapped with its cause', async () => {
    const dead = await deadUrl();
    const error = (await createClient(dead)
      .id()
      .catch((caught: unknown) => caught)) as DeadropError;
    expect(error).toBeInstanceOf(DeadropError);
    expect(error.status).toBe(0);
    expect(error.message).toBe(
      `Request failed with a network error: GET ${dead}/id (connect ECONNREFUSED ${new URL(dead).host})`,
    );
    expect(error.cause).toBeInstanceOf(TypeError);
  });
});

describe('failover', () => {
  it('goes past a dead URL to the relay and starts there next time', async () => {
    const dead = await deadUrl();
    const asked: string[] = [];
    const failover = createClient([dead, server.url], {
      fetch: (input, init) => {
        asked.push(String(input));
        return fetch(input, init);
      },
    });
    const pair = await failover.keys();
    expect(pair.public).toMatch(/^[\w-]{32}$/);
    await failover.publish(pair.private, 'hi');
    expect(asked).toEqual([`${dead}/keys`, `${server.url}/keys`, `${server.url}/private/${pair.private}`]);
  });

  it('takes the URLs of one instance from an endpoints.json map', async () => {
    const id = await client.id();
    const failover = createClient({ other: [server.url], [id]: [await deadUrl(), server.url] }, { id });
    expect(await failover.id()).toBe(id);
    expect(() => createClient({ [id]: [server.url] }, { id: 'unknown' })).toThrow(TypeError);
  });

  it('a public POST goes on after a refused connection, which never delivered it', async () => {
    const pair = await client.keys();
    const second = await recordingRelay();
    await createClient([await deadUrl(), second.url]).post(pair.public, 'once');
    expect(second.seen).toEqual([`POST /public/${pair.public}`]);
    expect(await client.drain(pair.private)).toEqual(['once']);
  });

  it('a public POST that may have arrived is not repeated on the next URL; a GET is', async () => {
    const pair = await client.keys();
    const swallowing = createTcpServer((socket) => {
      socket.once('data', () => socket.destroy());
    });
    await new Promise<void>((resolve) => swallowing.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => swallowing.close(() => resolve())));
    const second = await recordingRelay();
    const failover = createClient([urlOf(swallowing as unknown as Server), second.url]);

    const error = await failover.post(pair.public, 'maybe').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DeadropError);
    expect((error as DeadropError).status).toBe(0);
    expect(second.seen).toEqual([]);

    expect(await failover.drain(pair.private)).toEqual([]);
    expect(second.seen).toEqual([`GET /private/${pair.private}`]);
  });

  it('a 503 sends reads to the next URL but a public POST is not repeated', async () => {
    const pair = await client.keys();
    const unavailable = await serve((_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          statusCode: 503,
          error: 'Service Unavailable',
          message: 'The store is unreachable.',
        }),
      );
    });
    const second = await recordingRelay();
    const failover = createClient([unavailable, second.url]);
    const error = (await failover.post(pair.public, 'x').catch((caught: unknown) => caught)) as DeadropError;
    expect(error.message).toBe(
      `Request failed with status 503 Service Unavailable: POST ${unavailable}/public/${pair.public.slice(0, 4)}… (The store is unreachable.)`,
    );
    expect(second.seen).toEqual([]);
    expect(await failover.read(pair.public)).toBeUndefined();
    expect(second.seen).toEqual([`GET /public/${pair.public}`]);
  });
});

describe('in a browser', () => {
  let browser: Browser;
  let tab: Page;

  /** The client as a page gets it: bundled from the source, imported as a module from another origin. */
  beforeAll(async () => {
    const { outputFiles } = await build({
      entryPoints: ['sdk/index.ts'],
      bundle: true,
      format: 'esm',
      minify: true,
      write: false,
    });
    const bundle = outputFiles[0]?.text ?? '';
    const site = await serve((req, res) => {
      if (req.url === '/deadrop.js') {
        res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle);
      } else {
        res
          .writeHead(200, { 'content-type': 'text/html' })
          .end('<script type="module">import * as d from "/deadrop.js"; window.deadrop = d;</script>');
      }
    });
    cleanups.pop(); // the page's server lives as long as the browser, not one test
    browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium' });
    tab = await browser.newPage();
    await tab.goto(site);
    await tab.waitForFunction(() => 'deadrop' in window);
  });

  afterAll(async () => {
    await browser?.close();
  });

  /** The module the page imported, as `window.deadrop`. */
  type Sdk = typeof import('../sdk/index.js');

  it('keys, post, drain, subscribe and errors work unchanged in Chromium, across origins', async () => {
    const result = await tab.evaluate(async (relayUrl) => {
      const { createClient, DeadropError } = (window as unknown as { deadrop: Sdk }).deadrop;
      const client = createClient(relayUrl);
      const pair = await client.keys();
      await client.post(pair.public, { from: 'a page' });
      const drained = await client.drain(pair.private);
      const items: unknown[] = [];
      const controller = new AbortController();
      const subscription = client.subscribe(
        pair.private,
        (item) => {
          items.push(item);
          if (items.length === 2) controller.abort();
        },
        { signal: controller.signal },
      );
      await client.post(pair.public, 1);
      await client.post(pair.public, 2);
      await subscription;
      const error = await client.drain(pair.public).catch((caught: InstanceType<typeof DeadropError>) => ({
        isDeadropError: caught instanceof DeadropError,
        status: caught.status,
        serverMessage: caught.serverMessage,
      }));
      return { drained, items, error };
    }, server.url);
    expect(result).toEqual({
      drained: [{ from: 'a page' }],
      items: [1, 2],
      error: {
        isDeadropError: true,
        status: 401,
        serverMessage: 'This path takes a private key, but a public key was given.',
      },
    });
  });

  it('a page pipes a Blob; a stream is refused with a reason, as a browser hides the redirect', async () => {
    const result = await tab.evaluate(async (relayUrl) => {
      const { createClient } = (window as unknown as { deadrop: Sdk }).deadrop;
      const client = createClient(relayUrl);
      const pair = await client.keys();
      const data = new Uint8Array(1024 * 1024).map((_, i) => i & 255);
      const [, received] = await Promise.all([
        client.pipeSend(pair.public, new Blob([data], { type: 'image/png' })),
        client.pipeReceive(pair.private).then(async (res) => ({
          type: res.headers.get('content-type'),
          length: (await res.arrayBuffer()).byteLength,
        })),
      ]);
      const refused = await client.pipeSend(pair.public, new Blob([data]).stream()).then(
        () => '',
        (error: Error) => error.message,
      );
      return { received, refused };
    }, server.url);
    expect(result.received).toEqual({ type: 'image/png', length: 1024 * 1024 });
    expect(result.refused).toContain('in a browser send a Blob');
  });
});

describe('the SDK sources', () => {
  /** The two files of sdk/e2e/ that only Node loads: the native suite and the Node stream wrappers. */
  const NODE_ONLY = ['e2e/native-suite.ts', 'e2e/node-streams.ts'];

  it('use no node: module outside the Node-only files, and the relay client imports nothing at all', async () => {
    const client = await readFile('sdk/index.ts', 'utf8');
    expect(client).not.toMatch(/^import /m);
    const files = [
      ...(await readdir('sdk')).filter((name) => name.endsWith('.ts')),
      ...(await readdir('sdk/e2e')).map((name) => `e2e/${name}`),
    ];
    const portable = files.filter((name) => !NODE_ONLY.includes(name));
    expect(portable).toEqual(
      expect.arrayContaining(['crypto.ts', 'drop.ts', 'e2e/index.ts', 'e2e/frames.ts']),
    );
    for (const name of portable) {
      expect(await readFile(`sdk/${name}`, 'utf8'), name).not.toMatch(/from 'node:/);
    }
    for (const name of NODE_ONLY) expect(await readFile(`sdk/${name}`, 'utf8')).toMatch(/from 'node:/);
  });

  it('bundle the protocol module for browsers, without a Node-only file in it', async () => {
    const result = await build({
      entryPoints: ['sdk/e2e/index.ts'],
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'browser',
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs).toEqual(expect.arrayContaining(['sdk/e2e/envelope.ts', 'sdk/e2e/frames.ts']));
    expect(inputs.filter((input) => NODE_ONLY.some((name) => input.endsWith(name)))).toEqual([]);
    expect(result.outputFiles[0]?.text).not.toMatch(/node:/);
  });
});
