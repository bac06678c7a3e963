// Blobs on the relay: application/octet-stream one-to-one values, their size limit and the per-key-pair byte quota.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BLOB_LIMIT, type DropRelay, openDropRelay } from './drop-relay.js';
import { randomSecret, sleep } from './helpers.js';

const MIB = 1_048_576;
/** Room for two full blobs and a bit: the third is over the quota. */
const QUOTA = 2 * MIB + 1000;

let relay: DropRelay;
beforeAll(async () => {
  relay = await openDropRelay('sqlite', { keyQuota: QUOTA });
});
afterAll(() => relay.close());

const postBlob = (key: string, uid: string, bytes: Uint8Array, type = 'application/octet-stream') =>
  fetch(`${relay.url}/private/${key}/${uid}`, {
    method: 'POST',
    headers: { 'content-type': type },
    body: bytes as BodyInit,
  });
const take = (pub: string, uid: string, query = '') => fetch(`${relay.url}/public/${pub}/${uid}${query}`);

describe('a blob', () => {
  it('is stored from application/octet-stream and read back once, byte for byte, as octet-stream', async () => {
    const pair = relay.keys();
    const bytes = randomBytes(BLOB_LIMIT);
    const stored = await postBlob(pair.private, 'file.1', bytes);
    expect(stored.status).toBe(200);
    expect(await stored.json()).toEqual({ message: 'Done', error: 'Ok', statusCode: 200 });

    const read = await take(pair.public, 'file.1');
    expect(read.status).toBe(200);
    expect(read.headers.get('content-type')).toBe('application/octet-stream');
    expect(read.headers.get('content-length')).toBe(String(BLOB_LIMIT));
    expect(Buffer.from(await read.arrayBuffer()).equals(bytes)).toBe(true);

    const again = await take(pair.public, 'file.1');
    expect(again.status).toBe(404);
    expect((await again.json()).message).toContain('already read');
  });

  it('may be empty', async () => {
    const pair = relay.keys();
    expect((await postBlob(pair.private, 'empty', new Uint8Array(0))).status).toBe(200);
    const read = await take(pair.public, 'empty');
    expect(read.headers.get('content-type')).toBe('application/octet-stream');
    expect((await read.arrayBuffer()).byteLength).toBe(0);
  });

  it('one byte over DEADROP_BLOB_LIMIT is a 413 that names the setting, and nothing is stored', async () => {
    const pair = relay.keys();
    const refused = await postBlob(pair.private, 'big', randomBytes(BLOB_LIMIT + 1));
    expect(refused.status).toBe(413);
    expect((await refused.json()).message).toBe(
      `The blob is ${BLOB_LIMIT + 1} bytes; the limit is ${BLOB_LIMIT} bytes (DEADROP_BLOB_LIMIT); send it in parts.`,
    );
    expect((await take(pair.public, 'big')).status).toBe(404);
  });

  it('JSON values at the same paths still go through the JSON routes', async () => {
    const pair = relay.keys();
    const sent = await fetch(`${relay.url}/private/${pair.private}/note`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"n":12345678901234567890}',
    });
    expect(sent.status).toBe(200);
    const read = await take(pair.public, 'note');
    expect(read.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await read.text()).toBe('{"n":12345678901234567890}');
    expect((await take(pair.public, 'note')).status).toBe(404);
  });

  it('is refused with the relay’s 401 and 400 for a public key or a bad uid, before its body is read', async () => {
    const pair = relay.keys();
    const wrongKey = await postBlob(pair.public, 'x', randomBytes(10));
    expect(wrongKey.status).toBe(401);
    expect((await wrongKey.json()).message).toContain('takes a private key');
    const badUid = await postBlob(pair.private, 'no spaces', randomBytes(10));
    expect(badUid.status).toBe(400);
    expect((await badUid.json()).message).toContain('The uid must be');
    expect((await postBlob(pair.private, 'x'.repeat(65), randomBytes(10))).status).toBe(400);
  });

  it('a HEAD does not consume it; its TTL shows to the owner; DELETE withdraws it', async () => {
    const pair = relay.keys();
    await postBlob(pair.private, 'kept', randomBytes(100));
    expect((await fetch(`${relay.url}/public/${pair.public}/kept`, { method: 'HEAD' })).status).toBe(405);
    const ttl = await fetch(`${relay.url}/private/${pair.private}/kept`);
    expect((await ttl.json()).ttl).toBeGreaterThan(50);
    expect((await fetch(`${relay.url}/private/${pair.private}/kept`, { method: 'DELETE' })).status).toBe(204);
    expect(await (await fetch(`${relay.url}/private/${pair.private}/kept`)).json()).toEqual({ ttl: 0 });
    expect((await take(pair.public, 'kept')).status).toBe(404);
  });

  it('a reader waiting with ?wait= gets the blob as soon as it is stored', async () => {
    const pair = relay.keys();
    const bytes = randomBytes(5000);
    const waiting = take(pair.public, 'later', '?wait=10');
    await sleep(200);
    await postBlob(pair.private, 'later', bytes);
    const read = await waiting;
    expect(read.headers.get('content-type')).toBe('application/octet-stream');
    expect(Buffer.from(await read.arrayBuffer()).equals(bytes)).toBe(true);
  });

  it('its owner reads it with ?peek as often as needed, waiting with ?wait=, and it stays for the reader', async () => {
    const pair = relay.keys();
    const bytes = randomBytes(3000);
    const peek = (key: string, query = '') => fetch(`${relay.url}/private/${key}/kept?peek${query}`);
    const empty = await peek(pair.private);
    expect(empty.status).toBe(404);
    expect((await empty.json()).statusCode).toBe(404);
    const waiting = peek(pair.private, '&wait=10');
    await sleep(200);
    await postBlob(pair.private, 'kept', bytes);
    for (const read of [await waiting, await peek(pair.private)]) {
      expect(read.status).toBe(200);
      expect(read.headers.get('content-type')).toBe('application/octet-stream');
      expect(Buffer.from(await read.arrayBuffer()).equals(bytes)).toBe(true);
    }
    expect((await peek(pair.public)).status).toBe(401);
    expect(Buffer.from(await (await take(pair.public, 'kept')).arrayBuffer()).equals(bytes)).toBe(true);
    expect((await peek(pair.private)).status).toBe(404);
    await fetch(`${relay.url}/private/${pair.private}/json`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"a":1}',
    });
    expect(await (await fetch(`${relay.url}/private/${pair.private}/json?peek=1`)).json()).toEqual({ a: 1 });
  });

  it('honours ?ok= on success, as every POST does', async () => {
    const pair = relay.keys();
    const answer = await fetch(`${relay.url}/private/${pair.private}/r?ok=https://example.com/thanks`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: randomBytes(10),
      redirect: 'manual',
    });
    expect(answer.status).toBe(303);
    expect(answer.headers.get('location')).toBe('https://example.com/thanks');
  });
});

describe('the byte quota of a key pair (DEADROP_KEY_QUOTA)', () => {
  it('refuses the blob that would pass it with a 507 that names the setting, and frees room as blobs are read', async () => {
    const pair = relay.keys();
    expect((await postBlob(pair.private, 'a', randomBytes(MIB))).status).toBe(200);
    expect((await postBlob(pair.private, 'b', randomBytes(MIB))).status).toBe(200);
    const refused = await postBlob(pair.private, 'c', randomBytes(MIB));
    expect(refused.status).toBe(507);
    expect((await refused.json()).message).toBe(
      `This key pair holds ${2 * MIB} bytes of blobs; ${MIB} more would pass its quota of ${QUOTA} bytes (DEADROP_KEY_QUOTA). Wait until some are read or expire.`,
    );
    expect((await take(pair.public, 'c')).status).toBe(404);

    await (await take(pair.public, 'a')).arrayBuffer();
    expect((await postBlob(pair.private, 'c', randomBytes(MIB))).status).toBe(200);
  });

  it('counts a replaced blob once, and a deleted one no more', async () => {
    const pair = relay.keys();
    for (let round = 0; round < 3; round++) {
      expect((await postBlob(pair.private, 'same', randomBytes(MIB))).status).toBe(200);
    }
    expect((await postBlob(pair.private, 'other', randomBytes(MIB))).status).toBe(200);
    expect((await postBlob(pair.private, 'third', randomBytes(MIB))).status).toBe(507);
    await fetch(`${relay.url}/private/${pair.private}/same`, { method: 'DELETE' });
    expect((await postBlob(pair.private, 'third', randomBytes(MIB))).status).toBe(200);
  });

  it('holds per key pair: another pair has its own', async () => {
    const [first, second] = [relay.keys(), relay.keys()];
    await postBlob(first.private, 'a', randomBytes(MIB));
    await postBlob(first.private, 'b', randomBytes(MIB));
    expect((await postBlob(second.private, 'a', randomBytes(MIB))).status).toBe(200);
  });
});

describe('blobs turned off (DEADROP_BLOB_LIMIT=0)', () => {
  it('an octet-stream body is a 415, as before blobs existed', async () => {
    const off = await openDropRelay('memory', { blobLimit: 0 });
    try {
      const pair = off.keys();
      const refused = await fetch(`${off.url}/private/${pair.private}/x`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: randomBytes(10),
      });
      expect(refused.status).toBe(415);
    } finally {
      await off.close();
    }
  });
});

describe('the byte quota across two instances sharing Redis', () => {
  it('holds exactly under concurrent writes to both', async () => {
    const secret = randomSecret();
    const quota = 5 * MIB + 1000;
    const [a, b] = await Promise.all([
      openDropRelay('redis', { keyQuota: quota, secret }),
      openDropRelay('redis', { keyQuota: quota, secret }),
    ]);
    try {
      const pair = a.keys();
      const post = (url: string, uid: string) =>
        fetch(`${url}/private/${pair.private}/${uid}`, {
          method: 'POST',
          headers: { 'content-type': 'application/octet-stream' },
          body: randomBytes(MIB),
        }).then((answer) => answer.status);
      const statuses = await Promise.all(
        Array.from({ length: 12 }, (_, n) => post(n % 2 === 0 ? a.url : b.url, `u${n}`)),
      );
      expect(statuses.filter((status) => status === 200)).toHaveLength(5);
      expect(statuses.filter((status) => status === 507)).toHaveLength(7);
      expect(await a.store.blobBytes(pair.public)).toBe(5 * MIB);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describe('GET /limits', () => {
  it('tells the bounds a client plans with, as the relay was configured', async () => {
    const res = await fetch(`${relay.url}/limits`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      ttl: 60,
      bodyLimit: 10_240,
      blobLimit: BLOB_LIMIT,
      keyQuota: QUOTA,
      maxFields: 1000,
      maxQueue: 1000,
    });
    expect((await fetch(`${relay.url}/limits`, { method: 'POST' })).status).toBe(405);
  });
});
