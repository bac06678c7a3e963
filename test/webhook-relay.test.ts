// Webhooks through the relay (Securelay): registered by a private GET, used by public posts, signed,
// forgotten on failure or by a private GET without ?hook=, never revealed, never losing an item.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestRelay, type TestRelay } from './helpers.js';

interface Delivery {
  headers: IncomingMessage['headers'];
  body: string;
}

/** A webhook receiver on 127.0.0.1 that answers `status` (or never, when `status` is 0). */
async function receiver(status: () => number) {
  const deliveries: Delivery[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      deliveries.push({ headers: req.headers, body });
      const code = status();
      if (code > 0) res.writeHead(code).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook?token=s3cret`,
    deliveries,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const register = (relay: TestRelay, priv: string, url: string) =>
  relay.agent.get(`/private/${priv}?hook=${encodeURIComponent(url)}`);

describe.each(['sqlite', 'redis'] as const)('webhooks on %s', (kind) => {
  let relay: TestRelay;
  let status = 200;
  let hook: Awaited<ReturnType<typeof receiver>>;
  beforeAll(async () => {
    relay = await openTestRelay(kind, { config: { webhookAllowPrivate: true, webhookTimeoutMs: 400 } });
    hook = await receiver(() => status);
  });
  afterAll(async () => {
    await hook.close();
    await relay.dispose();
  });

  it('delivers a public post to the webhook, signed with the private key, instead of queueing it', async () => {
    status = 200;
    const keys = relay.keys();
    await register(relay, keys.private, hook.url).expect(404);
    const before = hook.deliveries.length;
    const res = await relay.agent.post(`/public/${keys.public}`).send({ vote: 'yes' }).expect(200);
    expect(res.body).toEqual({ message: 'Done', error: 'Ok', statusCode: 200, webhook: true });
    const delivery = hook.deliveries[before] as Delivery;
    expect(JSON.parse(delivery.body)).toEqual({ vote: 'yes' });
    expect(delivery.headers['content-type']).toMatch(/^application\/json/);
    expect(delivery.headers['x-deadrop-delivery']).toEqual(expect.any(String));
    const expected = `sha256=${createHmac('sha256', keys.private).update(delivery.body).digest('hex')}`;
    const given = String(delivery.headers['x-deadrop-signature']);
    expect(given.length).toBe(expected.length);
    expect(timingSafeEqual(Buffer.from(given), Buffer.from(expected))).toBe(true);
    expect(await relay.store.getHook(keys.public)).not.toContain('127.0.0.1');
    await relay.agent.get(`/private/${keys.private}?hook=${encodeURIComponent(hook.url)}`).expect(404);
  });

  it('queues the item and forgets the webhook when it fails', async () => {
    status = 500;
    const keys = relay.keys();
    await register(relay, keys.private, hook.url).expect(404);
    const before = hook.deliveries.length;
    expect((await relay.agent.post(`/public/${keys.public}`).send({ n: 1 }).expect(200)).body.webhook).toBe(
      false,
    );
    expect(hook.deliveries.length).toBe(before + 1);
    status = 200;
    expect((await relay.agent.post(`/public/${keys.public}`).send({ n: 2 }).expect(200)).body.webhook).toBe(
      false,
    );
    expect(hook.deliveries.length).toBe(before + 1);
    expect((await relay.agent.get(`/private/${keys.private}`).expect(200)).body).toEqual([
      { n: 1 },
      { n: 2 },
    ]);
  });

  it('queues the item when the webhook does not answer in time', async () => {
    status = 0;
    const keys = relay.keys();
    await register(relay, keys.private, hook.url).expect(404);
    const started = Date.now();
    expect(
      (await relay.agent.post(`/public/${keys.public}`).send({ slow: true }).expect(200)).body.webhook,
    ).toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(350);
    expect(Date.now() - started).toBeLessThan(3000);
    expect((await relay.agent.get(`/private/${keys.private}`).expect(200)).body).toEqual([{ slow: true }]);
  });

  it('forgets the webhook on a private GET without ?hook=', async () => {
    status = 200;
    const keys = relay.keys();
    await register(relay, keys.private, hook.url).expect(404);
    await relay.agent.get(`/private/${keys.private}`).expect(404);
    const before = hook.deliveries.length;
    expect((await relay.agent.post(`/public/${keys.public}`).send({ q: 1 }).expect(200)).body.webhook).toBe(
      false,
    );
    expect(hook.deliveries.length).toBe(before);
  });

  it('never reveals the webhook URL', async () => {
    status = 200;
    const keys = relay.keys();
    await register(relay, keys.private, hook.url).expect(404);
    for (const res of [
      await relay.agent.get(`/private/${keys.private}?stats&hook=${encodeURIComponent(hook.url)}`),
      await relay.agent.post(`/public/${keys.public}`).send({ a: 1 }),
      await relay.agent.get(`/keys/${keys.private}`),
    ]) {
      expect(JSON.stringify(res.body)).not.toContain('s3cret');
      expect(JSON.stringify(res.headers)).not.toContain('s3cret');
    }
  });
});

describe('webhook registration with private addresses refused', () => {
  it('answers 400 to a hook that points into the private network, and remembers nothing', async () => {
    const relay = await openTestRelay('memory');
    const hook = await receiver(() => 200);
    try {
      const keys = relay.keys();
      for (const url of [
        hook.url,
        'http://10.0.0.1/x',
        'http://169.254.169.254/latest',
        'ftp://example.com/',
        'not a url',
      ]) {
        const res = await register(relay, keys.private, url).expect(400);
        expect(res.body).toEqual({
          statusCode: 400,
          error: 'Bad Request',
          message: expect.stringContaining('webhook'),
          code: 'bad_hook',
        });
      }
      expect(await relay.store.getHook(keys.public)).toBeUndefined();
      expect((await relay.agent.post(`/public/${keys.public}`).send({ a: 1 }).expect(200)).body.webhook).toBe(
        false,
      );
      expect(hook.deliveries).toEqual([]);
    } finally {
      await hook.close();
      await relay.dispose();
    }
  });
});
