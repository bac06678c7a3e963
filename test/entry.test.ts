// The serverless entry and the endpoints map: what a deployment reads besides the CLI.
import { readFile } from 'node:fs/promises';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createKeyring } from '../src/keys.js';
import { REDIS_URL } from './helpers.js';

describe('src/index.ts (vercel.json)', () => {
  it("default-exports the relay's request listener on the Redis store", async () => {
    const secret = 'serverless-test-secret-0123456789';
    Object.assign(process.env, { REDIS_URL, DEADROP_SECRET: secret, LOG_LEVEL: 'silent' });
    const { default: app } = await import('../src/index.js');
    expect((await request(app).get('/id').expect(200)).text).toBe(createKeyring(secret).id);
    const keys = (await request(app).get('/keys').expect(200)).body;
    await request(app).post(`/public/${keys.public}`).send({ via: 'serverless' }).expect(200);
    expect((await request(app).get(`/private/${keys.private}`).expect(200)).body).toEqual([
      { via: 'serverless' },
    ]);
  });
});

describe('endpoints.json (DESIGN §2)', () => {
  it('maps instance ids to lists of URLs, the local one to the .env.example secret', async () => {
    const endpoints = JSON.parse(await readFile('endpoints.json', 'utf8')) as Record<string, string[]>;
    for (const [id, urls] of Object.entries(endpoints)) {
      expect(id).toMatch(/^[\w-]{8}$/);
      expect(urls.length).toBeGreaterThan(0);
      for (const url of urls) expect(new URL(url).protocol).toMatch(/^https?:$/);
    }
    const example = await readFile('.env.example', 'utf8');
    const secret = /DEADROP_SECRET=(\S+)/.exec(example)?.[1] as string;
    expect(endpoints[createKeyring(secret).id]).toContain('http://localhost:8080');
  });
});
