// `deadrop serve` as a real process stopping on SIGTERM: what it holds open ends cleanly, a running pipe
// finishes within the grace period, nothing new gets in, and it exits 0; a second signal, or the grace
// running out, cuts what is left.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir, waitFor } from './helpers.js';
import { sampleValue } from './prometheus-text.js';
import { openRaw } from './raw-client.js';
import { readBody, send } from './stream-client.js';

interface LogLine {
  msg: string;
  [field: string]: unknown;
}

interface RelayProcess {
  child: ChildProcess;
  url: string;
  port: number;
  /** Every log line so far. */
  lines: LogLine[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  logged(msg: string): boolean;
}

const children: ChildProcess[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** Starts `deadrop serve` on SQLite in a fresh data dir, on 127.0.0.1 port 0; resolves once it listens. */
async function startRelayProcess(env: Record<string, string>): Promise<RelayProcess> {
  const dataDir = await tempDir();
  dirs.push(dataDir);
  const child = spawn('node', ['--import', 'tsx', 'src/cli.ts', 'serve'], {
    env: {
      ...process.env,
      PORT: '0',
      HOST: '127.0.0.1',
      DEADROP_STORE: 'sqlite',
      DEADROP_DATA_DIR: dataDir,
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const exited = once(child, 'exit').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
    at: performance.now(),
  }));
  const lines: LogLine[] = [];
  let listening: (url: string) => void = () => {};
  const url = new Promise<string>((resolve) => {
    listening = resolve;
  });
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    const entry = JSON.parse(line) as LogLine;
    lines.push(entry);
    if (typeof entry.url === 'string' && entry.msg.includes('listening on')) listening(entry.url);
  });
  const started = await Promise.race([url, exited.then(() => undefined)]);
  if (started === undefined) throw new Error('deadrop serve exited before it listened');
  return {
    child,
    url: started,
    port: Number(new URL(started).port),
    lines,
    exited,
    logged: (msg) => lines.some((line) => line.msg.startsWith(msg)),
  };
}

const keyPair = async (url: string) =>
  (await (await fetch(`${url}/keys`)).json()) as { private: string; public: string };

const metricsOf = async (url: string) => (await fetch(`${url}/metrics`)).text();

/** A pipe transfer in progress: the sender's body is the test's to write and end. */
async function startPipe(url: string) {
  const keys = await keyPair(url);
  const upload = new PassThrough();
  const redirect = await send(`${url}/pipe/${keys.public}`, 'POST');
  await readBody(redirect);
  const location = new URL(redirect.headers.location as string, url).href;
  const sender = send(location, 'POST', { body: upload });
  const receiver = await send(location, 'GET');
  expect(receiver.statusCode).toBe(200);
  const received: Buffer[] = [];
  receiver.on('data', (chunk: Buffer) => received.push(chunk));
  const receivedBytes = () => received.reduce((sum, chunk) => sum + chunk.length, 0);
  const receiverDone = readBody(receiver);
  return { upload, sender: await sender, receiverDone, received, receivedBytes };
}

describe('deadrop serve stopping on SIGTERM', () => {
  it('answers the long-poll, ends the event stream, closes idle sockets, refuses newcomers, lets the running pipe finish with all its bytes, and exits 0', async () => {
    const relay = await startRelayProcess({
      DEADROP_SHUTDOWN_GRACE: '30',
      // Idle sockets must close at shutdown, not when this long keep-alive would end them.
      DEADROP_KEEPALIVE_TIMEOUT: '120000',
    });
    const [polled, streamed] = [await keyPair(relay.url), await keyPair(relay.url)];

    const idle = await openRaw(relay.port, '127.0.0.1', 'GET /id HTTP/1.1\r\nHost: relay.test\r\n\r\n');
    expect((await idle.reply()).status).toBe(200);
    // The long-poll goes over a keep-alive connection too: after its answer that connection must close.
    const longPoll = await openRaw(
      relay.port,
      '127.0.0.1',
      `GET /private/${polled.private}?wait=60 HTTP/1.1\r\nHost: relay.test\r\n\r\n`,
    );
    const events = await send(`${relay.url}/private/${streamed.private}`, 'GET', {
      headers: { accept: 'text/event-stream' },
    });
    expect(events.statusCode).toBe(200);
    const eventsDone = readBody(events);

    const transfer = await startPipe(relay.url);
    const payload = randomBytes(4 * 1024 * 1024);
    const firstPart = payload.subarray(0, 256 * 1024);
    transfer.upload.write(firstPart);
    await waitFor(() => transfer.receivedBytes() === firstPart.length, 'the first part to arrive');
    await waitFor(async () => {
      const metrics = await metricsOf(relay.url);
      return (
        sampleValue(metrics, 'deadrop_long_polls') === 1 &&
        sampleValue(metrics, 'deadrop_event_streams') === 1 &&
        sampleValue(metrics, 'deadrop_pipe_streams_active') === 1
      );
    }, 'the long-poll, the event stream and the pipe to be counted');

    const signalled = performance.now();
    relay.child.kill('SIGTERM');

    const answer = await longPoll.reply();
    expect(performance.now() - signalled).toBeLessThan(2000);
    expect(answer.status).toBe(404);
    expect(answer.headers.connection).toBe('close');
    expect(JSON.parse(answer.body)).toMatchObject({ statusCode: 404, code: 'nothing_queued' });
    await longPoll.closed;

    const stream = await eventsDone;
    expect(stream.complete).toBe(true);
    expect(stream.body.toString()).toMatch(/^retry: 1000\n\n/);
    await idle.closed;
    expect(performance.now() - signalled).toBeLessThan(2000);

    await expect(fetch(`${relay.url}/id`)).rejects.toMatchObject({
      cause: expect.objectContaining({ code: 'ECONNREFUSED' }),
    });
    expect(relay.child.exitCode).toBeNull();

    // The pipe goes on after all that, and finishes whole.
    transfer.upload.end(payload.subarray(firstPart.length));
    const delivered = await transfer.receiverDone;
    expect(delivered.complete).toBe(true);
    expect(createHash('sha256').update(Buffer.concat(transfer.received)).digest('hex')).toBe(
      createHash('sha256').update(payload).digest('hex'),
    );
    const report = await readBody(transfer.sender);
    expect(report.body.toString()).toContain(`Done: ${payload.length} bytes sent.`);

    const exit = await relay.exited;
    expect(exit).toMatchObject({ code: 0, signal: null });
    // It exits once the pipe is done, not at the end of its 30 s grace.
    expect(exit.at - delivered.at).toBeLessThan(5000);
    expect(relay.logged('shutting down')).toBe(true);
    expect(relay.logged('stopped')).toBe(true);
    expect(relay.logged('shutdown grace period over')).toBe(false);
  });

  it('cuts a running pipe at once on a second SIGTERM, and exits 0', async () => {
    const relay = await startRelayProcess({ DEADROP_SHUTDOWN_GRACE: '60' });
    const transfer = await startPipe(relay.url);
    transfer.upload.write(Buffer.alloc(1024, 1));
    await waitFor(() => transfer.receivedBytes() === 1024, 'the first bytes to arrive');

    relay.child.kill('SIGTERM');
    await waitFor(() => relay.logged('shutting down'), 'the relay to begin its shutdown');
    const stillRunning = await Promise.race([
      transfer.receiverDone.then(() => false),
      new Promise((resolve) => setTimeout(resolve, 300, true)),
    ]);
    expect(stillRunning).toBe(true);

    const secondSignal = performance.now();
    relay.child.kill('SIGTERM');
    const cut = await transfer.receiverDone;
    expect(cut.complete).toBe(false);
    const exit = await relay.exited;
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(exit.at - secondSignal).toBeLessThan(3000);
    expect(relay.logged('second signal')).toBe(true);
  });

  it('cuts what still runs when the grace period is over, and exits 0', async () => {
    const relay = await startRelayProcess({ DEADROP_SHUTDOWN_GRACE: '1' });
    const transfer = await startPipe(relay.url);
    transfer.upload.write(Buffer.alloc(1024, 2));
    await waitFor(() => transfer.receivedBytes() === 1024, 'the first bytes to arrive');

    const signalled = performance.now();
    relay.child.kill('SIGTERM');
    const cut = await transfer.receiverDone;
    expect(cut.complete).toBe(false);
    expect(cut.at - signalled).toBeGreaterThanOrEqual(900);
    const exit = await relay.exited;
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(exit.at - signalled).toBeLessThan(5000);
    expect(relay.lines.find((line) => line.msg.startsWith('shutdown grace period over'))).toMatchObject({
      cut: expect.any(Number),
    });
  });
});
