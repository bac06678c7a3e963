// The protocol pieces of issue 12 on their own: tickets and their derived keys on both suites, /box addresses, the
// gate's order (strangers take no room in the replay cache), and what `info` tells a user.
import { describe, expect, it } from 'vitest';
import { parseUserKeyFile } from '../sdk/box/user-key-file.js';
import { AddressError, formatBoxAddress, parseBoxAddress } from '../sdk/e2e/address.js';
import { toBase64url } from '../sdk/e2e/encoding.js';
import { openRequest, openResponse, sealRequest, sealResponse } from '../sdk/e2e/envelope.js';
import { nodeSuite } from '../sdk/e2e/native-suite.js';
import { nobleSuite } from '../sdk/e2e/noble-suite.js';
import {
  formatTicket,
  parseTicket,
  type Ticket,
  ticketEphemeralKey,
  ticketResponseKey,
} from '../sdk/e2e/ticket.js';
import type { UserGrant } from '../src/worker/config.js';
import { offerFor } from '../src/worker/dispatch.js';
import type { ExecReceiver } from '../src/worker/exec-receiver.js';
import { createReplayCache } from '../src/worker/replay-cache.js';
import { checkRequest } from '../src/worker/request-gate.js';
import { openTestRelay } from './helpers.js';

const worker = nodeSuite.x25519Keygen();
const user = nodeSuite.ed25519Keygen();

describe('tickets', () => {
  it('are opened by the key of the user who sent them, on either suite, and by no other key', () => {
    for (const [sender, reader] of [
      [nobleSuite, nodeSuite],
      [nodeSuite, nobleSuite],
    ] as const) {
      const rid = toBase64url(sender.randomBytes(16));
      const { envelope, responseKey } = sealRequest(
        {
          workerPublicKey: worker.publicKey,
          to: 'AB:CD',
          typ: 'urn:deadrop:exec',
          body: { name: 'x' },
          user,
          rid,
          ttlSeconds: 86_400,
          ephemeralSecretKey: ticketEphemeralKey(user.secretKey, rid, sender),
        },
        sender,
      );
      expect(envelope.rid).toBe(rid);
      expect(envelope.exp - envelope.iat).toBe(86_400);
      const opened = openRequest(envelope, worker, reader);
      expect(opened.responseKey).toEqual(responseKey);
      const ticket: Ticket = {
        relay: 'https://relay.example',
        publicKey: 'k'.repeat(32),
        id: 'AB:CD',
        workerKey: toBase64url(worker.publicKey),
        rid,
        exp: envelope.exp,
        command: 'exec',
      };
      const parsed = parseTicket(formatTicket(ticket));
      expect(parsed).toEqual(ticket);
      const answer = sealResponse(opened.responseKey, rid, { ok: true, result: 42 }, reader);
      expect(openResponse(ticketResponseKey(parsed, user.secretKey, reader), rid, answer, reader)).toEqual({
        ok: true,
        result: 42,
      });
      const stranger = nodeSuite.ed25519Keygen();
      expect(() =>
        openResponse(ticketResponseKey(parsed, stranger.secretKey, reader), rid, answer, reader),
      ).toThrow(/tampered with or is not for this key/);
    }
  });

  it('hold no secret, and anything else is refused with a sentence', () => {
    const text = formatTicket({
      relay: 'http://127.0.0.1:8080',
      publicKey: 'p'.repeat(32),
      id: 'AB:CD',
      workerKey: toBase64url(worker.publicKey),
      rid: 'r'.repeat(22),
      exp: 1,
      command: 'fs list',
    });
    expect(Buffer.from(text.slice(4), 'base64url').toString()).not.toContain(toBase64url(user.secretKey));
    for (const bad of [
      '',
      'dt1.',
      'dt1.!!!',
      `dt1.${Buffer.from('{"r":"ftp://x"}').toString('base64url')}`,
    ]) {
      expect(() => parseTicket(bad)).toThrow(/A ticket is the last line "deadrop call --detach" printed/);
    }
  });
});

describe('box addresses', () => {
  const pub = 'A'.repeat(32);
  it('read the page link, a fragment against the page, and a pasted deadrop call address alike', () => {
    const expected = { relay: 'https://relay.example', publicKey: pub, id: 'G6:UL:U7:7L' };
    expect(parseBoxAddress(`https://relay.example/box#${pub}.g6:ul:u7:7l`)).toEqual(expected);
    expect(parseBoxAddress(`#${pub}.G6:UL:U7:7L`, 'https://relay.example/box')).toEqual(expected);
    expect(parseBoxAddress(`https://relay.example/public/${pub}#G6:UL:U7:7L`)).toEqual(expected);
    expect(parseBoxAddress(`https://relay.example/sub/box#${pub}.G6:UL`).relay).toBe(
      'https://relay.example/sub',
    );
    expect(formatBoxAddress(expected)).toBe(`https://relay.example/box#${pub}.G6:UL:U7:7L`);
  });

  it('refuse what is not one, saying what is expected', () => {
    expect(() => parseBoxAddress('https://relay.example/box#nothing')).toThrow(AddressError);
    expect(() => parseBoxAddress(`https://relay.example/box#${pub}.not-an-id!`)).toThrow(
      /the part after "\." is the worker's id/,
    );
  });
});

describe('the user key file', () => {
  it('is refused when damaged or not a key file', () => {
    expect(() => parseUserKeyFile('{', nobleSuite)).toThrow(/not JSON/);
    expect(() => parseUserKeyFile('{"type":"rsa"}', nobleSuite)).toThrow(/not a user key file/);
    const other = nodeSuite.ed25519Keygen();
    const damaged = JSON.stringify({
      v: 1,
      type: 'ed25519',
      publicKey: toBase64url(other.publicKey),
      secretKey: toBase64url(user.secretKey),
    });
    expect(() => parseUserKeyFile(damaged, nobleSuite)).toThrow(/damaged/);
  });
});

const grant = (
  name: string,
  key: string,
  fs: string[],
  exec: string[] = [],
  wol: string[] = [],
): UserGrant => ({
  name,
  key,
  fs: new Set(fs) as UserGrant['fs'],
  exec: new Set(exec),
  wol: new Set(wol),
});

describe('the gate', () => {
  it("takes a stranger's requests into no room of the replay cache, so they cannot lock users out", () => {
    const replay = createReplayCache(1);
    const users = new Map([
      [toBase64url(user.publicKey), grant('me', toBase64url(user.publicKey), ['list'])],
    ]);
    const context = { worker, id: 'AB:CD', replay, users, nowMs: Date.now() };
    const stranger = nodeSuite.ed25519Keygen();
    const seal = (by: typeof user) =>
      sealRequest(
        {
          workerPublicKey: worker.publicKey,
          to: 'AB:CD',
          typ: 'urn:deadrop:fs:list',
          body: {},
          user: by,
          ttlSeconds: 7 * 86_400,
        },
        nodeSuite,
      ).envelope;
    for (let n = 0; n < 3; n++) {
      expect(checkRequest(seal(stranger), context)).toMatchObject({
        admitted: false,
        reason: 'unknown-user',
      });
    }
    expect(replay.size).toBe(0);
    expect(checkRequest(seal(user), context)).toMatchObject({ admitted: true });
  });

  it('refuses a request that would live more than a week', () => {
    const context = {
      worker,
      id: 'AB:CD',
      replay: createReplayCache(10),
      users: new Map([[toBase64url(user.publicKey), grant('me', toBase64url(user.publicKey), ['list'])]]),
      nowMs: Date.now(),
    };
    const { envelope } = sealRequest(
      {
        workerPublicKey: worker.publicKey,
        to: 'AB:CD',
        typ: 'urn:deadrop:fs:list',
        body: {},
        user,
        ttlSeconds: 8 * 86_400,
      },
      nodeSuite,
    );
    expect(checkRequest(envelope, context)).toMatchObject({ admitted: false, reason: 'too-long' });
  });
});

describe('info', () => {
  it('tells a user only the operations, commands and targets offered and granted to them', () => {
    const exec = {
      names: ['uptime', 'ping'],
      describe: () => [
        { name: 'uptime', params: [] },
        { name: 'ping', params: [{ name: 'host', pattern: '[a-z.]+' }] },
      ],
    } as unknown as ExecReceiver;
    const receivers = {
      fs: { operations: ['list', 'download', 'delete'], roots: ['docs'], handle: async () => ({}) as never },
      exec,
      wol: { names: ['nas', 'tv'], wake: async () => ({}) as never },
    } as never;
    const offer = offerFor(grant('me', 'k', ['list', 'upload'], ['ping'], ['tv']), receivers, 'AB:CD');
    expect(offer).toEqual({
      id: 'AB:CD',
      fs: { operations: ['list'], roots: ['docs'] },
      exec: [{ name: 'ping', params: [{ name: 'host', pattern: '[a-z.]+' }] }],
      wol: ['tv'],
      maxRequestSeconds: 7 * 86_400,
    });
    expect(offerFor(grant('other', 'j', []), receivers, 'AB:CD')).toMatchObject({ exec: [], wol: [] });
    expect(offerFor(grant('other', 'j', []), receivers, 'AB:CD').fs).toBeUndefined();
  });
});

describe('the /box routes', () => {
  it('serve the page under the CSP, and its service worker as uncached JavaScript for the /box/ scope', async () => {
    const relay = await openTestRelay('memory');
    try {
      const page = await relay.agent.get('/box');
      expect(page.status).toBe(200);
      expect(page.headers['content-type']).toMatch(/^text\/html/);
      expect(page.headers['content-security-policy']).toContain("script-src 'self'");
      expect(page.text).toContain('<script type="module" src="/sdk/box-page.js"></script>');
      const sw = await relay.agent.get('/box/sw.js');
      expect(sw.status).toBe(200);
      expect(sw.headers['content-type']).toMatch(/javascript/);
      expect(sw.headers['cache-control']).toBe('no-cache');
      const missing = await relay.agent.get('/box/download/anything');
      expect(missing.status).toBe(404);
      expect(missing.body).toMatchObject({ statusCode: 404 });
    } finally {
      await relay.dispose();
    }
  });
});
