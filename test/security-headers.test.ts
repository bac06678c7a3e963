// The CSP the pages get: every protection of helmet's default, upgrade-insecure-requests only over https.
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createApp } from '../src/http/app.js';
import { createMemoryStore } from '../src/store/keyv-store.js';
import { silentLogger, testConfig } from './helpers.js';

const appTrusting = (trustProxy: number) =>
  createApp({
    config: testConfig({ trustProxy }),
    store: createMemoryStore(),
    secret: 'x'.repeat(32),
    logger: silentLogger,
  });

/** The directive names of a Content-Security-Policy header. */
const directiveNames = (header: string | undefined) =>
  new Set((header ?? '').split(';').map((part) => part.trim().split(/\s+/)[0]));

describe('security headers', () => {
  it('leaves out upgrade-insecure-requests over plain HTTP and keeps the rest of the policy', async () => {
    const response = await request(appTrusting(1)).get('/').expect(200);
    const csp = response.headers['content-security-policy'];
    expect(directiveNames(csp).has('upgrade-insecure-requests')).toBe(false);
    for (const kept of [
      "default-src 'self'",
      "script-src 'self'",
      "object-src 'none'",
      "frame-ancestors 'self'",
    ]) {
      expect(csp).toContain(kept);
    }
    expect(response.headers['x-content-type-options']).toBe('nosniff');
  });

  it('keeps upgrade-insecure-requests when the request came over https (as a trusted proxy says)', async () => {
    const response = await request(appTrusting(1)).get('/').set('X-Forwarded-Proto', 'https').expect(200);
    expect(directiveNames(response.headers['content-security-policy']).has('upgrade-insecure-requests')).toBe(
      true,
    );
  });

  it('ignores a forwarded https from a client when no proxy is trusted', async () => {
    const response = await request(appTrusting(0)).get('/').set('X-Forwarded-Proto', 'https').expect(200);
    expect(directiveNames(response.headers['content-security-policy']).has('upgrade-insecure-requests')).toBe(
      false,
    );
  });
});
