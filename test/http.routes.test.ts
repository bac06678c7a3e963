// Every route through supertest on SQLite and on Redis: the happy path and each error of the contract.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { elapse, forgedKey, openTestRelay, type TestRelay } from './helpers.js';

const DONE = { message: 'Done', error: 'Ok', statusCode: 200 };
const errorBody = (statusCode: number) => ({
  statusCode,
  error: expect.any(String),
  message: expect.any(String),
  code: expect.any(String),
});

describe.each(['sqlite', 'redis'] as const)('routes on %s', (kind) => {
  let relay: TestRelay;
  beforeAll(async () => {
    relay = await openTestRelay(kind, { config: { maxQueue: 3, maxFields: 2 } });
  });
  afterAll(() => relay.dispose());

  describe('keys and id', () => {
    it('issues a key pair whose private key names its public key', async () => {
      const res = await relay.agent.get('/keys').expect(200);
      expect(res.headers['access-control-allow-origin']).toBe('*');
      expect(res.body).toEqual({
        private: expect.stringMatching(/^[\w-]{32}$/),
        public: expect.stringMatching(/^[\w-]{32}$/),
      });
      const info = await relay.agent.get(`/keys/${res.body.private}`).expect(200);
      expect(info.body).toEqual({ type: 'private', public: res.body.public });
      expect((await relay.agent.get(`/keys/${res.body.public}`).expect(200)).body).toEqual({
        type: 'public',
      });
    });

    it('answers 400 for a key it did not issue', async () => {
      for (const key of [forgedKey(), 'short', 'x'.repeat(32)]) {
        const res = await relay.agent.get(`/keys/${key}`).expect(400);
        expect(res.body).toEqual(errorBody(400));
      }
    });

    it('tells its instance id as text', async () => {
      const res = await relay.agent.get('/id').expect(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
      expect(res.text).toBe(relay.keyring.id);
      expect(res.text).toMatch(/^[\w-]{8}$/);
    });
  });

  describe('aggregator', () => {
    it('queues JSON, form and text bodies and gives them back once, oldest first', async () => {
      const keys = relay.keys();
      const post = (type: string, body: string) =>
        relay.agent.post(`/public/${keys.public}`).set('Content-Type', type).send(body).expect(200);
      expect((await post('application/json', '{"a":[1,2]}')).body).toEqual({ ...DONE, webhook: false });
      await post('application/x-www-form-urlencoded', 'data=This+is+data&x=1&x=2');
      await post('text/plain; charset=utf-8', 'plain ✓');
      const res = await relay.agent.get(`/private/${keys.private}`).expect(200);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.body).toEqual([{ a: [1, 2] }, { data: 'This is data', x: ['1', '2'] }, 'plain ✓']);
      const again = await relay.agent.get(`/private/${keys.private}`).expect(404);
      expect(again.body).toEqual(errorBody(404));
    });

    it('reports ?stats without consuming', async () => {
      const keys = relay.keys();
      expect((await relay.agent.get(`/private/${keys.private}?stats`).expect(200)).body).toEqual({
        consume: { count: 0, ttl: 0 },
        publish: { ttl: 0 },
      });
      await relay.agent.post(`/public/${keys.public}`).type('form').send('a=1').expect(200);
      await relay.agent.post(`/private/${keys.private}`).type('form').send('b=2').expect(200);
      const stats = (await relay.agent.get(`/private/${keys.private}?stats`).expect(200)).body;
      expect(stats).toEqual({ consume: { count: 1, ttl: 60 }, publish: { ttl: 60 } });
      expect((await relay.agent.get(`/private/${keys.private}`).expect(200)).body).toEqual([{ a: '1' }]);
    });

    it('refuses a post over DEADROP_MAX_QUEUE with 507 and keeps what is queued', async () => {
      const keys = relay.keys();
      for (let n = 0; n < 3; n++) await relay.agent.post(`/public/${keys.public}`).send({ n }).expect(200);
      const res = await relay.agent.post(`/public/${keys.public}`).send({ n: 3 }).expect(507);
      expect(res.body).toEqual(errorBody(507));
      expect(res.body.message).toContain('DEADROP_MAX_QUEUE');
      expect((await relay.agent.get(`/private/${keys.private}`).expect(200)).body).toEqual([
        { n: 0 },
        { n: 1 },
        { n: 2 },
      ]);
    });

    it('answers 401 for a forged key and for the wrong key type', async () => {
      const keys = relay.keys();
      await relay.agent.post(`/public/${forgedKey()}`).send({}).expect(401);
      await relay.agent.post(`/public/${keys.private}`).send({}).expect(401);
      await relay.agent.get(`/private/${keys.public}`).expect(401);
      await relay.agent.get(`/private/${forgedKey()}`).expect(401);
      const res = await relay.agent.get(`/public/${keys.private}`).expect(401);
      expect(res.body).toEqual(errorBody(401));
      expect(res.headers['access-control-allow-origin']).toBe('*');
    });

    it('refuses a HEAD on the private path instead of draining the queue', async () => {
      const keys = relay.keys();
      await relay.agent.post(`/public/${keys.public}`).send({ kept: true }).expect(200);
      await relay.agent.head(`/private/${keys.private}`).expect(405);
      expect((await relay.agent.get(`/private/${keys.private}`).expect(200)).body).toEqual([{ kept: true }]);
    });
  });

  describe('bodies', () => {
    it('answers 415 for a missing or other content type, or another charset', async () => {
      const { public: pub } = relay.keys();
      const missing = await relay.agent.post(`/public/${pub}`).expect(415);
      expect(missing.body).toEqual(errorBody(415));
      await relay.agent.post(`/public/${pub}`).set('Content-Type', 'text/html').send('<p>').expect(415);
      await relay.agent
        .post(`/public/${pub}`)
        .set('Content-Type', 'multipart/form-data; boundary=x')
        .send('--x--')
        .expect(415);
      await relay.agent
        .post(`/public/${pub}`)
        .set('Content-Type', 'text/plain; charset=latin1')
        .send('a')
        .expect(415);
      await relay.agent.post(`/public/${pub}`).set('Content-Type', '%%%').send('a').expect(415);
    });

    it('answers 400 for malformed or empty JSON', async () => {
      const { public: pub } = relay.keys();
      const bad = await relay.agent
        .post(`/public/${pub}`)
        .set('Content-Type', 'application/json')
        .send('{"a":')
        .expect(400);
      expect(bad.body).toEqual(errorBody(400));
      await relay.agent.post(`/public/${pub}`).set('Content-Type', 'application/json').send('').expect(400);
    });

    it('answers 413 naming the limit for a body over DEADROP_BODY_LIMIT', async () => {
      const { public: pub } = relay.keys();
      const res = await relay.agent.post(`/public/${pub}`).type('text').send('x'.repeat(10_241)).expect(413);
      expect(res.body).toEqual(errorBody(413));
      expect(res.body.message).toContain('10240');
      await relay.agent.post(`/public/${pub}`).type('text').send('x'.repeat(10_240)).expect(200);
    });

    it('stores an empty text body as an empty string and an empty form as an object', async () => {
      const keys = relay.keys();
      await relay.agent.post(`/public/${keys.public}`).set('Content-Type', 'text/plain').expect(200);
      await relay.agent
        .post(`/public/${keys.public}`)
        .set('Content-Type', 'application/x-www-form-urlencoded')
        .expect(200);
      expect((await relay.agent.get(`/private/${keys.private}`).expect(200)).body).toEqual(['', {}]);
    });
  });

  describe('key-value', () => {
    it('publishes, replaces, renews and deletes a value anyone can read', async () => {
      const keys = relay.keys();
      await relay.agent.get(`/public/${keys.public}`).expect(404);
      expect((await relay.agent.patch(`/private/${keys.private}`).expect(200)).body).toEqual(DONE);
      expect((await relay.agent.post(`/private/${keys.private}`).send({ v: 1 }).expect(200)).body).toEqual(
        DONE,
      );
      expect((await relay.agent.get(`/public/${keys.public}`).expect(200)).body).toEqual({ v: 1 });
      expect((await relay.agent.get(`/public/${keys.public}`).expect(200)).body).toEqual({ v: 1 });
      await relay.agent.post(`/private/${keys.private}`).type('text').send('v2').expect(200);
      expect((await relay.agent.get(`/public/${keys.public}`).expect(200)).body).toBe('v2');
      expect((await relay.agent.patch(`/private/${keys.private}`).expect(200)).body).toEqual(DONE);
      await relay.agent.delete(`/private/${keys.private}`).expect(204);
      await relay.agent.get(`/public/${keys.public}`).expect(404);
    });

    it('answers 401 when a public key tries to publish', async () => {
      const keys = relay.keys();
      await relay.agent.post(`/private/${keys.public}`).send({}).expect(401);
      await relay.agent.patch(`/private/${keys.public}`).expect(401);
      await relay.agent.delete(`/private/${keys.public}`).expect(401);
    });
  });

  describe('one-to-one', () => {
    it('gives a value to one reader, then 404, and tells its TTL to the owner', async () => {
      const keys = relay.keys();
      expect((await relay.agent.get(`/private/${keys.private}/field`).expect(200)).body).toEqual({ ttl: 0 });
      expect(
        (await relay.agent.post(`/private/${keys.private}/field`).send({ m: 'hi' }).expect(200)).body,
      ).toEqual(DONE);
      expect((await relay.agent.get(`/private/${keys.private}/field`).expect(200)).body).toEqual({ ttl: 60 });
      expect((await relay.agent.get(`/public/${keys.public}/field`).expect(200)).body).toEqual({ m: 'hi' });
      const gone = await relay.agent.get(`/public/${keys.public}/field`).expect(404);
      expect(gone.body).toEqual(errorBody(404));
      expect((await relay.agent.get(`/private/${keys.private}/field`).expect(200)).body).toEqual({ ttl: 0 });
    });

    it('lets the owner delete a value before it is read', async () => {
      const keys = relay.keys();
      await relay.agent.post(`/private/${keys.private}/gone`).send({ n: 1 }).expect(200);
      await relay.agent.delete(`/private/${keys.private}/gone`).expect(204);
      await relay.agent.get(`/public/${keys.public}/gone`).expect(404);
    });

    it('answers 400 for a bad uid and 507 past the field bound', async () => {
      const keys = relay.keys();
      for (const uid of ['a'.repeat(65), 'a%20b', 'a%2Fb', '%C3%A9']) {
        expect(
          (await relay.agent.post(`/private/${keys.private}/${uid}`).send({ n: 1 }).expect(400)).body,
        ).toEqual(errorBody(400));
      }
      await relay.agent
        .post(`/private/${keys.private}/a.b_c~d-${'e'.repeat(56)}`)
        .send({ n: 1 })
        .expect(200);
      await relay.agent.post(`/private/${keys.private}/two`).send({ n: 2 }).expect(200);
      const full = await relay.agent.post(`/private/${keys.private}/three`).send({ n: 3 }).expect(507);
      expect(full.body.message).toContain('DEADROP_MAX_FIELDS');
    });

    it('answers 401 for the wrong key type on either side', async () => {
      const keys = relay.keys();
      await relay.agent.post(`/private/${keys.public}/x`).send({ n: 1 }).expect(401);
      await relay.agent.get(`/public/${keys.private}/x`).expect(401);
      await relay.agent.get(`/private/${keys.public}/x`).expect(401);
      await relay.agent.head(`/public/${keys.public}/x`).expect(405);
    });
  });

  describe('redirects for HTML forms', () => {
    it('sends a successful post to ok and any failure to err with 303', async () => {
      const keys = relay.keys();
      const query = `?ok=${encodeURIComponent('https://example.com/thanks')}&err=${encodeURIComponent('https://example.com/oops')}`;
      const ok = await relay.agent
        .post(`/public/${keys.public}${query}`)
        .type('form')
        .send('a=1')
        .expect(303);
      expect(ok.headers.location).toBe('https://example.com/thanks');
      expect(ok.headers['access-control-allow-origin']).toBe('*');
      for (const failing of [
        relay.agent.post(`/public/${forgedKey()}${query}`).type('form').send('a=1'),
        relay.agent.post(`/public/${keys.public}${query}`).type('text').send('x'.repeat(20_000)),
        relay.agent.post(`/public/${keys.public}${query}`).set('Content-Type', 'text/html').send('a'),
        relay.agent.post(`/nowhere${query}`).type('form').send('a=1'),
      ]) {
        const res = await failing.expect(303);
        expect(res.headers.location).toBe('https://example.com/oops');
      }
      await relay.agent.post(`/private/${keys.private}/f${query}`).send({ n: 1 }).expect(303);
      expect((await relay.agent.get(`/private/${keys.private}`).expect(200)).body).toEqual([{ a: '1' }]);
    });

    it('answers 400 for a redirect that is not an http(s) URL, storing nothing', async () => {
      const keys = relay.keys();
      for (const query of ['?ok=javascript:alert(1)', '?err=%2Frelative', '?ok=a&ok=b']) {
        const res = await relay.agent
          .post(`/public/${keys.public}${query}`)
          .type('form')
          .send('a=1')
          .expect(400);
        expect(res.body).toEqual(errorBody(400));
      }
      await relay.agent.get(`/private/${keys.private}`).expect(404);
    });
  });

  describe('HTTP conventions', () => {
    it('answers 404 as JSON for an unknown route and 405 with Allow for a wrong method', async () => {
      const keys = relay.keys();
      const missing = await relay.agent.get('/nowhere').expect(404);
      expect(missing.body).toEqual(errorBody(404));
      expect(missing.headers['access-control-allow-origin']).toBe('*');
      await relay.agent.get(`/public/${keys.public}/a/b`).expect(404);
      const wrong = await relay.agent.put(`/public/${keys.public}`).send({}).expect(405);
      expect(wrong.body).toEqual(errorBody(405));
      expect(wrong.headers.allow).toBe('GET, POST');
      await relay.agent.post('/keys').expect(405);
      await relay.agent.delete('/id').expect(405);
    });

    it('answers a CORS preflight with 204', async () => {
      const keys = relay.keys();
      const res = await relay.agent
        .options(`/public/${keys.public}`)
        .set('Origin', 'https://site.example')
        .set('Access-Control-Request-Method', 'POST')
        .expect(204);
      expect(res.headers['access-control-allow-origin']).toBe('*');
      expect(res.headers['access-control-allow-methods']).toContain('POST');
    });

    it('answers 400, not 500, for a path that is not valid percent-encoding', async () => {
      const res = await relay.agent.get('/public/%E0%A4%A').expect(400);
      expect(res.body).toEqual(errorBody(400));
    });
  });
});

describe.each(['sqlite', 'redis'] as const)('expiry on %s', (kind) => {
  let relay: TestRelay;
  beforeAll(async () => {
    relay = await openTestRelay(kind, { config: { ttlSeconds: 1 } });
  });
  afterAll(() => relay.dispose());
  // SQLite measures expiry with Date, which these tests move; only Date is faked, so HTTP runs as usual.
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('forgets queued items, values and fields after DEADROP_TTL', async () => {
    const keys = relay.keys();
    await relay.agent.post(`/public/${keys.public}`).send({ n: 1 }).expect(200);
    await relay.agent.post(`/private/${keys.private}`).send({ n: 2 }).expect(200);
    await relay.agent.post(`/private/${keys.private}/f`).send({ n: 3 }).expect(200);
    await elapse(kind, 1200);
    expect((await relay.agent.get(`/private/${keys.private}?stats`).expect(200)).body).toEqual({
      consume: { count: 0, ttl: 0 },
      publish: { ttl: 0 },
    });
    await relay.agent.get(`/private/${keys.private}`).expect(404);
    await relay.agent.get(`/public/${keys.public}`).expect(404);
    await relay.agent.get(`/public/${keys.public}/f`).expect(404);
  });

  it('keeps a value alive past its first TTL when the owner renews it with PATCH', async () => {
    const keys = relay.keys();
    await relay.agent.post(`/private/${keys.private}`).type('text').send('alive').expect(200);
    await elapse(kind, 700);
    await relay.agent.patch(`/private/${keys.private}`).expect(200);
    await elapse(kind, 700);
    expect((await relay.agent.get(`/public/${keys.public}`).expect(200)).body).toBe('alive');
  });
});
