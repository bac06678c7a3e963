// Relay failures in one wording, each from a real failure on loopback, and the same sentence from keys, drop and call.
import { execFile } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { Resolver } from 'node:dns';
import { writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer, type Socket, type Server as TcpServer } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../sdk/index.js';
import { runCall } from '../src/client/call-command.js';
import { describeRelayFailure, parseRelayUrl, RelayError } from '../src/client/relay-errors.js';
import { createUserKeyFile } from '../src/client/user-keys.js';
import { runDropCommand } from '../src/drop/cli.js';
import { tempDir } from './helpers.js';

/** What a request to `url` throws (it must throw). */
async function failureOf(request: () => Promise<unknown>): Promise<unknown> {
  try {
    await request();
  } catch (error) {
    return error;
  }
  throw new Error('the request did not fail');
}

const listenOn = <T extends Server | TcpServer>(server: T) =>
  new Promise<number>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
  );

/** A port that was free a moment ago and has nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  const port = await listenOn(server);
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * A DNS server on loopback that answers every query NXDOMAIN: the ID and question of the query, the response
 * bit and RCODE 3, no records. The lookups of the test ask it, not the machine's resolver.
 */
async function nxdomainServer(): Promise<{ socket: UdpSocket; port: number; names: string[] }> {
  const socket = createSocket('udp4');
  const names: string[] = [];
  socket.on('message', (query, peer) => {
    let end = 12;
    const labels: string[] = [];
    while (end < query.length && query[end] !== 0) {
      labels.push(query.subarray(end + 1, end + 1 + (query[end] as number)).toString());
      end += (query[end] as number) + 1;
    }
    names.push(labels.join('.'));
    const answer = Buffer.from(query.subarray(0, end + 5));
    answer.writeUInt16BE(0x8183, 2);
    answer.writeUInt16BE(1, 4);
    answer.fill(0, 6, 12);
    socket.send(answer, peer.port, peer.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { socket, port: socket.address().port, names };
}

let plainHttp: Server;
let plainPort: number;
let silent: TcpServer;
let silentPort: number;
const held: Socket[] = [];
let notRelay: Server;
let notRelayPort: number;
let relay: Server;
let relayPort: number;
let dns: Awaited<ReturnType<typeof nxdomainServer>>;

beforeAll(async () => {
  plainHttp = createHttpServer((_, res) => res.end('plain'));
  plainPort = await listenOn(plainHttp);
  silent = createServer((socket) => held.push(socket));
  silentPort = await listenOn(silent);
  notRelay = createHttpServer((_, res) => {
    res.statusCode = 404;
    res.setHeader('content-type', 'text/html');
    res.end('<h1>Not here</h1>');
  });
  notRelayPort = await listenOn(notRelay);
  // A relay's error answer, as its catalog words it.
  relay = createHttpServer((_, res) => {
    res.statusCode = 429;
    res.setHeader('content-type', 'application/json');
    res.end(
      JSON.stringify({
        statusCode: 429,
        error: 'Too Many Requests',
        message: 'Slow down; try again in 60 s.',
      }),
    );
  });
  relayPort = await listenOn(relay);
  dns = await nxdomainServer();
});

afterAll(async () => {
  for (const socket of held) socket.destroy();
  await Promise.all(
    [plainHttp, silent, notRelay, relay].map((server) => new Promise((resolve) => server.close(resolve))),
  );
  dns.socket.close();
});

describe('a relay URL', () => {
  it('that is not a URL, or not http(s), is refused before any request, with an example', () => {
    expect(() => parseRelayUrl('http//relay.example')).toThrow(RelayError);
    expect(() => parseRelayUrl('http//relay.example')).toThrow(
      '"http//relay.example" is not a relay URL; give one such as https://relay.example or http://localhost:8080.',
    );
    expect(() => parseRelayUrl('ftp://relay.example')).toThrow(
      'The relay URL ftp://relay.example starts with "ftp:"; a relay is reached over http:// or https://',
    );
    expect(parseRelayUrl('https://relay.example/sub/')).toBe('https://relay.example/sub');
  });

  it('that fetch itself cannot parse or reach by its scheme is worded the same', async () => {
    expect(describeRelayFailure(await failureOf(() => fetch('http//x/keys')), 'http//x')).toBe(
      '"http//x" is not a relay URL; give one such as https://relay.example or http://localhost:8080.',
    );
    const scheme = await failureOf(() => fetch('ftp://127.0.0.1/keys'));
    expect(describeRelayFailure(scheme, 'ftp://127.0.0.1')).toMatch(
      /starts with "ftp:"; a relay is reached over/,
    );
  });
});

describe('a failed request names the relay and what to check', () => {
  it('a refused connection: nothing listens there', async () => {
    const port = await closedPort();
    const relayUrl = `http://127.0.0.1:${port}`;
    const error = await failureOf(() => createClient(relayUrl).keys());
    expect(describeRelayFailure(error, relayUrl)).toBe(
      `Nothing is listening at 127.0.0.1:${port} (connection refused): is the relay running, and are the host and port of ${relayUrl} right?`,
    );
  });

  it('TLS to a plain-HTTP relay: use http://', async () => {
    const relayUrl = `https://127.0.0.1:${plainPort}`;
    const error = await failureOf(() => createClient(relayUrl).keys());
    expect(describeRelayFailure(error, relayUrl)).toBe(
      `${relayUrl} does not speak TLS (it answers in plain HTTP): use http:// instead of https://, or put TLS in front of the relay.`,
    );
  });

  it('a name that does not resolve: check the spelling and the DNS', async () => {
    const resolver = new Resolver();
    resolver.setServers([`127.0.0.1:${dns.port}`]);
    const lookup = (
      hostname: string,
      options: { all?: boolean },
      callback: (error: Error | null, address?: unknown, family?: number) => void,
    ) =>
      resolver.resolve4(hostname, (error, addresses) => {
        if (error) callback(error);
        else if (options.all)
          callback(
            null,
            addresses.map((address) => ({ address, family: 4 })),
          );
        else callback(null, addresses[0], 4);
      });
    const dispatcher = new Agent({ connect: { lookup } as never });
    const relayUrl = 'http://relay.deadrop-test.invalid:8080';
    try {
      const error = await failureOf(() => undiciFetch(`${relayUrl}/keys`, { dispatcher }));
      expect(describeRelayFailure(error, relayUrl)).toBe(
        `The name relay.deadrop-test.invalid does not resolve (ENOTFOUND): check its spelling in ${relayUrl}, and this machine's DNS.`,
      );
      expect(dns.names).toContain('relay.deadrop-test.invalid');
    } finally {
      await dispatcher.close();
    }
  });

  it('a relay that does not answer in time', async () => {
    const relayUrl = `http://127.0.0.1:${silentPort}`;
    const error = await failureOf(() => createClient(relayUrl).keys({ signal: AbortSignal.timeout(300) }));
    expect(describeRelayFailure(error, relayUrl)).toBe(
      `The relay at ${relayUrl} did not answer in time: check that it is up, and that no firewall or proxy holds the connection.`,
    );
  });

  it("a relay's error answer: its own message", async () => {
    const relayUrl = `http://127.0.0.1:${relayPort}`;
    const error = await failureOf(() => createClient(relayUrl).keys());
    expect(describeRelayFailure(error, relayUrl)).toBe(
      `The relay at ${relayUrl} answered 429 Too Many Requests: Slow down; try again in 60 s.`,
    );
  });

  it('a server that is not a relay answering an error: check the URL', async () => {
    const relayUrl = `http://127.0.0.1:${notRelayPort}`;
    const error = await failureOf(() => createClient(relayUrl).keys());
    expect(describeRelayFailure(error, relayUrl)).toBe(
      `${relayUrl} answered 404 Not Found with no message, unlike a deadrop relay: check that the URL is the relay's own (without a path), and that a proxy in front of it passes requests through.`,
    );
  });
});

/** Output captured as text. */
function capture() {
  let out = '';
  let err = '';
  const sink = (add: (text: string) => void) =>
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        add(chunk.toString());
        done();
      },
    });
  return {
    stdout: sink((text) => {
      out += text;
    }),
    stderr: sink((text) => {
      err += text;
    }),
    out: () => out,
    err: () => err,
  };
}

describe('keys, drop and call', () => {
  it('word a relay that is not there the same way', async () => {
    const port = await closedPort();
    const relayUrl = `http://127.0.0.1:${port}`;
    const sentence = `Nothing is listening at 127.0.0.1:${port} (connection refused): is the relay running, and are the host and port of ${relayUrl} right?`;

    const keys = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'src/cli.ts', 'keys', '--relay', relayUrl],
      {},
    ).catch((error: { code: number; stderr: string }) => error);
    expect(keys).toMatchObject({ code: 1, stderr: `deadrop keys: ${sentence}\n` });

    const dir = await tempDir();
    const file = join(dir, 'f.txt');
    await writeFile(file, 'x');
    const drop = capture();
    const dropIo = { ...drop, stdin: process.stdin, env: {}, cwd: dir };
    expect(await runDropCommand(['send', file, '--relay', relayUrl], dropIo)).toBe(1);
    expect(drop.err()).toBe(`deadrop: ${sentence}\n`);

    await createUserKeyFile(join(dir, 'user.json'));
    const call = capture();
    const address = `${relayUrl}/public/${'A'.repeat(32)}#AB:CD`;
    expect(await runCall([address, 'fs', 'list', '--key', join(dir, 'user.json')], call)).toBe(1);
    expect(call.err()).toBe(`deadrop call: ${sentence}\n`);
  }, 30_000);

  it('refuse a relay URL that is not one before any request', async () => {
    const keys = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'src/cli.ts', 'keys', '--relay', 'localhost:8080'],
      {},
    ).catch((error: { code: number; stderr: string }) => error);
    expect(keys).toMatchObject({
      code: 1,
      stderr: expect.stringContaining(
        'deadrop keys: The relay URL localhost:8080 starts with "localhost:"; a relay is reached over http:// or https://',
      ),
    });
    const drop = capture();
    const dropIo = { ...drop, stdin: process.stdin, env: {}, cwd: process.cwd() };
    expect(await runDropCommand(['status', `${'A'.repeat(32)}.1`, '--relay', 'http//x'], dropIo)).toBe(1);
    expect(drop.err()).toBe(
      'deadrop: "http//x" is not a relay URL; give one such as https://relay.example or http://localhost:8080.\n',
    );
  }, 30_000);
});
