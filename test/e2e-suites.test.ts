// The two cipher suites give the same bytes for every message of the protocol, and each opens what the other sealed.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import {
  type CipherSuite,
  createFrameOpener,
  createFrameSealer,
  deriveDropKey,
  deriveLinkCheck,
  FRAME_SIZE,
  nobleSuite,
  openAnswer,
  openChunk,
  openRecord,
  openRequest,
  openResponse,
  SealError,
  sealAnswer,
  sealChunk,
  sealRecord,
  sealRequest,
  sealResponse,
} from '../sdk/e2e/index.js';
import { nativeSuite, nodeSuite } from '../sdk/e2e/native-suite.js';
import { openTransform, sealTransform } from '../sdk/e2e/node-streams.js';

/** The X25519 base point: X25519(secret, 9) is the public key of `secret`. */
const BASE_POINT = Uint8Array.from({ length: 32 }, (_, at) => (at === 0 ? 9 : 0));

/**
 * `suite` with its randomness drawn from a seeded SHA-256 counter, so that two suites given the same seed must
 * give the same bytes. Ephemeral X25519 keys come from that randomness too, their public key by the suite's own
 * X25519 of the base point; Ed25519 signatures are deterministic in both (RFC 8032).
 */
function seeded(suite: CipherSuite, seed: string): CipherSuite {
  let counter = 0;
  const randomBytes = (length: number) => {
    const out = new Uint8Array(length);
    for (let at = 0; at < length; at += 32) {
      const block = createHash('sha256').update(`${seed}:${counter++}`).digest();
      out.set(block.subarray(0, Math.min(32, length - at)), at);
    }
    return out;
  };
  return {
    ...suite,
    randomBytes,
    x25519Keygen: () => {
      const secretKey = randomBytes(32);
      return { secretKey, publicKey: suite.x25519(secretKey, BASE_POINT) };
    },
  };
}

const suites = { noble: nobleSuite, native: nativeSuite } as const;
const directions = [
  ['noble', 'native'],
  ['native', 'noble'],
] as const;

const worker = nobleSuite.x25519Keygen();
const user = nobleSuite.ed25519Keygen();
const input = {
  workerPublicKey: worker.publicKey,
  to: 'G6:UL:U7:7L:ZD:PH:3Z:SY',
  typ: 'urn:deadrop:fs:list',
  body: { path: '/photos/été', deep: [1, { b: 2, a: null }] },
  user,
  reply: { pipe: 'p'.repeat(32), key: 'k' },
  now: 1_700_000_000_000,
};

describe('the native suite is what this Node offers', () => {
  it('uses OpenSSL for every primitive here, and says so', () => {
    expect(nodeSuite.name).toBe('native');
    expect(nodeSuite.seal).toBe(nativeSuite.seal);
    expect(nodeSuite.x25519).toBe(nativeSuite.x25519);
  });

  it('makes key pairs that @noble accepts, and the same shared secret', () => {
    const a = nativeSuite.x25519Keygen();
    const b = nobleSuite.x25519Keygen();
    expect(nativeSuite.x25519(a.secretKey, b.publicKey)).toEqual(nobleSuite.x25519(b.secretKey, a.publicKey));
    const signer = nativeSuite.ed25519Keygen();
    expect(nativeSuite.ed25519PublicKey(signer.secretKey)).toEqual(signer.publicKey);
    expect(nobleSuite.ed25519PublicKey(signer.secretKey)).toEqual(signer.publicKey);
    expect(nativeSuite.x25519(a.secretKey, BASE_POINT)).toEqual(a.publicKey);
    const message = randomBytes(100);
    const signature = nativeSuite.ed25519Sign(message, signer.secretKey);
    expect(nobleSuite.ed25519Sign(message, signer.secretKey)).toEqual(signature);
    expect(nobleSuite.ed25519Verify(signature, message, signer.publicKey)).toBe(true);
  });

  it('seal and open the same bytes at every size, across the native suite’s 64 KiB slices', () => {
    const key = randomBytes(32);
    const nonce = randomBytes(24);
    const aad = randomBytes(40);
    for (const size of [0, 1, 65_535, 65_536, 65_537, 3 * 65_536 + 17]) {
      const plain = randomBytes(size);
      const same = (bytes: Uint8Array) => Buffer.from(bytes);
      const sealed = nobleSuite.seal(key, nonce, aad, plain);
      expect(same(nativeSuite.seal(key, nonce, aad, plain))).toEqual(same(sealed));
      const into = new Uint8Array(size + 16);
      nativeSuite.seal(key, nonce, aad, plain, into);
      expect(same(into)).toEqual(same(sealed));
      expect(same(nativeSuite.open(key, nonce, aad, sealed))).toEqual(same(plain));
      expect(same(nobleSuite.open(key, nonce, aad, into))).toEqual(same(plain));
      const broken = sealed.slice();
      broken[Math.floor(size / 2)] = (broken[Math.floor(size / 2)] as number) ^ 1;
      expect(() => nativeSuite.open(key, nonce, aad, broken)).toThrow();
    }
  });

  it('refuses a bad tag, a bad signature and a key of the wrong shape, as @noble does', () => {
    for (const suite of Object.values(suites)) {
      const key = randomBytes(32);
      const nonce = randomBytes(24);
      const sealed = suite.seal(key, nonce, Uint8Array.of(1), Uint8Array.of(1, 2, 3));
      sealed[0] = (sealed[0] as number) ^ 1;
      expect(() => suite.open(key, nonce, Uint8Array.of(1), sealed)).toThrow();
      expect(() => suite.open(key, nonce, Uint8Array.of(1), Uint8Array.of(1))).toThrow();
      expect(suite.ed25519Verify(new Uint8Array(64), Uint8Array.of(1), user.publicKey)).toBe(false);
      expect(suite.ed25519Verify(new Uint8Array(3), Uint8Array.of(1), user.publicKey)).toBe(false);
      expect(suite.ed25519Verify(new Uint8Array(64), Uint8Array.of(1), new Uint8Array(5))).toBe(false);
      expect(() => suite.x25519(worker.secretKey, new Uint8Array(5))).toThrow();
    }
  });
});

describe('request envelopes', () => {
  it('are byte for byte the same from either suite, with the same response key', () => {
    const byNoble = sealRequest(input, seeded(nobleSuite, 'request'));
    const byNative = sealRequest(input, seeded(nativeSuite, 'request'));
    expect(JSON.stringify(byNative.envelope)).toBe(JSON.stringify(byNoble.envelope));
    expect(byNative.responseKey).toEqual(byNoble.responseKey);
  });

  it.each(directions)('sealed by %s, are opened by %s', (from, to) => {
    const { envelope, responseKey } = sealRequest(input, suites[from]);
    const opened = openRequest(JSON.parse(JSON.stringify(envelope)), worker, suites[to]);
    expect(opened).toMatchObject({ body: input.body, reply: input.reply, header: { rid: envelope.rid } });
    expect(opened.userPublicKey).toEqual(user.publicKey);
    expect(opened.responseKey).toEqual(responseKey);
  });

  it.each(directions)('sealed by %s and changed, are refused by %s', (from, to) => {
    const { envelope } = sealRequest(input, suites[from]);
    const forged = sealRequest(
      { ...input, user: { ...user, publicKey: nobleSuite.ed25519Keygen().publicKey } },
      suites[from],
    );
    for (const changed of [
      { ...envelope, exp: envelope.exp + 1 },
      { ...envelope, extra: 1 },
      // Another first character (one time in 64 it was already an A, and the test changed nothing).
      { ...envelope, ct: `${envelope.ct.startsWith('A') ? 'B' : 'A'}${envelope.ct.slice(1)}` },
      { ...envelope, epk: 'A'.repeat(43) },
      forged.envelope,
    ]) {
      expect(() => openRequest(changed, worker, suites[to])).toThrow(SealError);
    }
    expect(() => openRequest(envelope, nobleSuite.x25519Keygen(), suites[to])).toThrow(SealError);
  });
});

describe('responses and answers in parts', () => {
  const key = randomBytes(32);
  const large = { ok: true as const, result: { text: 'é'.repeat(30_000) } };

  it('are byte for byte the same from either suite', () => {
    expect(sealResponse(key, 'rid-1234', { a: 1 }, seeded(nativeSuite, 'r'))).toEqual(
      sealResponse(key, 'rid-1234', { a: 1 }, seeded(nobleSuite, 'r')),
    );
    expect(sealAnswer(key, 'rid-1234', large, seeded(nativeSuite, 'a'))).toEqual(
      sealAnswer(key, 'rid-1234', large, seeded(nobleSuite, 'a')),
    );
  });

  it.each(directions)('sealed by %s, are opened by %s', async (from, to) => {
    const response = sealResponse(key, 'rid-1234', { a: 1 }, suites[from]);
    expect(openResponse(key, 'rid-1234', response, suites[to])).toEqual({ a: 1 });
    expect(() => openResponse(key, 'rid-9999', response, suites[to])).toThrow(SealError);
    const messages = sealAnswer(key, 'rid-1234', large, suites[from]);
    expect(messages.length).toBeGreaterThan(2);
    const left = new Map(messages.map(({ uid, envelope }) => [uid, envelope as unknown]));
    const take = async (uid: string) => left.get(uid);
    expect(await openAnswer(key, 'rid-1234', left.get('rid-1234'), take, suites[to])).toEqual(large);
    left.set('rid-1234.1', left.get('rid-1234.2'));
    await expect(openAnswer(key, 'rid-1234', left.get('rid-1234'), take, suites[to])).rejects.toThrow(
      SealError,
    );
  });
});

describe('sealed frames', () => {
  const key = randomBytes(32);
  const body = randomBytes(3 * FRAME_SIZE + 1234);

  /** The whole sealed stream of `body`, sealed in pieces of `piece` bytes. */
  const sealAll = (suite: CipherSuite, piece: number) => {
    const sealer = createFrameSealer(key, suite);
    const parts = [sealer.header];
    for (let at = 0; at < body.length; at += piece) parts.push(sealer.seal(body.subarray(at, at + piece)));
    parts.push(sealer.seal(new Uint8Array(0), true));
    return Buffer.concat(parts);
  };
  const openAll = (suite: CipherSuite, wire: Uint8Array, piece: number) => {
    const opener = createFrameOpener(key, suite);
    const out: Uint8Array[] = [];
    for (let at = 0; at < wire.length; at += piece) out.push(...opener.push(wire.subarray(at, at + piece)));
    opener.finish();
    return Buffer.concat(out);
  };

  it('are byte for byte the same from either suite, and do not depend on how the input was cut', () => {
    const byNoble = Buffer.from(sealAll(seeded(nobleSuite, 'f'), FRAME_SIZE));
    expect(Buffer.from(sealAll(seeded(nativeSuite, 'f'), FRAME_SIZE)).equals(byNoble)).toBe(true);
    expect(Buffer.from(sealAll(seeded(nativeSuite, 'f'), 4 * FRAME_SIZE)).equals(byNoble)).toBe(true);
    for (const suite of [nobleSuite, nativeSuite]) {
      const sealer = createFrameSealer(key, seeded(suite, 'f'));
      const pieces = [
        sealer.header,
        ...sealer.sealPieces(body),
        ...sealer.sealPieces(new Uint8Array(0), true),
      ];
      expect(Buffer.concat(pieces).equals(byNoble)).toBe(true);
    }
  });

  it.each(directions)('sealed by %s, are opened by %s in pieces of any size', (from, to) => {
    const wire = sealAll(suites[from], 100_000);
    for (const piece of [1 + FRAME_SIZE, 777, wire.length]) {
      expect(openAll(suites[to], wire, piece).equals(body)).toBe(true);
    }
    const changed = Buffer.from(wire);
    changed[40] = (changed[40] as number) ^ 1;
    expect(() => openAll(suites[to], changed, 4096)).toThrow(SealError);
    expect(() => openAll(suites[to], wire.subarray(0, wire.length - 20), 4096)).toThrow(/cut short/);
  });

  it.each(directions)('through Node streams: sealed by %s, opened by %s', async (from, to) => {
    const out: Buffer[] = [];
    await pipeline(
      Readable.from([body.subarray(0, 5000), body.subarray(5000)]),
      sealTransform(key, { suite: suites[from] }),
      openTransform(key, { suite: suites[to] }),
      async (source: AsyncIterable<Buffer>) => {
        for await (const chunk of source) out.push(chunk);
      },
    );
    expect(Buffer.concat(out).equals(body)).toBe(true);
  });
});

describe('drop chunks and manifests', () => {
  const key = randomBytes(32);
  const place = { publicKey: 'P'.repeat(32), index: 7, final: true };
  const plain = randomBytes(100_000);

  it('are byte for byte the same from either suite', () => {
    expect(Buffer.from(sealChunk(key, place, plain, seeded(nativeSuite, 'c')))).toEqual(
      Buffer.from(sealChunk(key, place, plain, seeded(nobleSuite, 'c'))),
    );
    expect(
      sealRecord(key, place.publicKey, 'manifest', { v: 1, name: 'é' }, seeded(nativeSuite, 'm')),
    ).toEqual(sealRecord(key, place.publicKey, 'manifest', { v: 1, name: 'é' }, seeded(nobleSuite, 'm')));
    const secret = randomBytes(32);
    expect(deriveDropKey(secret, place.publicKey, nativeSuite)).toEqual(
      deriveDropKey(secret, place.publicKey, nobleSuite),
    );
    expect(deriveLinkCheck(secret, place.publicKey, nativeSuite)).toEqual(
      deriveLinkCheck(secret, place.publicKey, nobleSuite),
    );
  });

  it.each(directions)('sealed by %s, are opened by %s, and only in their place', (from, to) => {
    const sealed = sealChunk(key, place, plain, suites[from]);
    expect(Buffer.from(openChunk(key, place, sealed, suites[to])).equals(plain)).toBe(true);
    expect(() => openChunk(key, { ...place, index: 6 }, sealed, suites[to])).toThrow(SealError);
    expect(() => openChunk(key, { ...place, final: false }, sealed, suites[to])).toThrow(SealError);
    const manifest = sealRecord(key, place.publicKey, 'manifest', { v: 1, name: 'é' }, suites[from]);
    expect(openRecord(key, place.publicKey, 'manifest', manifest, suites[to])).toEqual({ v: 1, name: 'é' });
    expect(() => openRecord(key, 'Q'.repeat(32), 'manifest', manifest, suites[to])).toThrow(SealError);
    // A manifest is not a claim: each record opens only as what it was sealed for.
    expect(() => openRecord(key, place.publicKey, 'claim', manifest, suites[to])).toThrow(SealError);
  });
});
