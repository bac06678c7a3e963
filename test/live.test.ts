// Live delivery (DESIGN §5): long-polls answered by later posts, SSE with resume, waiters cleaned up.
import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen, openTestRelay, randomSecret, type TestRelay, waitFor } from './helpers.js';

const post = (relay: TestRelay, pub: string, body: object) => relay.agent.post(`/public/${pub}`).send(body);

describe.each(['sqlite', 'redis'] as const)('long-poll on %s', (kind) => {
  let relay: TestRelay;
  beforeAll(async () => {
    relay = await openTestRelay(kind);
  });
  afterAll(() => relay.dispose());

  it('answers a waiting private GET as soon as an item is posted', async () => {
    const keys = relay.keys();
    const started = Date.now();
    const waiting = relay.agent.get(`/private/${keys.private}?wait=10`);
    const answer = waiting.then((res) => res);
    await waitFor(() => relay.notifier.listenerCount() > 0, 'the GET to wait');
    await post(relay, keys.public, { late: true }).expect(200);
    const res = await answer;
    expect(res.status).toBe(200);
    expect(res.body).toEqual([{ late: true }]);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('answers at once when something is queued already', async () => {
    const keys = relay.keys();
    await post(relay, keys.public, { early: true }).expect(200);
    const started = Date.now();
    expect((await relay.agent.get(`/private/${keys.private}?wait=30`).expect(200)).body).toEqual([
      { early: true },
    ]);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('ends an empty wait with 404 after the wait', async () => {
    const keys = relay.keys();
    const started = Date.now();
    const res = await relay.agent.get(`/private/${keys.private}?wait=0.4`).expect(404);
    expect(res.body).toMatchObject({ statusCode: 404 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(380);
  });

  it('answers a waiting one-to-one read when the owner writes the value', async () => {
    const keys = relay.keys();
    const waiting = relay.agent.get(`/public/${keys.public}/reply-1?wait=10`).then((res) => res);
    await waitFor(() => relay.notifier.listenerCount() > 0, 'the GET to wait');
    await relay.agent.post(`/private/${keys.private}/other`).send({ not: 'this' }).expect(200);
    await relay.agent.post(`/private/${keys.private}/reply-1`).send({ answer: 42 }).expect(200);
    const res = await waiting;
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ answer: 42 });
  });

  it('refuses a wait over 60 seconds or that is not a number', async () => {
    const keys = relay.keys();
    for (const wait of ['61', 'soon', '-1', '1e3']) {
      await relay.agent.get(`/private/${keys.private}?wait=${wait}`).expect(400);
    }
  });

  it('lets go of a waiter whose client goes away', async () => {
    const keys = relay.keys();
    const server = await listen(relay.app);
    try {
      const before = relay.notifier.listenerCount();
      const controller = new AbortController();
      const pending = fetch(`${server.url}/private/${keys.private}?wait=30`, {
        signal: controller.signal,
      }).catch(() => 'aborted');
      await waitFor(() => relay.notifier.listenerCount() > before, 'the waiter to listen');
      controller.abort();
      expect(await pending).toBe('aborted');
      await waitFor(() => relay.notifier.listenerCount() === before, 'the waiter to be cleaned up');
      await post(relay, keys.public, { kept: true }).expect(200);
      expect((await relay.agent.get(`/private/${keys.private}`).expect(200)).body).toEqual([{ kept: true }]);
    } finally {
      await server.close();
    }
  });
});

describe('long-poll across two instances on one Redis', () => {
  it('wakes the waiter on one instance when the post lands on the other', async () => {
    const secret = randomSecret();
    const [a, b] = await Promise.all([
      openTestRelay('redis', { secret }),
      openTestRelay('redis', { secret }),
    ]);
    try {
      const keys = a.keys();
      const started = Date.now();
      const waiting = a.agent.get(`/private/${keys.private}?wait=10`).then((res) => res);
      await waitFor(() => a.notifier.listenerCount() > 0, 'the waiter on A');
      await post(b, keys.public, { via: 'b' }).expect(200);
      const res = await waiting;
      expect(res.body).toEqual([{ via: 'b' }]);
      expect(Date.now() - started).toBeLessThan(3000);

      const field = b.agent.get(`/public/${keys.public}/x?wait=10`).then((r) => r);
      await waitFor(() => b.notifier.listenerCount() > 0, 'the waiter on B');
      await a.agent.post(`/private/${keys.private}/x`).send({ via: 'a' }).expect(200);
      expect((await field).body).toEqual({ via: 'a' });
    } finally {
      await Promise.all([a.dispose(), b.dispose()]);
    }
  });
});

/** Reads SSE events from a fetch response until `stop` says so; returns them with the last id. */
async function readEvents(
  response: Response,
  onEvent: (id: number, data: unknown) => boolean,
): Promise<void> {
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const id = /^id: (\d+)$/m.exec(block)?.[1];
      const data = block
        .split('\n')
        .filter((line) => line.startsWith('data: '))
        .map((line) => line.slice(6))
        .join('\n');
      if (id !== undefined && onEvent(Number(id), JSON.parse(data))) {
        await reader.cancel();
        return;
      }
      end = buffer.indexOf('\n\n');
    }
  }
}

describe.each(['sqlite', 'redis'] as const)('server-sent events on %s', (kind) => {
  let relay: TestRelay;
  let server: Awaited<ReturnType<typeof listen>>;
  beforeAll(async () => {
    relay = await openTestRelay(kind);
    server = await listen(relay.app);
  });
  afterAll(async () => {
    await server.close();
    await relay.dispose();
  });

  it('delivers every one of 500 items exactly once across a forced reconnect', async () => {
    const keys = relay.keys();
    const seen: number[] = [];
    let lastId = 0;
    const open = (resumeFrom?: number) =>
      fetch(`${server.url}/private/${keys.private}`, {
        headers: {
          accept: 'text/event-stream',
          ...(resumeFrom ? { 'last-event-id': String(resumeFrom) } : {}),
        },
      });

    const first = await open();
    expect(first.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const posting = (async () => {
      for (let n = 0; n < 500; n += 25) {
        await Promise.all(
          Array.from({ length: 25 }, (_, i) =>
            fetch(`${server.url}/public/${keys.public}`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ n: n + i, pad: randomBytes(8).toString('hex') }),
            }).then((res) => expect(res.status).toBe(200)),
          ),
        );
      }
    })();
    // The first connection is dropped by the client after 200 events, wherever the server is.
    await readEvents(first, (id, data) => {
      lastId = id;
      seen.push((data as { n: number }).n);
      return seen.length === 200;
    });
    await posting;
    const second = await open(lastId);
    await readEvents(second, (id, data) => {
      expect(id).toBeGreaterThan(lastId);
      lastId = id;
      seen.push((data as { n: number }).n);
      return seen.length >= 500;
    });
    expect(seen.sort((x, y) => x - y)).toEqual(Array.from({ length: 500 }, (_, n) => n));
    await relay.agent.get(`/private/${keys.private}`).expect(404);
  });

  it('sends a multi-line JSON item as one event and heartbeats while quiet', async () => {
    const quick = await openTestRelay(kind, { config: { sseHeartbeatSeconds: 1 } });
    const quickServer = await listen(quick.app);
    try {
      const keys = quick.keys();
      await request(quick.app)
        .post(`/public/${keys.public}`)
        .set('Content-Type', 'application/json')
        .send('{\n  "a": 1,\n  "b": [2]\n}')
        .expect(200);
      const res = await fetch(`${quickServer.url}/private/${keys.private}`, {
        headers: { accept: 'text/event-stream' },
      });
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      let text = '';
      const deadline = Date.now() + 5000;
      while (!text.includes(': heartbeat') && Date.now() < deadline) {
        text += new TextDecoder().decode((await reader.read()).value);
      }
      await reader.cancel();
      expect(text).toMatch(/id: \d+\ndata: \{\ndata: {3}"a": 1,\ndata: {3}"b": \[2\]\ndata: \}\n\n/);
      expect(text).toContain(': heartbeat');
    } finally {
      await quickServer.close();
      await quick.dispose();
    }
  });

  it('answers 401 before streaming for a wrong key, and 400 for a bad Last-Event-ID', async () => {
    const keys = relay.keys();
    await relay.agent.get(`/private/${keys.public}`).set('Accept', 'text/event-stream').expect(401);
    await relay.agent
      .get(`/private/${keys.private}`)
      .set('Accept', 'text/event-stream')
      .set('Last-Event-ID', 'yesterday')
      .expect(400);
  });
});
