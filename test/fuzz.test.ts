// Fuzzing a real relay over raw TCP: thousands of malformed requests, never a 5xx, errors as JSON, data intact.
import { connect } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KeyPair } from '../src/keys.js';
import { listen, openTestRelay, type TestRelay } from './helpers.js';

/** Fixed so that every run sends the same requests; `FUZZ_SEED=<n>` explores others. */
const SEED = Number(process.env.FUZZ_SEED ?? 20_260_611);
/** Requests sent at once by each run of a property: two cores, a few sockets each. */
const BATCH = 8;
const ANSWER_TIMEOUT_MS = 2000;
/** A client that sent less than it announced, or that waits on a pipe, hangs up after this long. */
const HANG_UP_AFTER_MS = 50;
const BODY_LIMIT = 10_240;
const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
/** Node's HTTP server answers these itself, bare, before Express: a parse error or header overflow (then closes). */
const NODE_PARSER_STATUSES = new Set([400, 431]);

// ---------------------------------------------------------------------------------------------------------
// A raw HTTP/1.1 client: every byte of the request is ours, only the first answer is read.

interface Reply {
  status: number;
  head: string;
  headers: Map<string, string>;
  body: Buffer;
  /** The body arrived whole (by its Content-Length, its last chunk, or the server closing). */
  complete: boolean;
}

type Outcome = { kind: 'reply'; reply: Reply } | { kind: 'closed'; reason: string } | { kind: 'timeout' };

/** The chunks of a chunked body received so far, and whether its last chunk arrived. */
function dechunk(data: Buffer): { body: Buffer; done: boolean } {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd < 0) break;
    const size = Number.parseInt(data.subarray(at, lineEnd).toString('latin1'), 16);
    if (!Number.isInteger(size)) break;
    if (size === 0) return { body: Buffer.concat(parts), done: data.length >= lineEnd + 4 };
    if (data.length < lineEnd + 2 + size + 2) break;
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 4 + size;
  }
  return { body: Buffer.concat(parts), done: false };
}

/** The first final answer in `data` (interim 1xx answers are skipped), or undefined before its head is in. */
function readReply(data: Buffer, isHead: boolean): { reply: Reply; untilClose: boolean } | undefined {
  let start = 0;
  for (;;) {
    const end = data.indexOf('\r\n\r\n', start);
    if (end < 0) return undefined;
    const head = data.subarray(start, end).toString('latin1');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? Number.NaN);
    if (status >= 100 && status < 200) {
      start = end + 4;
      continue;
    }
    const headers = new Map<string, string>();
    for (const line of head.split('\r\n').slice(1)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
    }
    const rest = data.subarray(end + 4);
    const reply: Reply = { status, head, headers, body: Buffer.alloc(0), complete: true };
    // An event stream never ends: its head is the whole answer here.
    const eventStream = (headers.get('content-type') ?? '').startsWith('text/event-stream');
    if (isHead || status === 204 || status === 304 || eventStream) return { reply, untilClose: false };
    if (/chunked/i.test(headers.get('transfer-encoding') ?? '')) {
      const { body, done } = dechunk(rest);
      return { reply: { ...reply, body, complete: done }, untilClose: false };
    }
    const length = headers.get('content-length');
    if (length !== undefined) {
      const size = Number(length);
      return {
        reply: { ...reply, body: rest.subarray(0, size), complete: rest.length >= size },
        untilClose: false,
      };
    }
    return { reply: { ...reply, body: rest, complete: false }, untilClose: true };
  }
}

/**
 * Sends `bytes` on a fresh connection and reads the first answer. With `hangUpAfterMs`, the client closes
 * the connection after that long without a whole answer (and the outcome is what arrived until then).
 */
function exchange(
  port: number,
  bytes: Buffer,
  options: { isHead?: boolean; hangUpAfterMs?: number } = {},
): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let data = Buffer.alloc(0);
    let settled = false;
    let failure: string | undefined;
    const timers: NodeJS.Timeout[] = [];
    const finish = (outcome: Outcome) => {
      if (settled) return;
      settled = true;
      for (const timer of timers) clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const finishWithWhatArrived = (reason: string, closed: boolean) => {
      const parsed = readReply(data, options.isHead === true);
      if (!parsed) finish({ kind: 'closed', reason });
      else
        finish({
          kind: 'reply',
          reply: { ...parsed.reply, complete: parsed.reply.complete || (closed && parsed.untilClose) },
        });
    };
    timers.push(setTimeout(() => finish({ kind: 'timeout' }), ANSWER_TIMEOUT_MS));
    if (options.hangUpAfterMs !== undefined) {
      timers.push(
        setTimeout(() => finishWithWhatArrived('the client hung up', false), options.hangUpAfterMs),
      );
    }
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      const parsed = readReply(data, options.isHead === true);
      if (parsed?.reply.complete) finish({ kind: 'reply', reply: parsed.reply });
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      failure = error.code ?? error.message;
    });
    socket.on('close', () => finishWithWhatArrived(failure ?? 'the server closed the connection', true));
    socket.write(bytes);
  });
}

/** A well-formed request with `Connection: close`, for setting up and checking stored data. */
async function send(port: number, method: string, path: string, body?: { type: string; text: string }) {
  const content = body ? Buffer.from(body.text) : Buffer.alloc(0);
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close'];
  if (body) lines.push(`Content-Type: ${body.type}`, `Content-Length: ${content.length}`);
  const outcome = await exchange(
    port,
    Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), content]),
  );
  if (outcome.kind !== 'reply') throw new Error(`${method} ${path}: no answer (${outcome.kind})`);
  return { status: outcome.reply.status, text: outcome.reply.body.toString('utf8') };
}

// ---------------------------------------------------------------------------------------------------------
// Requests as data: what the fuzzer generates, how it goes on the wire, and what it may be answered.

type Framing = 'length' | 'none' | 'chunked' | 'bad-chunks' | 'truncated' | 'short-length';

interface FuzzRequest {
  method: string;
  target: string;
  version: 'HTTP/1.1' | 'HTTP/1.0';
  host: boolean;
  headers: [string, string][];
  body: Buffer;
  /** How the body is announced: exactly, not at all, chunked (well or not), more than sent, or less than sent. */
  framing: Framing;
  chunkSize: number;
}

function chunked(body: Buffer, chunkSize: number): Buffer {
  const parts: Buffer[] = [];
  for (let at = 0; at < body.length; at += chunkSize) {
    const chunk = body.subarray(at, at + chunkSize);
    parts.push(Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}

function encode(request: FuzzRequest): Buffer {
  const { body, framing } = request;
  const lines = [`${request.method} ${request.target} ${request.version}`];
  if (request.host) lines.push('Host: 127.0.0.1');
  for (const [name, value] of request.headers) lines.push(`${name}: ${value}`);
  let payload = body;
  if (framing === 'length') lines.push(`Content-Length: ${body.length}`);
  if (framing === 'truncated') lines.push(`Content-Length: ${body.length + 1 + (body.length % 997)}`);
  if (framing === 'short-length') lines.push(`Content-Length: ${Math.floor(body.length / 2)}`);
  if (framing === 'chunked') {
    lines.push('Transfer-Encoding: chunked');
    payload = chunked(body, request.chunkSize);
  }
  if (framing === 'bad-chunks') {
    // A good first chunk, then a size that is not hexadecimal or overflows, or a chunk longer than announced.
    lines.push('Transfer-Encoding: chunked');
    const first = body.subarray(0, request.chunkSize);
    const bad = ['zz\r\n', 'ffffffffffffffffffff\r\n', '1;\u0000\r\n', `1\r\n${'x'.repeat(10)}\r\n0\r\n\r\n`];
    payload = Buffer.concat([
      Buffer.from(`${first.length.toString(16)}\r\n`),
      first,
      Buffer.from(`\r\n${bad[request.chunkSize % bad.length]}`),
    ]);
  }
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8'), payload]);
}

/** Requests that may rightly get no answer: the client hangs up first, a pipe waits, Node drops CONNECT. */
const mayGoUnanswered = (request: FuzzRequest) =>
  request.framing === 'truncated' || request.target.includes('/stream/') || request.method === 'CONNECT';

function describeRequest(request: FuzzRequest): string {
  const bytes = encode(request);
  const shown = JSON.stringify(bytes.subarray(0, 600).toString('latin1'));
  return `${shown}${bytes.length > 600 ? ` … (${bytes.length} bytes in all)` : ''}, framing ${request.framing}`;
}

/** Why this answer breaks the relay's contract, or undefined when it keeps it. */
function violation(request: FuzzRequest, outcome: Outcome): string | undefined {
  if (outcome.kind !== 'reply') {
    if (mayGoUnanswered(request)) return undefined;
    return outcome.kind === 'timeout'
      ? `no answer within ${ANSWER_TIMEOUT_MS} ms`
      : `no answer (${outcome.reason})`;
  }
  const { reply } = outcome;
  if (!Number.isInteger(reply.status))
    return `not an HTTP answer: ${JSON.stringify(reply.head.slice(0, 100))}`;
  if (reply.status >= 500) return `answered ${reply.status}: ${reply.body.toString('utf8').slice(0, 300)}`;
  if (reply.status < 400) return undefined;
  if (reply.body.length === 0) {
    const fromParser = NODE_PARSER_STATUSES.has(reply.status) && reply.headers.get('connection') === 'close';
    // 417 is Node's own answer to an Expect header other than 100-continue.
    if (request.method === 'HEAD' || fromParser || reply.status === 417) return undefined;
    return `answered ${reply.status} with an empty body`;
  }
  if (!reply.complete) {
    return mayGoUnanswered(request) ? undefined : `answered ${reply.status} with a cut-short body`;
  }
  let json: unknown;
  try {
    json = JSON.parse(reply.body.toString('utf8'));
  } catch {
    return `answered ${reply.status} with a body that is not JSON: ${reply.body.toString('utf8').slice(0, 200)}`;
  }
  const error = json as Record<string, unknown>;
  const keys = Object.keys(error ?? {}).sort();
  if (
    error?.statusCode !== reply.status ||
    typeof error.error !== 'string' ||
    typeof error.message !== 'string' ||
    typeof error.code !== 'string' ||
    keys.join() !== 'code,error,message,statusCode'
  ) {
    return `answered ${reply.status} with ${JSON.stringify(json).slice(0, 200)}, not {statusCode, error, message, code}`;
  }
  return undefined;
}

/** Sends a batch at once; fails with every request that broke the contract, so fast-check can shrink it. */
async function sendBatch(port: number, requests: FuzzRequest[], counter: { sent: number }) {
  const outcomes = await Promise.all(
    requests.map((request) =>
      exchange(port, encode(request), {
        isHead: request.method === 'HEAD',
        ...(mayGoUnanswered(request) && { hangUpAfterMs: HANG_UP_AFTER_MS }),
      }),
    ),
  );
  counter.sent += requests.length;
  const failures = requests.flatMap((request, index) => {
    const problem = violation(request, outcomes[index] as Outcome);
    return problem ? [`${problem}\n    request: ${describeRequest(request)}`] : [];
  });
  if (failures.length > 0) {
    throw new Error(`The relay broke its contract:\n  ${failures.join('\n  ')}`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Arbitraries.

const base64url = (minLength: number, maxLength: number) =>
  fc.string({ unit: fc.constantFrom(...BASE64URL), minLength, maxLength });

const STRANGE_KEY_CHARS = [
  '+',
  '/',
  '=',
  '.',
  '~',
  '!',
  '*',
  "'",
  '(',
  ')',
  ',',
  ';',
  ':',
  '@',
  '$',
  '&',
  ' ',
];

/** Keys of every kind: the fuzzed pairs' own, forged, mutated, cut, extended, with strange characters. */
function keyArbitrary(targets: KeyPair[], untouchable: KeyPair) {
  const valid = fc.constantFrom(...targets.flatMap((pair) => [pair.private, pair.public]));
  // The untouchable pair's keys appear only changed, so that no request can reach its data.
  const guarded = fc.constantFrom(untouchable.private, untouchable.public);
  const replaceAt = (key: string, at: number, char: string) =>
    key.slice(0, at) + (key[at] === char ? (char === 'A' ? 'B' : 'A') : char) + key.slice(at + 1);
  const plain = fc.oneof(
    { weight: 6, arbitrary: valid },
    { weight: 3, arbitrary: base64url(32, 32) },
    {
      weight: 3,
      arbitrary: fc
        .tuple(fc.oneof(valid, guarded), fc.nat(31), fc.constantFrom(...BASE64URL))
        .map(([key, at, char]) => replaceAt(key, at, char)),
    },
    { weight: 1, arbitrary: fc.tuple(valid, fc.nat(31)).map(([key, length]) => key.slice(0, length)) },
    { weight: 1, arbitrary: fc.tuple(valid, base64url(1, 8)).map(([key, more]) => key + more) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(valid, fc.nat(31), fc.constantFrom(...STRANGE_KEY_CHARS))
        .map(([key, at, char]) =>
          replaceAt(key, at, encodeURIComponent(char) === char ? char : encodeURIComponent(char)),
        ),
    },
    {
      weight: 1,
      arbitrary: fc.tuple(valid, valid).map(([signed, other]) => signed.slice(0, 10) + other.slice(10)),
    },
    { weight: 1, arbitrary: fc.constantFrom('', 'x', 'A'.repeat(31), 'A'.repeat(33), '-'.repeat(32)) },
    { weight: 1, arbitrary: fc.integer({ min: 33, max: 4000 }).map((length) => 'k'.repeat(length)) },
  );
  return fc.tuple(plain, fc.nat(31)).chain(([key, at]) =>
    fc.oneof(
      { weight: 10, arbitrary: fc.constant(key) },
      // Every character percent-encoded (upper- or lower-case hex): the same key once decoded.
      {
        weight: 2,
        arbitrary: fc.boolean().map((lower) =>
          [...key]
            .map((char) => {
              const hex = `%${char.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`;
              return lower ? hex.toLowerCase() : hex;
            })
            .join(''),
        ),
      },
      {
        weight: 3,
        arbitrary: fc
          .constantFrom(
            '%00',
            '%2F',
            '%2f',
            '%zz',
            '%',
            '%E0%A4%A',
            '%C3%A9',
            '%F0%9F%99%82',
            '%u0041',
            '%25',
            ';x=1',
            '/',
            '%2E%2E',
            '\u00e9',
            '\u{1F642}',
            '\u0000',
          )
          .map((insert) => key.slice(0, at) + insert + key.slice(at)),
      },
    ),
  );
}

const uidArbitrary = fc.oneof(
  { weight: 4, arbitrary: fc.stringMatching(/^[A-Za-z0-9._~-]{1,64}$/) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '',
      '.',
      '..',
      '%2E%2E',
      'a'.repeat(65),
      'a%20b',
      'a%00b',
      'a%2Fb',
      '%zz',
      '%C3%A9',
      'u\u00e9',
      'x;y',
      'x%',
    ),
  },
  { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom(...'ab~-._!$&()*+,;=:@'), maxLength: 70 }) },
);

const tokenArbitrary = fc.oneof(
  base64url(22, 22),
  base64url(0, 40),
  fc.constantFrom('%00', '..', '%2F', 'x'.repeat(3000)),
);

/** Junk of characters that can never spell a digit, an absolute URL or a percent-escape. */
const junk = (maxLength: number) =>
  fc.string({ unit: fc.constantFrom(...'abcxyzWAIT=&+-_.~!*()/?[],;@$'), maxLength });

/** Hook URLs the relay must refuse without resolving a name: literals of internal addresses, bad URLs. */
const REFUSED_HOOKS = [
  '',
  'x',
  'http://127.0.0.1/hook',
  'http://127.0.0.1:1/?token=abc',
  'http://[::1]/',
  'http://10.0.0.1:9/',
  'http://169.254.169.254/latest/meta-data',
  'http://0.0.0.0/',
  'http://2130706433/',
  'http://0x7f000001/',
  'http://user:pass@127.0.0.1/',
  'http://%zz@127.0.0.1/',
  'https://[fe80::1]/',
  'ftp://192.0.2.1/',
  'javascript:alert(1)',
  'file:///etc/passwd',
  'http://:80/',
  'http:///',
  `http://${'a'.repeat(3000)}.example/`,
];

/** `?wait=` only with values that answer at once: refused, or at most 0.05 s. */
const WAITS = ['0', '0.0', '0.01', '0.05', '00', '0.000', '', '-1', '-0', 'abc', '1e-3', '0x0', 'NaN'];
const MORE_WAITS = ['Infinity', '61', '100000', '60.5', '%zz', '0.05.1', '%200', '+0', '0,1', '%EF%BC%91'];

const queryArbitrary = fc.oneof(
  { weight: 6, arbitrary: fc.constant('') },
  {
    weight: 2,
    arbitrary: fc.constantFrom('?stats', '?stats=1', '?', '?&', '?stats&stats', '?%zz', '?a=%E0%A4%A'),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(
        fc.constantFrom('ok', 'err'),
        fc.constantFrom(
          'http://example.com/ok',
          'https://x.example/e?a=1',
          'http://x.example/%0D%0ASet-Cookie:%20a=b',
          'http://x.example/\r\nSet-Cookie: a=b',
          'http://x.example/\u00e9?\u{1F642}',
          'http://[::1',
          `http://x.example/${'a'.repeat(8000)}`,
          'javascript:x',
          '//x',
          '',
          'rel',
          'http:',
        ),
        fc.boolean(),
      )
      .map(([name, url, encoded]) => `?${name}=${encoded ? encodeURIComponent(url) : url}`),
  },
  { weight: 1, arbitrary: fc.constant('?ok=http://example.com/ok&err=http://example.com/err') },
  { weight: 1, arbitrary: fc.constant('?ok=http://example.com/a&ok=http://example.com/b') },
  { weight: 3, arbitrary: fc.constantFrom(...WAITS, ...MORE_WAITS).map((wait) => `?wait=${wait}`) },
  { weight: 1, arbitrary: fc.constantFrom('?wait=0&wait=0', '?wait', '?wait=0.01&stats') },
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.constantFrom(...REFUSED_HOOKS), fc.boolean())
      .map(([url, encoded]) => `?hook=${encoded ? encodeURIComponent(url) : url}`),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom('?hook', '?hook=a&hook=b', '?lastEventId=x', '?lastEventId=12345678901234567'),
  },
  { weight: 2, arbitrary: junk(60).map((query) => `?${query}`) },
);

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'TRACE'];
const methodArbitrary = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom(...METHODS) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('CONNECT', 'PROPFIND', 'MKCOL', 'PURGE', 'SEARCH', 'LOCK', 'M-SEARCH'),
  },
  { weight: 1, arbitrary: fc.constantFrom('get', 'Post', 'GETT', 'G\u00c9T', '', 'GET\u0000', 'DELETE /x') },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}$/) },
);

function pathArbitrary(targets: KeyPair[], untouchable: KeyPair) {
  const key = keyArbitrary(targets, untouchable);
  return fc.oneof(
    { weight: 1, arbitrary: fc.constantFrom('/keys', '/id', '/ID', '/id/', '/keys/', '/') },
    { weight: 2, arbitrary: key.map((k) => `/keys/${k}`) },
    { weight: 5, arbitrary: key.map((k) => `/public/${k}`) },
    { weight: 5, arbitrary: key.map((k) => `/private/${k}`) },
    { weight: 3, arbitrary: fc.tuple(key, uidArbitrary).map(([k, uid]) => `/public/${k}/${uid}`) },
    { weight: 3, arbitrary: fc.tuple(key, uidArbitrary).map(([k, uid]) => `/private/${k}/${uid}`) },
    { weight: 1, arbitrary: key.map((k) => `/pipe/${k}`) },
    { weight: 1, arbitrary: tokenArbitrary.map((token) => `/stream/${token}`) },
    { weight: 1, arbitrary: junk(40).map((path) => `/${path}`) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(
          fc.constantFrom('/public/', '/private/', '/', '/keys/'),
          fc.integer({ min: 1000, max: 20_000 }),
        )
        .map(([prefix, length]) => prefix + 'a'.repeat(length)),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.constantFrom('public', 'private', 'keys'), key)
        .chain(([route, k]) =>
          fc.constantFrom(
            `//${route}//${k}`,
            `/${route}/./${k}`,
            `/${route}/../${route}/${k}`,
            `/./id`,
            `/id/..`,
            `/public/../private/${k}`,
            `/${route.toUpperCase()}/${k}`,
            `/${route}/${k}/`,
            `/${route}/${k}//x`,
            `/${route}%2F${k}`,
            `/${route}/${k}#frag`,
            `/${route}\u00e9/${k}`,
          ),
        ),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom('*', 'http://127.0.0.1/id', 'http://[::1]:1/keys', '', 'id', '/%', '/%00'),
    },
  );
}

/** Content types the relay takes, spelled in the ways clients spell them. */
const ACCEPTED_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=UTF8',
  'application/json; charset="utf-8"',
  'APPLICATION/JSON',
  'text/plain',
  'text/plain; charset=us-ascii',
  'application/x-www-form-urlencoded',
  'application/x-www-form-urlencoded; charset=utf-8',
];

const ODD_TYPES = [
  'application/json; charset=latin1',
  'application/json; charset=utf-16',
  'application/json;',
  'application/json; charset',
  'application/json; =',
  'application/json; a=1; a=2',
  'text/plain; charset=iso-8859-1',
  `text/plain; charset=${'x'.repeat(300)}`,
  'multipart/form-data; boundary=----x',
  'application/octet-stream',
  'text/html',
  'application/*',
  '*/*',
  '',
  ' ',
  ';',
  '/',
  'json',
  'appl\u00ecation/json',
  'text/plain\u{1F642}',
];

const contentType = fc
  .oneof({ weight: 3, arbitrary: fc.constantFrom(...ACCEPTED_TYPES) }, fc.constantFrom(...ODD_TYPES))
  .map((type): [string, string] => ['Content-Type', type]);

const headerArbitrary: fc.Arbitrary<[string, string]> = fc.oneof(
  { weight: 8, arbitrary: contentType },
  { weight: 1, arbitrary: junk(80).map((type): [string, string] => ['Content-Type', type]) },
  {
    weight: 3,
    arbitrary: fc
      .constantFrom('text/event-stream', 'application/json', '*/*', 'text/event-stream;q=0', 'x/\u00e9')
      .map((accept): [string, string] => ['Accept', accept]),
  },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom('0', '1', 'x', '-1', '99999999999999999', '')
      .map((id): [string, string] => ['Last-Event-ID', id]),
  },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom('gzip', 'identity', 'br', 'deflate, gzip', 'x')
      .map((encoding): [string, string] => ['Content-Encoding', encoding]),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom('100-continue', 'junk').map((expect): [string, string] => ['Expect', expect]),
  },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: 100, max: 20_000 })
      .map((length): [string, string] => ['X-Huge', 'h'.repeat(length)]),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom<[string, string]>(
      ['Connection', 'close'],
      ['Connection', 'keep-alive'],
      ['Connection', 'Upgrade'],
      ['Upgrade', 'websocket'],
      ['Upgrade', 'h2c'],
      ['Origin', 'http://evil.example'],
      ['Access-Control-Request-Method', 'POST'],
      ['Access-Control-Request-Headers', 'x-a, content-type'],
      ['Transfer-Encoding', 'gzip'],
      ['Transfer-Encoding', 'identity'],
      ['Content-Length', 'abc'],
      ['Content-Length', '-1'],
      ['Content-Length', '1, 2'],
      ['Host', 'other.example'],
      ['Host', ''],
      ['X-Forwarded-For', '1.2.3.4, ::1, junk'],
      ['X-Unicode', '\u00e9\u{1F642}'],
      ['X-Nul', 'a\u0000b'],
      ['X Bad Name', 'x'],
      ['X-Bad\u00e9', 'x'],
      ['Range', 'bytes=0-1'],
      ['If-None-Match', '*'],
      ['If-Modified-Since', 'Thu, 01 Jan 2099 00:00:00 GMT'],
      ['Cookie', 'a=b; c'],
      ['Authorization', 'Bearer x'],
    ),
  },
);

const bodyArbitrary = fc.oneof(
  { weight: 4, arbitrary: fc.json({ maxDepth: 3 }).map((json) => Buffer.from(json)) },
  { weight: 3, arbitrary: fc.string({ maxLength: 200 }).map((text) => Buffer.from(text)) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 100 }).map((text) => Buffer.from(text)) },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom(
        'a=1&b=2',
        'a=%zz&b',
        '&&&==',
        'a[b]=1&a[c]=2',
        '__proto__=x&constructor[prototype][x]=1',
        '\uFEFF{"a":1}',
        '{"__proto__":{"x":1}}',
        '1e99999',
        '-0',
        '123456789012345678901234567890',
        '{"a":1,"a":2}',
        '[',
        '"\\ud800"',
        'null',
        ' ',
        `${'['.repeat(5000)}${']'.repeat(5000)}`,
        `${'{"a":'.repeat(2000)}1${'}'.repeat(2000)}`,
      )
      .map((text) => Buffer.from(text)),
  },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 2000 }).map((bytes) => Buffer.from(bytes)) },
  { weight: 2, arbitrary: fc.constant(Buffer.alloc(0)) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.integer({ min: BODY_LIMIT - 2, max: 100_000 }), fc.constantFrom('"', 'x', '\u00e9'))
      .map(([length, fill]) => Buffer.from(fill.repeat(length)).subarray(0, length)),
  },
);

const framingArbitrary = fc.oneof(
  { weight: 8, arbitrary: fc.constant<Framing>('length') },
  { weight: 3, arbitrary: fc.constant<Framing>('chunked') },
  { weight: 1, arbitrary: fc.constant<Framing>('none') },
  { weight: 1, arbitrary: fc.constant<Framing>('bad-chunks') },
  { weight: 2, arbitrary: fc.constant<Framing>('truncated') },
  { weight: 1, arbitrary: fc.constant<Framing>('short-length') },
);

/** Requests shaped by `emphasis`: the routes and keys, the headers and bodies, or the query strings. */
function requestArbitrary(
  targets: KeyPair[],
  untouchable: KeyPair,
  emphasis: 'routes' | 'bodies' | 'queries',
): fc.Arbitrary<FuzzRequest> {
  const path = pathArbitrary(targets, untouchable);
  const writePath = fc.oneof(
    path,
    fc.constantFrom(...targets).chain((pair) =>
      fc.oneof(
        fc.constant(`/public/${pair.public}`),
        fc.constant(`/private/${pair.private}`),
        uidArbitrary.map((uid) => `/private/${pair.private}/${uid}`),
      ),
    ),
  );
  const readPath = fc.constantFrom(...targets).chain((pair) =>
    fc.oneof(
      fc.constant(`/private/${pair.private}`),
      fc.constant(`/public/${pair.public}`),
      uidArbitrary.map((uid) => `/public/${pair.public}/${uid}`),
      path,
    ),
  );
  const few = (max: number) => fc.array(headerArbitrary, { maxLength: max });
  const simpleBody = fc.oneof(
    fc.json({ maxDepth: 2 }).map((json) => Buffer.from(json)),
    fc.constant(Buffer.alloc(0)),
  );
  const shape = {
    routes: {
      method: methodArbitrary,
      target: fc.tuple(path, queryArbitrary).map(([p, q]) => p + q),
      headers: fc.oneof(fc.constant<[string, string][]>([['Content-Type', 'application/json']]), few(2)),
      body: simpleBody,
      framing: fc.oneof({ weight: 6, arbitrary: fc.constant<Framing>('length') }, framingArbitrary),
    },
    bodies: {
      method: fc.oneof({ weight: 6, arbitrary: fc.constant('POST') }, methodArbitrary),
      target: writePath,
      headers: fc
        .tuple(fc.option(contentType, { freq: 6, nil: undefined }), few(3))
        .map(([type, more]) => (type ? [type, ...more] : more)),
      body: bodyArbitrary,
      framing: framingArbitrary,
    },
    queries: {
      method: fc.oneof({ weight: 4, arbitrary: fc.constantFrom('GET', 'POST') }, methodArbitrary),
      target: fc.tuple(readPath, queryArbitrary).map(([p, q]) => p + q),
      headers: fc.oneof(
        fc.constant<[string, string][]>([['Accept', 'text/event-stream']]),
        fc.constant<[string, string][]>([['Content-Type', 'text/plain']]),
        few(2),
      ),
      body: simpleBody,
      framing: fc.oneof({ weight: 6, arbitrary: fc.constant<Framing>('length') }, framingArbitrary),
    },
  }[emphasis];
  return fc.record({
    ...shape,
    version: fc.oneof(
      { weight: 12, arbitrary: fc.constant('HTTP/1.1' as const) },
      fc.constant('HTTP/1.0' as const),
    ),
    host: fc.oneof({ weight: 15, arbitrary: fc.constant(true) }, fc.constant(false)),
    chunkSize: fc.integer({ min: 1, max: 20_000 }),
  });
}

// ---------------------------------------------------------------------------------------------------------

describe('a relay under a fuzzer of malformed raw requests', () => {
  let relay: TestRelay;
  let server: Awaited<ReturnType<typeof listen>>;
  let port: number;
  let targets: KeyPair[];
  let untouchable: KeyPair;
  const counter = { sent: 0 };
  const kept = {
    queued: '{"queued":"item \u2713","n":[1,2,3]}',
    published: '{"published":"value \u00e9"}',
    field: '"one-to-one"',
    uid: 'kept-field',
  };

  beforeAll(async () => {
    relay = await openTestRelay('sqlite', { config: { maxQueue: 1_000_000, maxFields: 1_000_000 } });
    server = await listen(relay.app);
    port = Number(new URL(server.url).port);
    targets = [relay.keys(), relay.keys(), relay.keys()];
    untouchable = relay.keys();
    const json = (text: string) => ({ type: 'application/json', text });
    expect((await send(port, 'POST', `/public/${untouchable.public}`, json(kept.queued))).status).toBe(200);
    expect((await send(port, 'POST', `/private/${untouchable.private}`, json(kept.published))).status).toBe(
      200,
    );
    const fieldPath = `/private/${untouchable.private}/${kept.uid}`;
    expect((await send(port, 'POST', fieldPath, json(kept.field))).status).toBe(200);
  });

  afterAll(async () => {
    await server?.close();
    await relay?.dispose();
  });

  const fuzz = (emphasis: 'routes' | 'bodies' | 'queries', runs: number) =>
    fc.assert(
      fc.asyncProperty(
        fc.array(requestArbitrary(targets, untouchable, emphasis), { minLength: BATCH, maxLength: BATCH }),
        (requests) => sendBatch(port, requests, counter),
      ),
      { numRuns: runs, seed: SEED },
    );

  it('answers odd methods, paths, keys and percent-encodings without a 5xx, errors as JSON', async () => {
    await fuzz('routes', 400);
  }, 60_000);

  it('answers odd headers, content types, bodies and framings without a 5xx, errors as JSON', async () => {
    await fuzz('bodies', 400);
  }, 60_000);

  it('answers odd redirects, long-polls, webhooks and event streams without a 5xx, errors as JSON', async () => {
    await fuzz('queries', 300);
  }, 60_000);

  it('still answers and keeps what was stored out of the fuzzer\u2019s reach', async () => {
    expect(counter.sent).toBeGreaterThanOrEqual(5000);
    const id = await send(port, 'GET', '/id');
    expect(id).toEqual({ status: 200, text: relay.keyring.id });
    const value = await send(port, 'GET', `/public/${untouchable.public}`);
    expect(value.status).toBe(200);
    expect(JSON.parse(value.text)).toEqual(JSON.parse(kept.published));
    const field = await send(port, 'GET', `/public/${untouchable.public}/${kept.uid}`);
    expect(field).toEqual({ status: 200, text: kept.field });
    expect((await send(port, 'GET', `/public/${untouchable.public}/${kept.uid}`)).status).toBe(404);
    const queue = await send(port, 'GET', `/private/${untouchable.private}`);
    expect(queue.status).toBe(200);
    expect(JSON.parse(queue.text)).toEqual([JSON.parse(kept.queued)]);
    expect((await send(port, 'GET', `/private/${untouchable.private}`)).status).toBe(404);
  });

  it('limits a body while reading it, whatever Content-Length says, and stays up', async () => {
    const pair = relay.keys();
    const head = (framing: string) =>
      `POST /public/${pair.public} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${framing}\r\n\r\n`;
    const lying = Buffer.concat([
      Buffer.from(head('Content-Length: 100')),
      Buffer.from(`"${'x'.repeat(19_998)}"`),
    ]);
    const huge = Buffer.from(`"${'y'.repeat(49_998)}"`);
    const unannounced = Buffer.concat([Buffer.from(head('Transfer-Encoding: chunked')), chunked(huge, 4096)]);
    const answer = async (bytes: Buffer) => {
      const outcome = await exchange(port, bytes);
      if (outcome.kind !== 'reply') throw new Error(`no answer (${outcome.kind})`);
      const { status, body } = outcome.reply;
      return { status, json: body.length > 0 ? JSON.parse(body.toString('utf8')) : undefined };
    };
    const errorBody = (statusCode: number) => ({
      statusCode,
      error: expect.any(String),
      message: expect.any(String),
      code: expect.any(String),
    });
    // Content-Length frames the body to 100 bytes (half a JSON string); the rest is garbage that Node's
    // parser may refuse first, with a bare 400.
    const cut = await answer(lying);
    expect(cut.status).toBe(400);
    if (cut.json !== undefined) expect(cut.json).toEqual(errorBody(400));
    expect(await answer(unannounced)).toEqual({ status: 413, json: errorBody(413) });
    expect((await send(port, 'GET', `/private/${pair.private}`)).status).toBe(404);
    expect((await send(port, 'GET', '/id')).status).toBe(200);
  });
});
