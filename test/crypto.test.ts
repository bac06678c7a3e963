// The end-to-end crypto of sdk/crypto.ts: Deadbox fingerprint vectors, round trips, and every tampering refused.
import { sha256 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  createFrameOpener,
  createFrameSealer,
  fingerprint,
  fromBase64url,
  generateFrameKey,
  generateUserKeys,
  generateWorkerKeys,
  openRequest,
  openResponse,
  openStream,
  type RequestEnvelope,
  SealError,
  sealRequest,
  sealResponse,
  sealStream,
  toBase64url,
  verifyFingerprint,
} from '../sdk/crypto.js';

/** DER of RSAPublicKey{N=42, E=13}: the key of the Deadbox test vectors. */
const VECTOR_KEY = Uint8Array.from([0x30, 0x06, 0x02, 0x01, 0x2a, 0x02, 0x01, 0x0d]);

describe('fingerprint (Deadbox vectors)', () => {
  it.each([
    { level: 0, counter: 0, id: '2E:J7:2J:77:GD:VL:P4:RE' },
    { level: 8, counter: 12, id: 'OR:NI:KT:EI:EL:LR:3U:NE' },
    { level: 21, counter: 459156, id: 'G6:UL:U7:7L:ZD:PH:3Z:SY' },
  ])('level $level gives $id at counter $counter', ({ level, counter, id }) => {
    expect(fingerprint(VECTOR_KEY, level, 8)).toEqual({ id, counter });
    expect(verifyFingerprint(VECTOR_KEY, id, level, counter)).toBe(true);
  });

  it('defaults to level 21 and 8 pairs', () => {
    expect(fingerprint(VECTOR_KEY)).toEqual({ id: 'G6:UL:U7:7L:ZD:PH:3Z:SY', counter: 459156 });
  });

  it('refuses another key, counter, level or id', () => {
    const other = Uint8Array.from(VECTOR_KEY);
    other[7] = 0x0e;
    expect(verifyFingerprint(other, 'OR:NI:KT:EI:EL:LR:3U:NE', 8, 12)).toBe(false);
    expect(verifyFingerprint(VECTOR_KEY, 'OR:NI:KT:EI:EL:LR:3U:NE', 8, 13)).toBe(false);
    expect(verifyFingerprint(VECTOR_KEY, 'OR:NI:KT:EI:EL:LR:3U:NE', 7, 12)).toBe(false);
    expect(verifyFingerprint(VECTOR_KEY, 'OR:NI:KT:EI:EL:LR:3U:NF', 8, 12)).toBe(false);
    expect(verifyFingerprint(VECTOR_KEY, 'OR:NI:KT:EI:EL:LR:3U:NE', 8, -1)).toBe(false);
  });

  it('gives the id of a worker key at a low level', () => {
    const worker = generateWorkerKeys();
    const { id, counter } = fingerprint(worker.publicKey, 4, 8);
    expect(id).toMatch(/^([A-Z2-7]{2}:){7}[A-Z2-7]{2}$/);
    expect(verifyFingerprint(worker.publicKey, id, 4, counter)).toBe(true);
  });
});

describe('encodings', () => {
  it('base64url round-trips every byte value and refuses anything else', () => {
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    expect(fromBase64url(toBase64url(bytes))).toEqual(bytes);
    expect(toBase64url(Uint8Array.of(0xfb, 0xff))).toBe('-_8');
    for (const bad of ['a+b', 'ab=', 'a', '-_9']) expect(() => fromBase64url(bad)).toThrow(SealError);
  });

  it('canonical JSON sorts keys at every depth', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: 'x' }], e: undefined })).toBe(
      '{"a":[{"c":"x","d":2}],"b":1}',
    );
  });
});

/** A user's request to a worker, and everything needed to open it. */
function exchange(body: unknown = { path: '/photos', op: 'list' }) {
  const worker = generateWorkerKeys();
  const user = generateUserKeys();
  const sealed = sealRequest({
    workerPublicKey: worker.publicKey,
    to: 'G6:UL:U7:7L:ZD:PH:3Z:SY',
    typ: 'urn:deadrop:files:list',
    body,
    user,
    reply: { pipe: 'pipe-public-key' },
    now: 1_700_000_000_000,
  });
  return { worker, user, ...sealed };
}

/** The envelope as it travels: JSON text, parsed again by the worker. */
const overTheWire = (envelope: RequestEnvelope): Record<string, unknown> =>
  JSON.parse(JSON.stringify(envelope));

/** Flips one bit in the middle of a base64url field. */
function flipBit(field: string): string {
  const bytes = fromBase64url(field);
  bytes[bytes.length >> 1] ^= 1;
  return toBase64url(bytes);
}

describe('request and response envelopes', () => {
  it('a worker opens the request and the user opens the answer', () => {
    const { worker, user, envelope, responseKey } = exchange();
    expect(Object.keys(envelope).sort()).toEqual(['ct', 'epk', 'exp', 'iat', 'n', 'rid', 'to', 'typ', 'v']);
    expect(envelope).toMatchObject({
      v: 1,
      typ: 'urn:deadrop:files:list',
      iat: 1_700_000_000,
      exp: 1_700_000_300,
    });

    const opened = openRequest(overTheWire(envelope), worker);
    expect(opened.body).toEqual({ path: '/photos', op: 'list' });
    expect(opened.reply).toEqual({ pipe: 'pipe-public-key' });
    expect(opened.userPublicKey).toEqual(user.publicKey);
    expect(opened.header.rid).toBe(envelope.rid);
    expect(opened.responseKey).toEqual(responseKey);

    const answer = sealResponse(opened.responseKey, opened.header.rid, { files: ['a.jpg'] });
    expect(openResponse(responseKey, envelope.rid, JSON.parse(JSON.stringify(answer)))).toEqual({
      files: ['a.jpg'],
    });
  });

  it('the request and response keys differ, and so do two requests', () => {
    const first = exchange();
    const second = exchange();
    expect(first.envelope.rid).not.toBe(second.envelope.rid);
    expect(first.envelope.epk).not.toBe(second.envelope.epk);
    const answer = sealResponse(first.responseKey, first.envelope.rid, 'x');
    // A response sealed with the response key is no request: the request key is another.
    expect(() => openRequest({ ...first.envelope, n: answer.n, ct: answer.ct }, first.worker)).toThrow(
      SealError,
    );
  });

  it.each([
    ['typ', 'urn:deadrop:command:run'],
    ['rid', 'another-request-id'],
    ['to', 'AA:AA:AA:AA:AA:AA:AA:AA'],
    ['iat', 1_600_000_000],
    ['exp', 1_900_000_000],
  ])('a changed header field "%s" is refused', (field, value) => {
    const { worker, envelope } = exchange();
    expect(() => openRequest({ ...overTheWire(envelope), [field]: value }, worker)).toThrow(SealError);
  });

  it('a changed ciphertext, nonce or ephemeral key is refused', () => {
    const { worker, envelope } = exchange();
    for (const field of ['ct', 'n', 'epk'] as const) {
      expect(() =>
        openRequest({ ...overTheWire(envelope), [field]: flipBit(envelope[field]) }, worker),
      ).toThrow(SealError);
    }
  });

  it('an added or removed field changes the AAD and is refused', () => {
    const { worker, envelope } = exchange();
    expect(() => openRequest({ ...overTheWire(envelope), hop: 'relay-2' }, worker)).toThrow(SealError);
    const { to: _, ...withoutTo } = overTheWire(envelope);
    expect(() => openRequest(withoutTo, worker)).toThrow(SealError);
  });

  it('a request for another worker, or not an envelope, is refused', () => {
    const { envelope } = exchange();
    expect(() => openRequest(overTheWire(envelope), generateWorkerKeys())).toThrow(SealError);
    expect(() => openRequest(null, generateWorkerKeys())).toThrow(SealError);
    expect(() => openRequest({ ...overTheWire(envelope), v: 2 }, generateWorkerKeys())).toThrow(SealError);
    expect(() =>
      openRequest({ ...overTheWire(envelope), ct: 'not base64url!' }, generateWorkerKeys()),
    ).toThrow(SealError);
  });

  it('a response to another request, changed, or under another key is refused', () => {
    const { envelope, responseKey } = exchange();
    const answer = sealResponse(responseKey, envelope.rid, { ok: true });
    expect(() => openResponse(responseKey, 'another-rid', answer)).toThrow(SealError);
    expect(() => openResponse(responseKey, 'another-rid', { ...answer, rid: 'another-rid' })).toThrow(
      SealError,
    );
    expect(() => openResponse(responseKey, envelope.rid, { ...answer, ct: flipBit(answer.ct) })).toThrow(
      SealError,
    );
    expect(() => openResponse(generateFrameKey(), envelope.rid, answer)).toThrow(SealError);
  });
});

/** Seals `chunks` as frames (the last one final) and returns the stream's bytes, header first. */
function sealFrames(key: Uint8Array, chunks: string[]): Uint8Array[] {
  const sealer = createFrameSealer(key);
  const encoder = new TextEncoder();
  return [
    sealer.header,
    ...chunks.map((chunk, i) => sealer.seal(encoder.encode(chunk), i === chunks.length - 1)),
  ];
}

/** Opens `parts` as one byte stream and returns the text, or throws. */
function openFrames(key: Uint8Array, parts: Uint8Array[]): string {
  const opener = createFrameOpener(key);
  const decoder = new TextDecoder();
  let text = '';
  for (const part of parts) for (const plain of opener.push(part)) text += decoder.decode(plain);
  opener.finish();
  return text;
}

describe('sealed frames', () => {
  it('round-trip, whatever the chunking of the bytes on the wire', () => {
    const key = generateFrameKey();
    const parts = sealFrames(key, ['one ', 'two ', 'three']);
    expect(openFrames(key, parts)).toBe('one two three');
    const all = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
    let at = 0;
    for (const part of parts) {
      all.set(part, at);
      at += part.length;
    }
    const singleBytes = Array.from(all, (byte) => Uint8Array.of(byte));
    expect(openFrames(key, singleBytes)).toBe('one two three');
  });

  it('reordered frames are refused', () => {
    const key = generateFrameKey();
    const [header, a, b, c] = sealFrames(key, ['a', 'b', 'c']) as [
      Uint8Array,
      Uint8Array,
      Uint8Array,
      Uint8Array,
    ];
    expect(() => openFrames(key, [header, b, a, c])).toThrow(SealError);
  });

  it('a dropped middle frame is refused', () => {
    const key = generateFrameKey();
    const [header, a, , c] = sealFrames(key, ['a', 'b', 'c']) as Uint8Array[];
    expect(() => openFrames(key, [header, a, c] as Uint8Array[])).toThrow(SealError);
  });

  it('a stream cut before its final frame is refused, even at a frame boundary', () => {
    const key = generateFrameKey();
    const parts = sealFrames(key, ['a', 'b', 'c']);
    expect(() => openFrames(key, parts.slice(0, 3))).toThrow(/cut short/);
    const last = parts[3] as Uint8Array;
    expect(() => openFrames(key, [...parts.slice(0, 3), last.subarray(0, last.length - 1)])).toThrow(
      /cut short/,
    );
  });

  it('a changed frame, prefix or length, data after the final frame, or another key are refused', () => {
    const key = generateFrameKey();
    const parts = sealFrames(key, ['a', 'b']);
    const changed = parts.map((part) => Uint8Array.from(part));
    (changed[1] as Uint8Array)[6] ^= 1;
    expect(() => openFrames(key, changed)).toThrow(SealError);
    const prefix = parts.map((part) => Uint8Array.from(part));
    (prefix[0] as Uint8Array)[0] ^= 1;
    expect(() => openFrames(key, prefix)).toThrow(SealError);
    const length = parts.map((part) => Uint8Array.from(part));
    (length[1] as Uint8Array)[0] = 0xff;
    expect(() => openFrames(key, length)).toThrow(/impossible length/);
    expect(() => openFrames(key, [...parts, parts[1] as Uint8Array])).toThrow(/follows the final/);
    expect(() => openFrames(generateFrameKey(), parts)).toThrow(SealError);
  });

  it('a frame claimed to be final when it was not is refused', () => {
    const key = generateFrameKey();
    const sealer = createFrameSealer(key);
    const frames = [sealer.header, sealer.seal(Uint8Array.of(1)), sealer.seal(Uint8Array.of(2), true)];
    // A sealer never seals after its final frame, so nobody can append a forged end.
    expect(() => sealer.seal(Uint8Array.of(3))).toThrow(SealError);
    expect(openFrames(key, frames)).toBe('\u0001\u0002');
  });

  it('sealStream and openStream carry a large body through TransformStreams', async () => {
    const key = generateFrameKey();
    const body = Uint8Array.from({ length: 3_000_000 }, (_, i) => (i * 31) & 0xff);
    const opened = new Response(
      new Blob([body]).stream().pipeThrough(sealStream(key)).pipeThrough(openStream(key)),
    );
    const back = new Uint8Array(await opened.arrayBuffer());
    expect(toBase64url(sha256(back))).toBe(toBase64url(sha256(body)));
  });

  it('openStream errors on a truncated sealed stream', async () => {
    const key = generateFrameKey();
    const sealed = new Uint8Array(
      await new Response(
        new Blob([new Uint8Array(100_000)]).stream().pipeThrough(sealStream(key)),
      ).arrayBuffer(),
    );
    const cut = new Blob([sealed.subarray(0, sealed.length - 20)]).stream().pipeThrough(openStream(key));
    await expect(new Response(cut).arrayBuffer()).rejects.toThrow(/cut short/);
  });
});
