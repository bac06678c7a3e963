// Logs never hold a private key (DESIGN §4): every route is exercised with a logger writing to memory.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { maskPath } from '../src/http/logging.js';
import { openTestRelay } from './helpers.js';

describe('access logs', () => {
  it('mask every key and drop query strings', () => {
    expect(maskPath('/private/AbCdEfGhIjKlMnOpQrStUvWxYz012345/uid-123?hook=https%3A%2F%2Fx')).toBe(
      '/private/AbCd…/uid-…',
    );
    expect(maskPath('/keys')).toBe('/keys');
  });

  it('contain no private key after a session on every route', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const relay = await openTestRelay('sqlite', { logger: pino({ level: 'trace' }, sink) });
    try {
      const keys = (await relay.agent.get('/keys')).body as { private: string; public: string };
      const p = keys.private;
      await relay.agent.get(`/keys/${p}`);
      await relay.agent.post(`/public/${keys.public}?ok=https%3A%2F%2Fa.example%2F${p}`).send({ a: 1 });
      await relay.agent.get(`/private/${p}?stats`);
      await relay.agent.get(`/private/${p}`);
      await relay.agent.get(`/private/${p}`);
      await relay.agent.post(`/private/${p}`).send({ b: 2 });
      await relay.agent.patch(`/private/${p}`);
      await relay.agent.delete(`/private/${p}`);
      await relay.agent.post(`/private/${p}/u`).send({ c: 3 });
      await relay.agent.get(`/private/${p}/u`);
      await relay.agent.delete(`/private/${p}/u`);
      await relay.agent.put(`/private/${p}`);
      await relay.agent.head(`/private/${p}`);
      await relay.agent.post(`/private/${p}`).set('Content-Type', 'text/html').send(p);
      await relay.agent.post(`/public/${p}`).send({ p });
      await relay.agent.get(`/private/${p}/${p}`);
      await relay.agent.get(`/nowhere/${p}`);
      const log = lines.join('');
      expect(lines.length).toBeGreaterThan(15);
      expect(log).toContain(`/private/${p.slice(0, 4)}…`);
      expect(log).not.toContain(p);
      expect(log).not.toContain(p.slice(4, 20));
    } finally {
      await relay.dispose();
    }
  });
});
