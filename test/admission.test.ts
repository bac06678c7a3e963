// Admission control against hostile clients on raw loopback sockets: idle bodies, declared sizes, early answers, connection caps.
import { execFile } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { Agent, request, type Server, STATUS_CODES } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { type Config, ConfigError, loadConfig } from '../src/config.js';
import { clientAddress } from '../src/http/client-address.js';
import { type ConnectionCaps, connectionCapFor, readOpenFileLimit } from '../src/http/connection-caps.js';
import { createRelayServer } from '../src/server.js';
import {
  forgedKey,
  openTestRelay,
  silentLogger,
  type TestRelay,
  tempDir,
  testConfig,
  waitFor,
} from './helpers.js';
import { head, openRaw } from './raw-client.js';

const run = promisify(execFile);

interface Served {
  port: number;
  url: string;
  relay: TestRelay;
  connections: ConnectionCaps;
  close: () => Promise<void>;
}

const opened: Served[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((served) => served.close()));
});

/** The test app on the memory store, served through the wiring `startRelay` uses, on 127.0.0.1 port 0. */
async function serve(overrides: Partial<Config> = {}, logger = silentLogger): Promise<Served> {
  const relay = await openTestRelay('memory', { config: overrides, logger });
  const { server, connections } = createRelayServer(relay.app, testConfig(overrides), logger);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const served: Served = {
    port,
    url: `http://127.0.0.1:${port}`,
    relay,
    connections,
    close: async () => {
      connections.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => (server as Server).close(() => resolve()));
      await relay.dispose();
    },
  };
  opened.push(served);
  return served;
}

/** A reply's JSON body as the catalog renders it. */
const errorBody = (status: number) => ({
  statusCode: status,
  error: STATUS_CODES[status],
  message: expect.any(String),
  code: expect.any(String),
});

/** Milliseconds until `promise` settles. */
async function timed(promise: Promise<unknown>): Promise<number> {
  const started = performance.now();
  await promise;
  return performance.now() - started;
}

describe('idle bodies', () => {
  it('serves 127.0.0.1 with p99 < 200 ms while 127.0.0.2 holds thousands of idle-body sockets; each of those is refused or gets its 408', async () => {
    // Both ends of every socket live in this process: two descriptors each, and room for the rest.
    const openFiles = readOpenFileLimit() ?? 1024;
    const attackers = Math.max(100, Math.min(3000, Math.floor((openFiles - 2000) / 2)));
    const perAddress = Math.floor(attackers / 3);
    // Long enough that the attacker still holds its sockets while the other address is measured.
    const bodyTimeoutMs = 10_000;
    const lines: string[] = [];
    const logger = pino(
      { level: 'warn' },
      new Writable({
        write(chunk, _encoding, done) {
          lines.push(String(chunk));
          done();
        },
      }),
    );
    const served = await serve({ bodyTimeoutMs, maxConnectionsPerIp: perAddress }, logger);
    const { public: pub } = served.relay.keys();
    const idleBody = head('POST', `/public/${pub}`, {
      'Content-Type': 'application/json',
      'Content-Length': 10240,
    });

    const outcomes: Promise<{ kind: 'refused' | 'timed out' | 'other'; afterMs: number }>[] = [];
    const decided = () => {
      const { admitted, refusedPerAddress } = served.connections.stats();
      return admitted + refusedPerAddress;
    };
    for (let launched = 0; launched < attackers; ) {
      const size = Math.min(200, attackers - launched);
      const clients = await Promise.all(
        Array.from({ length: size }, () => openRaw(served.port, '127.0.0.2', idleBody)),
      );
      for (const client of clients) {
        outcomes.push(
          client.closed.then(() => {
            const text = client.received();
            const kind = text === '' ? 'refused' : text.startsWith('HTTP/1.1 408 ') ? 'timed out' : 'other';
            return { kind, afterMs: performance.now() - client.openedAt };
          }),
        );
      }
      launched += size;
      // Paced by the relay's accepting, so that the kernel's accept queue never overflows into SYN retries.
      await waitFor(() => decided() >= launched, 'the relay to take each connection');
    }
    expect(served.connections.stats().open).toBeGreaterThanOrEqual(perAddress / 2);

    const agent = new Agent({ keepAlive: true, maxSockets: 8 });
    const latencies: number[] = [];
    const one = (index: number) =>
      new Promise<void>((resolve, reject) => {
        const write = index % 2 === 0;
        const started = performance.now();
        const req = request(`${served.url}${write ? `/public/${pub}` : '/id'}`, {
          method: write ? 'POST' : 'GET',
          agent,
          localAddress: '127.0.0.1',
          headers: write ? { 'content-type': 'application/json' } : {},
        });
        req.once('error', reject);
        req.once('response', (res) => {
          res.resume();
          res.once('end', () => {
            latencies.push(performance.now() - started);
            if (res.statusCode === 200) resolve();
            else reject(new Error(`status ${res.statusCode}`));
          });
        });
        req.end(write ? JSON.stringify({ n: index }) : undefined);
      });
    const requests = 300;
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < requests) await one(next++);
      }),
    );
    agent.destroy();
    latencies.sort((a, b) => a - b);
    const p99 = latencies[Math.ceil(latencies.length * 0.99) - 1] as number;
    expect(latencies).toHaveLength(requests);
    expect(p99).toBeLessThan(200);

    const results = await Promise.all(outcomes);
    const refused = results.filter((result) => result.kind === 'refused').length;
    const timedOut = results.filter((result) => result.kind === 'timed out');
    expect(results.filter((result) => result.kind === 'other')).toEqual([]);
    expect(timedOut.length).toBeGreaterThanOrEqual(perAddress);
    expect(refused).toBeGreaterThan(0);
    expect(served.connections.stats().refusedPerAddress).toBe(refused);
    for (const { afterMs } of timedOut) {
      expect(afterMs).toBeGreaterThan(bodyTimeoutMs - 100);
      expect(afterMs).toBeLessThan(bodyTimeoutMs + 3000);
    }
    await waitFor(() => served.connections.stats().open === 0, 'every connection to close');
    expect(served.connections.stats().addresses).toBe(0);
    // Refused sockets are counted, not logged: one line says refusing started, whatever their number.
    expect(lines.filter((line) => line.includes('refus'))).toHaveLength(1);
  }, 60_000);

  it('answers a body that stops coming with a 408 at DEADROP_BODY_TIMEOUT, closes, and stores nothing', async () => {
    const served = await serve({ bodyTimeoutMs: 400 });
    const keys = served.relay.keys();
    const client = await openRaw(
      served.port,
      '127.0.0.1',
      `${head('POST', `/public/${keys.public}`, { 'Content-Type': 'text/plain', 'Content-Length': 100 })}first part`,
    );
    const elapsed = await timed(client.closed);
    const reply = await client.reply();
    expect(reply.status).toBe(408);
    expect(JSON.parse(reply.body)).toEqual(errorBody(408));
    expect(JSON.parse(reply.body).message).toContain('DEADROP_BODY_TIMEOUT');
    expect(reply.headers.connection).toBe('close');
    expect(reply.headers['access-control-allow-origin']).toBe('*');
    expect(elapsed).toBeGreaterThan(300);
    expect(elapsed).toBeLessThan(2000);
    await served.relay.agent.get(`/private/${keys.private}`).expect(404);
  });
});

describe('declared sizes', () => {
  it('answers a declared body over DEADROP_BODY_LIMIT with 413 within 1 s, without its body, and closes', async () => {
    const served = await serve();
    const { public: pub } = served.relay.keys();
    const client = await openRaw(
      served.port,
      '127.0.0.1',
      head('POST', `/public/${pub}`, { 'Content-Type': 'application/json', 'Content-Length': 50_000_000 }),
    );
    const elapsed = await timed(client.closed);
    const reply = await client.reply();
    expect(elapsed).toBeLessThan(1000);
    expect(reply.status).toBe(413);
    expect(JSON.parse(reply.body)).toEqual(errorBody(413));
    expect(JSON.parse(reply.body).message).toBe(
      'The body is 50000000 bytes; the limit is 10240 bytes (DEADROP_BODY_LIMIT).',
    );
    expect(reply.headers.connection).toBe('close');
    expect(reply.headers['access-control-allow-origin']).toBe('*');
  });

  it('holds blobs to DEADROP_BLOB_LIMIT instead: over it 413 at once, under it (though over the body limit) stored', async () => {
    const served = await serve();
    const keys = served.relay.keys();
    const blob = (length: number) =>
      head('POST', `/private/${keys.private}/part.1`, {
        'Content-Type': 'application/octet-stream',
        'Content-Length': length,
      });
    const over = await openRaw(served.port, '127.0.0.1', blob(1_048_577));
    const elapsed = await timed(over.closed);
    const refused = await over.reply();
    expect(elapsed).toBeLessThan(1000);
    expect(refused.status).toBe(413);
    expect(JSON.parse(refused.body).message).toContain('DEADROP_BLOB_LIMIT');

    const under = await openRaw(served.port, '127.0.0.1', blob(20_000));
    under.socket.write(Buffer.alloc(20_000, 7));
    const stored = await under.reply();
    expect(stored.status).toBe(200);
    expect(stored.headers.connection).toBe('keep-alive');
    under.socket.destroy();
  });

  it('lets a client that is still sending its oversize body read the 413, rather than reset it', async () => {
    const served = await serve();
    const keys = served.relay.keys();
    const dir = await tempDir();
    try {
      const file = join(dir, 'big.bin');
      await writeFile(file, Buffer.alloc(8 * 1024 * 1024));
      // Without a lingering close about half of such uploads end in a reset (curl: exit 55), so a few each.
      const routes = [
        [`/public/${keys.public}`, 'application/json'],
        [`/private/${keys.private}/part.1`, 'application/octet-stream'],
      ];
      for (const [path, type] of [...routes, ...routes, ...routes, ...routes, ...routes, ...routes]) {
        // `Expect:` (empty) makes curl send the body at once, as browsers do, instead of waiting for 100.
        const { stdout } = await run('curl', [
          ...['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'Expect:', '-H', `Content-Type: ${type}`],
          ...['--data-binary', `@${file}`, `${served.url}${path}`],
        ]);
        expect(stdout).toBe('413');
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('withholds 100 Continue from a declared oversize body, so the client never sends it', async () => {
    const served = await serve();
    const { public: pub } = served.relay.keys();
    const client = await openRaw(
      served.port,
      '127.0.0.1',
      head('POST', `/public/${pub}`, {
        'Content-Type': 'application/json',
        'Content-Length': 20_000,
        Expect: '100-continue',
      }),
    );
    const reply = await client.reply();
    expect(client.received()).toMatch(/^HTTP\/1\.1 413 /);
    expect(reply.headers.connection).toBe('close');
    await client.closed;
  });

  it('sends a form’s oversize POST to its `err` page at once', async () => {
    const served = await serve();
    const { public: pub } = served.relay.keys();
    const err = encodeURIComponent('https://site.example/oops');
    const client = await openRaw(
      served.port,
      '127.0.0.1',
      head('POST', `/public/${pub}?err=${err}`, {
        'Content-Type': 'application/x-www-form-urlencoded',
        'Content-Length': 30_000,
      }),
    );
    const reply = await client.reply();
    expect(reply.status).toBe(303);
    expect(reply.headers.location).toBe('https://site.example/oops');
    expect(reply.headers.connection).toBe('close');
  });

  it('puts no size limit on pipes: a declared 50 MB upload to /pipe/ gets its 307', async () => {
    const served = await serve();
    const { public: pub } = served.relay.keys();
    const client = await openRaw(
      served.port,
      '127.0.0.1',
      head('POST', `/pipe/${pub}`, { 'Content-Length': 50_000_000, Expect: '100-continue' }),
    );
    const reply = await client.reply();
    expect(reply.status).toBe(307);
    expect(reply.headers.location).toMatch(/\/stream\/[A-Za-z0-9_-]{22}$/);
    client.socket.destroy();
  });
});

describe('answers before the body', () => {
  const unreadBody = { 'Content-Length': 10240 };

  it('close the connection: 415, 401, 405 and a pipe 404 carry Connection: close and the socket closes', async () => {
    const served = await serve();
    const { public: pub } = served.relay.keys();
    const cases: [string, number][] = [
      [head('POST', `/public/${pub}`, unreadBody), 415],
      [
        head('POST', `/private/${forgedKey()}/uid`, {
          ...unreadBody,
          'Content-Type': 'application/octet-stream',
        }),
        401,
      ],
      [head('POST', '/keys', { ...unreadBody, 'Content-Type': 'application/json' }), 405],
      [head('POST', `/stream/${'A'.repeat(22)}`, unreadBody), 404],
    ];
    for (const [request, status] of cases) {
      const client = await openRaw(served.port, '127.0.0.1', request);
      const elapsed = await timed(client.closed);
      const reply = await client.reply();
      expect(reply.status).toBe(status);
      expect(JSON.parse(reply.body)).toMatchObject({ statusCode: status });
      expect(reply.headers.connection).toBe('close');
      expect(elapsed).toBeLessThan(1000);
    }
  });

  it('close the connection on a 429 whose body is unread', async () => {
    const served = await serve({ rateLimit: 1, banAfter: 0 });
    const { public: pub } = served.relay.keys();
    const first = await openRaw(
      served.port,
      '127.0.0.1',
      `${head('POST', `/public/${pub}`, { 'Content-Type': 'application/json', 'Content-Length': 2 })}{}`,
    );
    expect((await first.reply()).status).toBe(200);
    first.socket.destroy();
    const limited = await openRaw(
      served.port,
      '127.0.0.1',
      head('POST', `/public/${pub}`, { ...unreadBody, 'Content-Type': 'application/json' }),
    );
    const elapsed = await timed(limited.closed);
    const reply = await limited.reply();
    expect(reply.status).toBe(429);
    expect(reply.headers['retry-after']).toBeDefined();
    expect(reply.headers.connection).toBe('close');
    expect(elapsed).toBeLessThan(1000);
  });

  it('keep the connection once the body was read: a 401 after reading leaves it open for the next request', async () => {
    const served = await serve();
    const client = await openRaw(
      served.port,
      '127.0.0.1',
      `${head('POST', `/public/${forgedKey()}`, { 'Content-Type': 'application/json', 'Content-Length': 2 })}{}`,
    );
    const refused = await client.reply();
    expect(refused.status).toBe(401);
    expect(refused.headers.connection).toBe('keep-alive');
    const before = client.received().length;
    client.socket.write(head('GET', '/id', {}));
    await waitFor(
      () => /\r\n\r\n[A-Za-z0-9_-]{8}$/.test(client.received().slice(before)),
      'GET /id on the same socket',
    );
    expect(client.received().slice(before)).toMatch(/^HTTP\/1\.1 200 /);
    client.socket.destroy();
  });
});

describe('connection caps', () => {
  it('refuses connections beyond DEADROP_MAX_CONNECTIONS at once and serves again once some close', async () => {
    const served = await serve({ maxConnections: 20, maxConnectionsPerIp: 0 });
    const held = await Promise.all(Array.from({ length: 20 }, () => openRaw(served.port)));
    await waitFor(() => served.connections.stats().open === 20, '20 open connections');

    const refused = await openRaw(served.port, '127.0.0.1', head('GET', '/id', {}));
    await refused.closed;
    expect(refused.received()).toBe('');
    expect(served.connections.stats().refusedGlobal).toBe(1);

    for (const client of held) client.socket.destroy();
    await waitFor(() => served.connections.stats().open === 0, 'the held connections to close');
    const again = await openRaw(served.port, '127.0.0.1', head('GET', '/id', {}));
    expect((await again.reply()).status).toBe(200);
    again.socket.destroy();
  });

  it('refuses connections beyond DEADROP_MAX_CONNECTIONS_PER_IP from one address, not from another', async () => {
    const served = await serve({ maxConnectionsPerIp: 5 });
    const held = await Promise.all(Array.from({ length: 5 }, () => openRaw(served.port, '127.0.0.2')));
    await waitFor(() => served.connections.stats().open === 5, '5 open connections');
    const sixth = await openRaw(served.port, '127.0.0.2', head('GET', '/id', {}));
    await sixth.closed;
    expect(sixth.received()).toBe('');
    expect(served.connections.stats()).toMatchObject({ refusedPerAddress: 1, addresses: 1 });

    const other = await openRaw(served.port, '127.0.0.3', head('GET', '/id', {}));
    expect((await other.reply()).status).toBe(200);
    other.socket.destroy();
    for (const client of held) client.socket.destroy();
    await waitFor(() => served.connections.stats().addresses === 0, 'every address to be released');
  });

  it('does not apply the per-address cap behind a reverse proxy, where every socket is the proxy’s', async () => {
    const served = await serve({ maxConnectionsPerIp: 2, trustProxy: 1 });
    const held = await Promise.all(Array.from({ length: 4 }, () => openRaw(served.port)));
    await waitFor(() => served.connections.stats().open === 4, '4 open connections');
    expect(served.connections.stats()).toMatchObject({ refusedPerAddress: 0, addresses: 0 });
    for (const client of held) client.socket.destroy();
  });

  it('counts an IPv4-mapped IPv6 peer as its IPv4 address, and an IPv6 peer by its /56', () => {
    expect(clientAddress('::ffff:127.0.0.2')).toBe('127.0.0.2');
    expect(clientAddress('127.0.0.2')).toBe('127.0.0.2');
    expect(clientAddress('2001:db8:1:100::1')).toBe(clientAddress('2001:db8:1:1ff:ffff::2'));
    expect(clientAddress('2001:db8:1:200::1')).not.toBe(clientAddress('2001:db8:1:100::1'));
  });

  it('sizes the default global cap from the open-file limit, leaving descriptors for the rest', () => {
    expect(connectionCapFor(20_000)).toBe(9968);
    expect(connectionCapFor(1024)).toBe(480);
    expect(connectionCapFor(undefined)).toBe(480);
    expect(connectionCapFor(10_000_000)).toBe(65_536);
    expect(connectionCapFor(10)).toBe(1);
  });
});

describe('long answers and pipes keep their own rules', () => {
  it('a long-poll outlives a short body deadline', async () => {
    const served = await serve({ bodyTimeoutMs: 300 });
    const { private: priv } = served.relay.keys();
    const started = performance.now();
    const response = await fetch(`${served.url}/private/${priv}?wait=2`);
    expect(performance.now() - started).toBeGreaterThan(1900);
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual(errorBody(404));
  });

  it('an event stream outlives a short body deadline and still delivers', async () => {
    const served = await serve({ bodyTimeoutMs: 300, sseHeartbeatSeconds: 1 });
    const keys = served.relay.keys();
    const response = await fetch(`${served.url}/private/${keys.private}`, {
      headers: { accept: 'text/event-stream' },
    });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = '';
    const readUntil = async (pattern: RegExp) => {
      while (!pattern.test(text)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`the stream ended; got ${JSON.stringify(text)}`);
        text += decoder.decode(value, { stream: true });
      }
    };
    // The first heartbeat comes a second in, past the 300 ms deadline.
    await readUntil(/: heartbeat/);
    await served.relay.agent.post(`/public/${keys.public}`).send({ late: true }).expect(200);
    await readUntil(/data: \{"late":true\}/);
    await reader.cancel();
  });

  it('a pipe upload slower than the body deadline completes, where the same pace to a write is cut with 408', async () => {
    const bodyTimeoutMs = 300;
    const served = await serve({ bodyTimeoutMs });
    const keys = served.relay.keys();
    const redirect = await fetch(`${served.url}/pipe/${keys.private}`, { redirect: 'manual' });
    const location = new URL(redirect.headers.get('location') as string, served.url).href;
    expect(redirect.status).toBe(307);
    const received = fetch(location).then((response) => response.text());

    const chunks = 6;
    const everyMs = 150; // 6 × 150 ms: three times the deadline
    const paced = (path: string, contentType: string) =>
      new Promise<{ status: number; body: string; ms: number }>((resolve, reject) => {
        const started = performance.now();
        const req = request(`${served.url}${path}`, {
          method: 'POST',
          agent: false,
          headers: { 'content-type': contentType, 'transfer-encoding': 'chunked' },
        });
        let sent = 0;
        const tick = setInterval(() => {
          if (req.destroyed) return clearInterval(tick);
          req.write(`chunk ${sent}\n`);
          sent += 1;
          if (sent === chunks) {
            clearInterval(tick);
            req.end();
          }
        }, everyMs);
        req.once('error', reject);
        req.once('response', (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            body += chunk;
          });
          res.once('end', () =>
            resolve({ status: res.statusCode ?? 0, body, ms: performance.now() - started }),
          );
        });
      });

    const sender = await paced(new URL(location).pathname, 'text/plain');
    expect(sender.status).toBe(200);
    expect(sender.ms).toBeGreaterThan(chunks * everyMs - 50);
    expect(sender.body).toMatch(/Done: 48 bytes sent\.\n$/);
    expect(await received).toBe(Array.from({ length: chunks }, (_, n) => `chunk ${n}\n`).join(''));

    const write = await paced(`/public/${keys.public}`, 'text/plain').catch((error: Error) => error);
    expect(write).not.toBeInstanceOf(Error);
    const { status, body, ms } = write as { status: number; body: string; ms: number };
    expect(status).toBe(408);
    expect(JSON.parse(body)).toEqual(errorBody(408));
    expect(ms).toBeLessThan(chunks * everyMs);
  });
});

describe('settings', () => {
  it('default to a 30 s body deadline, 256 connections per address and a global cap sized at start', () => {
    expect(loadConfig({})).toMatchObject({
      bodyTimeoutMs: 30_000,
      maxConnections: undefined,
      maxConnectionsPerIp: 256,
    });
    expect(
      loadConfig({
        DEADROP_BODY_TIMEOUT: '5000',
        DEADROP_MAX_CONNECTIONS: '2000',
        DEADROP_MAX_CONNECTIONS_PER_IP: '0',
      }),
    ).toMatchObject({ bodyTimeoutMs: 5000, maxConnections: 2000, maxConnectionsPerIp: 0 });
  });

  it('refuse bad values with one sentence each', () => {
    let problems: string[] = [];
    try {
      loadConfig({
        DEADROP_BODY_TIMEOUT: '0',
        DEADROP_MAX_CONNECTIONS: '0',
        DEADROP_MAX_CONNECTIONS_PER_IP: 'lots',
      });
    } catch (error) {
      if (error instanceof ConfigError) problems = error.problems;
    }
    expect(problems).toEqual([
      'DEADROP_BODY_TIMEOUT must be a number of milliseconds from 1 to 3600000, but it is "0".',
      'DEADROP_MAX_CONNECTIONS must be a number of connections from 1 to 10000000, but it is "0".',
      'DEADROP_MAX_CONNECTIONS_PER_IP must be a number of connections from 0 to 10000000, but it is "lots".',
    ]);
  });
});
