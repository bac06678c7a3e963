// Webhooks: signed delivery to real receivers on loopback, every way a delivery fails, and the SSRF address policy.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type RequestListener, type Server } from 'node:http';
import net from 'node:net';
import { inspect } from 'node:util';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RelayError } from '../src/errors.js';
import { createKeyring } from '../src/keys.js';
import { refusalReason } from '../src/webhooks/address-policy.js';
import { createWebhookSender, type WebhookSender } from '../src/webhooks/webhook-sender.js';

interface Receiver {
  port: number;
  url: string;
  requests: { method: string; url: string; headers: IncomingHttpHeaders; body: string }[];
  /** TCP connections accepted, whether or not a request followed. */
  connections: () => number;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** An HTTP receiver on 127.0.0.1 (and on [::1] at the same port when `dualStack`) that records what reaches it. */
async function startReceiver(
  answer: RequestListener = (_req, res) => res.writeHead(204).end(),
  { dualStack = false } = {},
): Promise<Receiver> {
  const requests: Receiver['requests'] = [];
  let connections = 0;
  const makeServer = () => {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        requests.push({
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString(),
        });
        answer(req, res);
      });
    });
    server.on('connection', () => {
      connections += 1;
    });
    cleanups.push(() => closeServer(server));
    return server;
  };
  const v4 = makeServer();
  await listen(v4, 0, '127.0.0.1');
  const { port } = v4.address() as net.AddressInfo;
  if (dualStack) await listen(makeServer(), port, '::1');
  return { port, url: `http://127.0.0.1:${port}/hook`, requests, connections: () => connections };
}

/** A port nothing listens on: taken from the OS, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await listen(server, 0, '127.0.0.1');
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function openSender(options: { allowPrivate: boolean; timeoutMs?: number }): WebhookSender {
  const sender = createWebhookSender({
    timeoutMs: options.timeoutMs ?? 2000,
    allowPrivate: options.allowPrivate,
  });
  cleanups.push(() => sender.close());
  return sender;
}

async function expectBadHook(promise: Promise<unknown>): Promise<RelayError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(RelayError);
  expect(error).toMatchObject({ statusCode: 400, code: 'bad_hook' });
  return error as RelayError;
}

const privateKey = () => createKeyring(randomBytes(24).toString('base64url')).issue().private;

describe('delivering a webhook', () => {
  it('hands the receiver the exact body, as JSON, with a delivery id and a signature made with the private key', async () => {
    const receiver = await startReceiver();
    const sender = openSender({ allowPrivate: true });
    const key = privateKey();
    const body = JSON.stringify({ hello: 'wörld', n: [1, 2, 3] });

    await expect(sender.deliver(`${receiver.url}?token=abc`, body, key)).resolves.toBe(true);

    expect(receiver.requests).toHaveLength(1);
    const [received] = receiver.requests;
    expect(received?.method).toBe('POST');
    expect(received?.url).toBe('/hook?token=abc');
    expect(received?.body).toBe(body);
    expect(received?.headers['content-type']).toBe('application/json');
    expect(received?.headers['user-agent']).toMatch(/deadrop/);
    expect(received?.headers['x-deadrop-delivery']).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    const signature = String(received?.headers['x-deadrop-signature']);
    expect(signature).toMatch(/^sha256=[0-9a-f]{64}$/);
    const expected = createHmac('sha256', key)
      .update(received?.body ?? '')
      .digest();
    const given = Buffer.from(signature.slice('sha256='.length), 'hex');
    expect(given.length === expected.length && timingSafeEqual(given, expected)).toBe(true);
  });

  it('gives every delivery its own id', async () => {
    const receiver = await startReceiver();
    const sender = openSender({ allowPrivate: true });
    await sender.deliver(receiver.url, '1', 'k');
    await sender.deliver(receiver.url, '2', 'k');
    const [first, second] = receiver.requests.map((received) => received.headers['x-deadrop-delivery']);
    expect(first).not.toBe(second);
  });

  it('sends the credentials of a user:pass@ URL as Basic authorization', async () => {
    const receiver = await startReceiver();
    const sender = openSender({ allowPrivate: true });
    const url = `http://hook%20user:p%40ss@127.0.0.1:${receiver.port}/hook`;

    await expect(sender.check(url)).resolves.toBe(url);
    await expect(sender.deliver(url, '{}', privateKey())).resolves.toBe(true);

    expect(receiver.requests[0]?.headers.authorization).toBe(
      `Basic ${Buffer.from('hook user:p@ss').toString('base64')}`,
    );
  });

  it.each([500, 404])('counts a %i answer as not delivered', async (status) => {
    const receiver = await startReceiver((_req, res) => res.writeHead(status).end('nope'));
    const sender = openSender({ allowPrivate: true });
    await expect(sender.deliver(receiver.url, '{}', privateKey())).resolves.toBe(false);
    expect(receiver.requests).toHaveLength(1);
  });

  it('does not follow a 302 redirect: the second receiver gets nothing', async () => {
    const second = await startReceiver();
    const first = await startReceiver((_req, res) => res.writeHead(302, { location: second.url }).end());
    const sender = openSender({ allowPrivate: true });

    await expect(sender.deliver(first.url, '{}', privateKey())).resolves.toBe(false);

    expect(first.requests).toHaveLength(1);
    expect(second.connections()).toBe(0);
    expect(second.requests).toHaveLength(0);
  });

  it('gives up on a receiver that never answers once the timeout has passed', async () => {
    const receiver = await startReceiver(() => {});
    const sender = openSender({ allowPrivate: true, timeoutMs: 200 });
    const started = performance.now();

    await expect(sender.deliver(receiver.url, '{}', privateKey())).resolves.toBe(false);

    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(150);
    expect(elapsed).toBeLessThan(1000);
    expect(receiver.requests).toHaveLength(1);
  });

  it('counts a closed port as not delivered', async () => {
    const sender = openSender({ allowPrivate: true });
    const port = await closedPort();
    await expect(sender.deliver(`http://127.0.0.1:${port}/hook`, '{}', privateKey())).resolves.toBe(false);
  });

  it('resolves false rather than throwing for a URL it cannot use', async () => {
    const sender = openSender({ allowPrivate: true });
    for (const url of ['not a url', 'ftp://127.0.0.1/', `http://127.0.0.1/${'a'.repeat(2048)}`]) {
      await expect(sender.deliver(url, '{}', privateKey())).resolves.toBe(false);
    }
  });
});

describe('refusing hook URLs that point inside (private addresses not allowed)', () => {
  const loopbackTargets: [string, (port: number) => string][] = [
    ['IPv4 loopback', (port) => `http://127.0.0.1:${port}/`],
    ['IPv6 loopback', (port) => `http://[::1]:${port}/`],
    ['IPv4-mapped IPv6 loopback', (port) => `http://[::ffff:127.0.0.1]:${port}/`],
    ['the unspecified address', (port) => `http://0.0.0.0:${port}/`],
    ['a host name resolving to loopback', (port) => `http://localhost:${port}/`],
  ];

  it.each(loopbackTargets)(
    'refuses %s at check and at delivery, and no connection reaches the listener',
    async (_name, urlFor) => {
      const trap = await startReceiver(undefined, { dualStack: true });
      const sender = openSender({ allowPrivate: false });
      const url = urlFor(trap.port);

      await expectBadHook(sender.check(url));
      await expect(sender.deliver(url, '{}', privateKey())).resolves.toBe(false);

      expect(trap.connections()).toBe(0);
    },
  );

  it.each(loopbackTargets)(
    'reaches the same listener through %s when private addresses are allowed (the trap works)',
    async (_name, urlFor) => {
      const trap = await startReceiver(undefined, { dualStack: true });
      const sender = openSender({ allowPrivate: true });
      const url = urlFor(trap.port);

      await expect(sender.check(url)).resolves.toBe(new URL(url).href);
      await expect(sender.deliver(url, '{}', privateKey())).resolves.toBe(true);

      expect(trap.connections()).toBe(1);
    },
  );

  it.each([
    ['a private network address', 'http://10.0.0.1/', '10.0.0.1'],
    ['the cloud metadata address', 'http://169.254.169.254/latest/meta-data/', '169.254.169.254'],
  ])('refuses %s before any connection is attempted', async (_name, url, host) => {
    const connect = vi.spyOn(net.Socket.prototype, 'connect');
    const sender = openSender({ allowPrivate: false });

    await expectBadHook(sender.check(url));
    const started = performance.now();
    await expect(sender.deliver(url, '{}', privateKey())).resolves.toBe(false);

    expect(performance.now() - started).toBeLessThan(200);
    const attempts = connect.mock.calls.filter((args) => inspect(args, { depth: 4 }).includes(host));
    expect(attempts).toHaveLength(0);
  });

  it('sees connections with the same spy when private addresses are allowed (the spy works)', async () => {
    const receiver = await startReceiver();
    const connect = vi.spyOn(net.Socket.prototype, 'connect');
    const sender = openSender({ allowPrivate: true });

    await expect(sender.deliver(receiver.url, '{}', privateKey())).resolves.toBe(true);

    expect(
      connect.mock.calls.filter((args) => inspect(args, { depth: 4 }).includes('127.0.0.1')),
    ).not.toHaveLength(0);
  });

  it('names the reason in the error message', async () => {
    const sender = openSender({ allowPrivate: false });
    const error = await expectBadHook(sender.check('http://169.254.169.254/latest/meta-data/'));
    expect(error.message).toBe(
      'The webhook URL is refused: its host 169.254.169.254 is refused because it is a cloud metadata address.',
    );
  });
});

describe('refusing hook URLs that are not http(s) URLs, whatever the address', () => {
  it.each([
    ['an ftp: URL', 'ftp://127.0.0.1/hook'],
    ['a file: URL', 'file:///etc/passwd'],
    ['a javascript: URL', 'javascript:alert(1)'],
    ['a data: URL', 'data:application/json,{}'],
    ['words', 'not a url'],
    ['a relative URL', '/hook'],
    ['a scheme-relative URL', '//127.0.0.1/hook'],
    ['an http: URL without a host', 'http://'],
    ['an empty string', ''],
    ['a URL of 2049 characters', `http://127.0.0.1/${'a'.repeat(2049 - 'http://127.0.0.1/'.length)}`],
    ['credentials that are not valid percent-encoding', 'http://us%zzer:pw@127.0.0.1/hook'],
  ])('refuses %s with a 400', async (_name, url) => {
    const sender = openSender({ allowPrivate: true });
    await expectBadHook(sender.check(url));
  });

  it('accepts a URL of exactly 2048 characters', async () => {
    const sender = openSender({ allowPrivate: true });
    const url = `http://127.0.0.1/${'a'.repeat(2048 - 'http://127.0.0.1/'.length)}`;
    expect(url).toHaveLength(2048);
    await expect(sender.check(url)).resolves.toBe(url);
  });

  it('normalizes the URL it accepts and drops the fragment', async () => {
    const sender = openSender({ allowPrivate: true });
    await expect(sender.check('HTTP://127.0.0.1:80/a/../hook?x=1#frag')).resolves.toBe(
      'http://127.0.0.1/hook?x=1',
    );
  });
});

describe('the address policy', () => {
  it.each([
    ['127.0.0.1', 'it is a loopback address'],
    ['127.255.0.9', 'it is a loopback address'],
    ['::1', 'it is a loopback address'],
    ['10.1.2.3', 'it is a private network address'],
    ['172.16.0.1', 'it is a private network address'],
    ['172.31.255.255', 'it is a private network address'],
    ['192.168.1.1', 'it is a private network address'],
    ['169.254.1.1', 'it is a link-local address'],
    ['fe80::1', 'it is a link-local address'],
    ['fe80::1%eth0', 'it is a link-local address'],
    ['febf::1', 'it is a link-local address'],
    ['fc00::1', 'it is a unique-local address'],
    ['fd12:3456::1', 'it is a unique-local address'],
    ['fec0::1', 'it is a site-local address'],
    ['224.0.0.1', 'it is a multicast address'],
    ['239.255.255.250', 'it is a multicast address'],
    ['ff02::1', 'it is a multicast address'],
    ['0.0.0.0', 'it is an unspecified address (0.0.0.0/8)'],
    ['0.1.2.3', 'it is an unspecified address (0.0.0.0/8)'],
    ['::', 'it is the unspecified address'],
    ['255.255.255.255', 'it is the broadcast address'],
    ['100.64.0.1', 'it is a carrier-grade NAT address'],
    ['100.127.255.254', 'it is a carrier-grade NAT address'],
    ['192.0.2.1', 'it is a reserved address'],
    ['198.18.0.1', 'it is a reserved address'],
    ['198.51.100.7', 'it is a reserved address'],
    ['203.0.113.9', 'it is a reserved address'],
    ['240.0.0.1', 'it is a reserved address'],
    ['2001:db8::1', 'it is a reserved address'],
    ['192.175.48.1', 'it is a reserved or special-purpose address'],
    ['100::1', 'it is a reserved or special-purpose address'],
    ['4000::1', 'it is outside the global unicast range 2000::/3'],
    ['::8.8.8.8', 'it is outside the global unicast range 2000::/3'],
    ['169.254.169.254', 'it is a cloud metadata address'],
    ['fd00:ec2::254', 'it is a cloud metadata address'],
    ['100.100.100.200', 'it is a cloud metadata address'],
    ['192.0.0.192', 'it is a cloud metadata address'],
    ['::ffff:127.0.0.1', 'it is a loopback address (IPv4-mapped form of 127.0.0.1)'],
    ['::ffff:10.0.0.1', 'it is a private network address (IPv4-mapped form of 10.0.0.1)'],
    ['::ffff:169.254.169.254', 'it is a cloud metadata address (IPv4-mapped form of 169.254.169.254)'],
    ['::127.0.0.1', 'it is a loopback address (IPv4-compatible form of 127.0.0.1)'],
    ['::ffff:0:7f00:1', 'it is a loopback address (IPv4-translated form of 127.0.0.1)'],
    ['2002:7f00:1::1', 'it is a loopback address (6to4 form of 127.0.0.1)'],
    ['2002:c0a8:101::1', 'it is a private network address (6to4 form of 192.168.1.1)'],
    ['2001:0:4136:e378:8000:63bf:80ff:fffe', 'it is a loopback address (Teredo client form of 127.0.0.1)'],
    ['2001:0:a00:1:8000:63bf:f7f7:f7f7', 'it is a private network address (Teredo server form of 10.0.0.1)'],
    ['64:ff9b::7f00:1', 'it is a loopback address (NAT64 form of 127.0.0.1)'],
    ['64:ff9b::a9fe:a9fe', 'it is a cloud metadata address (NAT64 form of 169.254.169.254)'],
    ['64:ff9b:1::a00:1', 'it is a local-use NAT64 address'],
    ['localhost', 'it is not an IP address'],
    ['127.1', 'it is not an IP address'],
    ['', 'it is not an IP address'],
  ])('refuses %s: %s', (ip, reason) => {
    expect(refusalReason(ip)).toBe(reason);
  });

  it.each([
    '8.8.8.8',
    '1.1.1.1',
    '93.184.215.14',
    '2606:4700::1111',
    '2a00:1450:4001:80b::200e',
    '::ffff:8.8.8.8',
    '64:ff9b::808:808',
    '2002:808:808::1',
    '2001:0:4136:e378:8000:63bf:f7f7:f7f7',
  ])('allows the global unicast address %s', (ip) => {
    expect(refusalReason(ip)).toBeUndefined();
  });
});
