// The CSP the pages get: every protection of helmet's default, upgrade-insecure-requests only over https.
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestRelay, type TestRelay } from './helpers.js';

/** Relays trusting no proxy and one proxy (X-Forwarded-Proto), by that number. */
const relays: TestRelay[] = [];
beforeAll(async () => {
  relays.push(await openTestRelay('memory', { config: { trustProxy: 0 } }));
  relays.push(await openTestRelay('memory', { config: { trustProxy: 1 } }));
});
afterAll(async () => {
  for (const relay of relays) await relay.dispose();
});
const appTrusting = (trustProxy: 0 | 1) => (relays[trustProxy] as TestRelay).app;

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
