// GET /metrics as Prometheus scrapes it: what each counter and gauge says after real traffic, labels that
// never carry a key, one registry per app, and the setting that turns it off or moves it to its own port.
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../src/config.js';
import { startRelay } from '../src/server.js';
import {
  listen,
  openTestRelay,
  randomSecret,
  silentLogger,
  type TestRelay,
  testConfig,
  waitFor,
} from './helpers.js';
import { sampleValue } from './prometheus-text.js';
import { readBody, send } from './stream-client.js';

const opened: { close: () => Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((resource) => resource.close()));
});

/** A relay on SQLite served on a real port (streams, long-polls), closed after the test. */
async function servedRelay(config: Partial<Config> = {}): Promise<TestRelay & { url: string }> {
  const relay = await openTestRelay('sqlite', { config });
  const server = await listen(relay.app);
  opened.push({
    close: async () => {
      await server.close();
      await relay.dispose();
    },
  });
  return Object.assign(relay, { url: server.url });
}

const scrape = async (relay: TestRelay) => (await relay.agent.get('/metrics').expect(200)).text;

describe('GET /metrics', () => {
  it('counts requests by route pattern, method and status, and times them, never naming a key', async () => {
    const relay = await servedRelay();
    const keys = relay.keys();
    await relay.agent.post(`/public/${keys.public}`).send({ a: 1 }).expect(200);
    await relay.agent.post(`/public/${keys.public}`).send({ a: 2 }).expect(200);
    await relay.agent.get(`/private/${keys.private}`).expect(200);
    await relay.agent.get(`/private/${keys.private}`).expect(404);
    await relay.agent.get(`/public/${keys.private}`).expect(401);
    await relay.agent.get(`/nowhere/${keys.private}`).expect(404);

    const res = await relay.agent.get('/metrics').expect(200);
    expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(res.headers['cache-control']).toBe('no-store');
    const text = res.text;
    const requests = (route: string, method: string, status: string) =>
      sampleValue(text, 'deadrop_http_requests_total', { route, method, status });
    expect(requests('/public/:key', 'POST', '200')).toBe(2);
    expect(requests('/private/:key', 'GET', '200')).toBe(1);
    expect(requests('/private/:key', 'GET', '404')).toBe(1);
    expect(requests('/public/:key', 'GET', '401')).toBe(1);
    expect(requests('other', 'GET', '404')).toBe(1);
    expect(
      sampleValue(text, 'deadrop_http_request_duration_seconds_count', {
        route: '/public/:key',
        method: 'POST',
      }),
    ).toBe(2);
    expect(
      sampleValue(text, 'deadrop_http_request_duration_seconds_bucket', {
        route: '/public/:key',
        method: 'POST',
        le: '+Inf',
      }),
    ).toBe(2);
    for (const key of [keys.private, keys.public]) expect(text).not.toContain(key.slice(0, 8));
    expect(sampleValue(text, 'deadrop_store_up', { kind: 'sqlite' })).toBe(1);
  });

  it('counts queued items in and out: drained by a GET, and sent on an event stream', async () => {
    const relay = await servedRelay();
    const keys = relay.keys();
    for (const n of [1, 2, 3]) await relay.agent.post(`/public/${keys.public}`).send({ n }).expect(200);
    await relay.agent.get(`/private/${keys.private}`).expect(200);

    const events = await fetch(`${relay.url}/private/${keys.private}`, {
      headers: { accept: 'text/event-stream' },
    });
    await waitFor(async () => sampleValue(await scrape(relay), 'deadrop_event_streams') === 1, 'the stream');
    for (const n of [4, 5]) await relay.agent.post(`/public/${keys.public}`).send({ n }).expect(200);
    const reader = (events.body as ReadableStream<Uint8Array>).getReader();
    let received = '';
    while ((received.match(/^id: /gm) ?? []).length < 2) {
      received += new TextDecoder().decode((await reader.read()).value);
    }
    await reader.cancel();

    await waitFor(
      async () => sampleValue(await scrape(relay), 'deadrop_event_streams') === 0,
      'the stream to close',
    );
    const text = await scrape(relay);
    expect(sampleValue(text, 'deadrop_queue_items_added_total')).toBe(5);
    expect(sampleValue(text, 'deadrop_queue_items_taken_total', { by: 'drain' })).toBe(3);
    expect(sampleValue(text, 'deadrop_queue_items_taken_total', { by: 'event_stream' })).toBe(2);
  });

  it('counts long-polls and live listeners while they wait, and none once answered', async () => {
    const relay = await servedRelay();
    const keys = relay.keys();
    const polls = [
      fetch(`${relay.url}/private/${keys.private}?wait=30`),
      fetch(`${relay.url}/public/${keys.public}/one?wait=30`),
    ];
    await waitFor(async () => {
      const text = await scrape(relay);
      return (
        sampleValue(text, 'deadrop_long_polls') === 2 && sampleValue(text, 'deadrop_live_listeners') === 2
      );
    }, 'both long-polls to wait');

    await relay.agent.post(`/public/${keys.public}`).send({ a: 1 }).expect(200);
    await relay.agent.post(`/private/${keys.private}/one`).send({ b: 2 }).expect(200);
    expect((await Promise.all(polls)).map((res) => res.status)).toEqual([200, 200]);
    await waitFor(async () => {
      const text = await scrape(relay);
      return (
        sampleValue(text, 'deadrop_long_polls') === 0 && sampleValue(text, 'deadrop_live_listeners') === 0
      );
    }, 'the gauges to fall back to 0');
  });

  it('counts pipe transfers, running and ended, complete or cut, and the bytes they carry', async () => {
    const relay = await servedRelay();
    const transfer = async () => {
      const keys = relay.keys();
      const redirect = await send(`${relay.url}/pipe/${keys.public}`, 'POST');
      await readBody(redirect);
      const location = new URL(redirect.headers.location as string, relay.url).href;
      const upload = new PassThrough();
      const sender = send(location, 'POST', { body: upload });
      const receiver = await send(location, 'GET');
      return { upload, sender, receiver, done: readBody(receiver) };
    };

    const whole = await transfer();
    const payload = randomBytes(300_000);
    upload(whole.upload, payload);
    await waitFor(
      async () => sampleValue(await scrape(relay), 'deadrop_pipe_streams_active') === 1,
      'a running pipe',
    );
    whole.upload.end();
    expect((await whole.done).body.length).toBe(payload.length);
    await readBody(await whole.sender);

    const cut = await transfer();
    cut.upload.write(Buffer.alloc(1000));
    await waitFor(
      async () => sampleValue(await scrape(relay), 'deadrop_pipe_bytes_total') === 301_000,
      'bytes',
    );
    cut.receiver.destroy();
    await cut.done;

    await waitFor(
      async () => sampleValue(await scrape(relay), 'deadrop_pipe_streams_total', { outcome: 'cut' }) === 1,
      'the cut transfer to end',
    );
    const text = await scrape(relay);
    expect(sampleValue(text, 'deadrop_pipe_streams_total', { outcome: 'complete' })).toBe(1);
    expect(sampleValue(text, 'deadrop_pipe_streams_active')).toBe(0);
    expect(sampleValue(text, 'deadrop_pipe_bytes_total')).toBe(301_000);
    expect(sampleValue(text, 'deadrop_pipe_sides_waiting')).toBe(0);
    expect(sampleValue(text, 'deadrop_http_requests_total', { route: '/stream/:token', method: 'GET' })).toBe(
      2,
    );
  });

  it('counts webhook deliveries, delivered and failed', async () => {
    let status = 200;
    const receiver: Server = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(status).end());
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    opened.push({
      close: () => new Promise<void>((resolve) => receiver.close(() => resolve())),
    });
    const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    const relay = await servedRelay({ webhookAllowPrivate: true });
    const keys = relay.keys();
    const register = () => relay.agent.get(`/private/${keys.private}?hook=${encodeURIComponent(hook)}`);

    await register().expect(404);
    expect((await relay.agent.post(`/public/${keys.public}`).send({ a: 1 }).expect(200)).body.webhook).toBe(
      true,
    );
    status = 500;
    await register();
    expect((await relay.agent.post(`/public/${keys.public}`).send({ a: 2 }).expect(200)).body.webhook).toBe(
      false,
    );

    const text = await scrape(relay);
    expect(sampleValue(text, 'deadrop_webhook_deliveries_total', { outcome: 'delivered' })).toBe(1);
    expect(sampleValue(text, 'deadrop_webhook_deliveries_total', { outcome: 'failed' })).toBe(1);
    // The delivered item never reached the queue; the failed one did.
    expect(sampleValue(text, 'deadrop_queue_items_added_total')).toBe(1);
    expect(text).not.toContain(String((receiver.address() as AddressInfo).port));
  });

  it('counts rate-limit refusals and bans', async () => {
    const relay = await servedRelay({ rateLimit: 1, banAfter: 2, banTimeSeconds: 60 });
    const statuses: number[] = [];
    while (!statuses.includes(403) && statuses.length < 10)
      statuses.push((await relay.agent.get('/keys')).status);
    await relay.agent.get('/id').expect(403);
    const text = await scrape(relay);
    expect(sampleValue(text, 'deadrop_rate_limit_refusals_total', { reason: 'rate_limited' })).toBe(
      statuses.filter((status) => status === 429).length,
    );
    expect(sampleValue(text, 'deadrop_rate_limit_refusals_total', { reason: 'banned' })).toBe(2);
  });

  it('keeps the metrics of each app to itself', async () => {
    const [first, second] = [await servedRelay(), await servedRelay()];
    await first.agent.get('/keys').expect(200);
    await first.agent.get('/keys').expect(200);
    await second.agent.get('/keys').expect(200);
    expect(
      sampleValue(await scrape(first), 'deadrop_http_requests_total', { route: '/keys', status: '200' }),
    ).toBe(2);
    expect(
      sampleValue(await scrape(second), 'deadrop_http_requests_total', { route: '/keys', status: '200' }),
    ).toBe(1);
  });
});

describe('DEADROP_METRICS', () => {
  it('off: no /metrics route', async () => {
    const relay = await servedRelay({ metrics: 'off' });
    const res = await relay.agent.get('/metrics').expect(404);
    expect(res.body).toMatchObject({ code: 'route_not_found' });
    await relay.agent.get('/healthz').expect(200);
  });

  it('a port: /metrics there only, with the process metrics, on the same host', async () => {
    const relay = await startRelay(
      { ...testConfig({ store: 'memory', secret: randomSecret() }), port: 0, host: '127.0.0.1', metrics: 0 },
      silentLogger,
    );
    opened.push(relay);
    expect(relay.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect(new URL(relay.metricsUrl as string).port).not.toBe(new URL(relay.url).port);
    expect((await fetch(`${relay.url}/metrics`)).status).toBe(404);
    await fetch(`${relay.url}/keys`);

    const res = await fetch(relay.metricsUrl as string);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(sampleValue(text, 'deadrop_http_requests_total', { route: '/keys', status: '200' })).toBe(1);
    expect(sampleValue(text, 'deadrop_http_requests_total', { route: 'other', status: '404' })).toBe(1);
    expect(sampleValue(text, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);

    const elsewhere = new URL('/keys', relay.metricsUrl);
    const notThere = await fetch(elsewhere);
    expect(notThere.status).toBe(404);
    expect(await notThere.json()).toMatchObject({ statusCode: 404, code: 'route_not_found' });
    const post = await fetch(relay.metricsUrl as string, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET');
  });
});

/** Writes `payload` in 64 KiB chunks, as a streaming client would. */
function upload(body: PassThrough, payload: Buffer) {
  for (let offset = 0; offset < payload.length; offset += 65_536)
    body.write(payload.subarray(offset, offset + 65_536));
}
