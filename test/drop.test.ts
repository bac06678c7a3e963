// Drops end to end against a real relay: round trips, burn after read, revoke, tampering, passwords, the store, the CLI.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DROP_CHUNK_SIZE,
  DropError,
  type DropSink,
  dropNeedsPassword,
  dropStatus,
  type KeptFetch,
  type OpenDropOptions,
  type OpenedDrop,
  openDrop,
  parseDropLink,
  type ReadyDrop,
  revokeDrop,
  type SendDropOptions,
  type SentDrop,
  sendDrop,
} from '../sdk/drop.js';
import { openChunk, openChunkParts, sealChunk, sealChunkParts } from '../sdk/e2e/drop-chunks.js';
import { nativeSuite } from '../sdk/e2e/native-suite.js';
import { nobleSuite } from '../sdk/e2e/noble-suite.js';
import { SealError } from '../sdk/e2e/seal-error.js';
import { DeadropError } from '../sdk/index.js';
import { createDropPipe } from '../src/client/node-pipe.js';
import { runDropCommand } from '../src/drop/cli.js';
import type { DropIo } from '../src/drop/terminal.js';
import { SQLITE_FILE } from '../src/store/sqlite-store.js';
import { type DropRelay, mistype, openDropRelay } from './drop-relay.js';
import { sleep, tempDir, waitFor } from './helpers.js';

const MIB = 1_048_576;
/** Cheap Argon2id for tests that are not about its cost. */
const FAST_ARGON2 = { t: 1, m: 64, p: 1 };

let relay: DropRelay;
let dataDir: string;
let work: string;
beforeAll(async () => {
  dataDir = await tempDir();
  relay = await openDropRelay('sqlite', { dataDir });
  work = await mkdtemp(join(tmpdir(), 'deadrop-drop-'));
});
afterAll(async () => {
  await relay.close();
  await rm(dataDir, { recursive: true, force: true });
  await rm(work, { recursive: true, force: true });
});

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** A sink in memory: the chunks a fetch saved, and the key it claimed. */
function memorySink(kept?: KeptFetch) {
  const chunks: Uint8Array[] = [];
  let claimed: string | undefined;
  const sink: DropSink = {
    resume: async () => kept,
    claimed: async (privateKey) => {
      claimed = privateKey;
    },
    write: async (_index, plain) => {
      chunks.push(plain);
    },
  };
  return { sink, chunks, claimed: () => claimed };
}

/** `sink`, failing at chunk `index` as a disk would. */
const failingAt = (sink: DropSink, index: number, message: string): DropSink => ({
  ...sink,
  write: async (at, plain) => {
    if (at === index) throw new Error(message);
    await sink.write(at, plain);
  },
});

/** A sink that resumes from `kept`, the chunks the fetch into `first` saved. */
const resumeFrom = (first: ReturnType<typeof memorySink>, kept: Uint8Array[]) =>
  memorySink({
    privateKey: first.claimed() as string,
    chunks: kept.length,
    bytes: async function* () {
      yield* kept;
    },
  });

/** Opens and fetches a whole drop into memory; a DropError is thrown. */
async function fetchAll(
  link: string,
  options: OpenDropOptions = {},
  fetchOptions: Parameters<OpenedDrop['fetchInto']>[1] = {},
) {
  const drop = await openDrop(link, options);
  const { sink, chunks } = memorySink();
  const { sha256: hash } = await drop.fetchInto(sink, fetchOptions);
  return { drop, sha256: hash, bytes: Buffer.concat(chunks) };
}

const send = (bytes: Uint8Array, options: SendDropOptions = {}) =>
  sendDrop(relay.url, new Blob([bytes as BlobPart]), { name: 'data.bin', ...options });

/** Starts sending `bytes` to the relay at `url`: the link, once ready, and the send going on. */
async function startSend(url: string, bytes: Uint8Array, options: SendDropOptions = {}) {
  let ready: ReadyDrop | undefined;
  const sending = sendDrop(url, new Blob([bytes as BlobPart]), {
    ...options,
    onReady: (drop) => {
      ready = drop;
      options.onReady?.(drop);
    },
  });
  sending.catch(() => {}); // awaited by the test
  await waitFor(() => ready !== undefined, 'the link');
  return { sending, ready: ready as ReadyDrop };
}

/** The owner's raw access to a drop's parts, to play the relay that tampers with them. */
const parts = (drop: SentDrop) => ({
  read: async (uid: string) =>
    new Uint8Array(await (await fetch(`${relay.url}/private/${drop.privateKey}/${uid}?peek`)).arrayBuffer()),
  put: (uid: string, bytes: Uint8Array) =>
    fetch(`${relay.url}/private/${drop.privateKey}/${uid}`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: bytes as BodyInit,
    }),
  remove: (uid: string) => fetch(`${relay.url}/private/${drop.privateKey}/${uid}`, { method: 'DELETE' }),
});

/** Everything of a drop the relay still holds: its record, its claim and its chunks' bytes. */
async function leftOnRelay(drop: SentDrop) {
  const record = await relay.store.readValue(drop.publicKey);
  const claim = await relay.store.fieldTtl(drop.publicKey, 'k');
  return { record, claim, blobBytes: await relay.store.blobBytes(drop.publicKey) };
}

describe('a drop round trip keeps every byte', () => {
  const sizes: [string, number][] = [
    ['0 bytes', 0],
    ['1 byte', 1],
    ['exactly one chunk', DROP_CHUNK_SIZE],
    ['one chunk and 1 byte', DROP_CHUNK_SIZE + 1],
    ['25 MiB', 25 * MIB],
  ];
  for (const [name, size] of sizes) {
    it(`${name}: the same SHA-256 comes out, with the manifest's name, size and type`, async () => {
      const bytes = randomBytes(size);
      const sent = await send(bytes, { type: 'application/x-test' });
      expect(sent.chunks).toBe(Math.max(1, Math.ceil(size / DROP_CHUNK_SIZE)));
      const { drop, bytes: received, sha256: verified } = await fetchAll(sent.link);
      expect(drop).toMatchObject({ name: 'data.bin', size, type: 'application/x-test' });
      expect(verified).toBe(sha256(bytes));
      expect(received.length).toBe(size);
      expect(sha256(received)).toBe(sha256(bytes));
    });
  }

  it('Node’s native primitives and @noble’s seal the same bytes, so a page and the CLI read each other', async () => {
    const key = randomBytes(32);
    const nonce = randomBytes(24);
    const aad = randomBytes(17);
    const plain = randomBytes(100_000);
    const sealed = nativeSuite.seal(key, nonce, aad, plain);
    expect(Buffer.from(sealed).equals(Buffer.from(xchacha20poly1305(key, nonce, aad).encrypt(plain)))).toBe(
      true,
    );
    expect(Buffer.from(nativeSuite.open(key, nonce, aad, sealed)).equals(plain)).toBe(true);
    sealed[5] = (sealed[5] as number) ^ 1;
    expect(() => nativeSuite.open(key, nonce, aad, sealed)).toThrow();

    const bytes = randomBytes(3 * MIB);
    const byNative = await send(bytes, { cipher: nativeSuite });
    expect(sha256((await fetchAll(byNative.link)).bytes)).toBe(sha256(bytes));
    const byNoble = await send(bytes);
    expect(sha256((await fetchAll(byNoble.link, { cipher: nativeSuite })).bytes)).toBe(sha256(bytes));
  });

  it('a chunk in the pieces a stream gives opens as it does whole, with either suite, and not once altered', () => {
    const key = randomBytes(32);
    const place = { publicKey: 'p'.repeat(22), index: 7, final: false };
    const plain = randomBytes(300_000);
    const sealed = sealChunk(key, place, plain, nativeSuite);
    // Cut inside the nonce, at its end, inside the body and inside the tag.
    const cuts = [0, 5, 24, 70_000, 200_001, sealed.length - 9, sealed.length];
    const parts = cuts.slice(1).map((end, at) => sealed.subarray(cuts[at], end));
    for (const suite of [nativeSuite, nobleSuite]) {
      expect(Buffer.concat(openChunkParts(key, place, parts, suite)).equals(plain)).toBe(true);
      expect(() => openChunkParts(key, { ...place, index: 8 }, parts, suite)).toThrow(SealError);
    }
    const altered = parts.map((part) => part.slice());
    (altered[3] as Uint8Array)[100] ^= 1;
    expect(() => openChunkParts(key, place, altered, nativeSuite)).toThrow(SealError);
    expect(() => openChunkParts(key, place, [sealed.subarray(0, 30)], nativeSuite)).toThrow(SealError);
    // What a sender streams, sealed in pieces, is what the store would hold.
    for (const suite of [nativeSuite, nobleSuite]) {
      const streamed = Buffer.concat(sealChunkParts(key, place, plain, suite));
      expect(streamed.length).toBe(sealed.length);
      expect(Buffer.from(openChunk(key, place, streamed, nobleSuite)).equals(plain)).toBe(true);
    }
  });

  it('reports progress up to the size on both sides', async () => {
    const sentSteps: number[] = [];
    const receivedSteps: number[] = [];
    const sent = await send(randomBytes(2 * MIB), { onProgress: (done) => sentSteps.push(done) });
    await fetchAll(sent.link, {}, { onProgress: (done) => receivedSteps.push(done) });
    expect(sentSteps.at(-1)).toBe(2 * MIB);
    expect(receivedSteps).toEqual([DROP_CHUNK_SIZE, 2 * DROP_CHUNK_SIZE, 2 * MIB]);
  });
});

describe('a source that reads by range (the CLI’s file handle)', () => {
  const rangeSource = (bytes: Uint8Array, shrinkAfter = Infinity) => {
    let reads = 0;
    return {
      size: bytes.length,
      name: 'ranged.bin',
      read: async (start: number, end: number) => {
        reads++;
        return bytes.subarray(start, reads > shrinkAfter ? start + (end - start) / 2 : end);
      },
    };
  };

  it('sends every byte, chunk by chunk, with its name', async () => {
    const bytes = randomBytes(2 * MIB + 123);
    const sent = await sendDrop(relay.url, rangeSource(bytes), { chunkSize: MIB });
    const fetched = await fetchAll(sent.link);
    expect(fetched.drop.name).toBe('ranged.bin');
    expect(fetched.drop.type).toBe('application/octet-stream');
    expect(sha256(fetched.bytes)).toBe(sha256(bytes));
  });

  it('a file that shrinks while it is sent is refused, and what was uploaded is withdrawn', async () => {
    let ready: ReadyDrop | undefined;
    const failed = await sendDrop(relay.url, rangeSource(randomBytes(3 * MIB), 1), {
      chunkSize: MIB,
      onReady: (drop) => {
        ready = drop;
      },
    }).catch((error: unknown) => error);
    expect(failed).toMatchObject({ code: 'file_changed' });
    const left = await leftOnRelay(ready as ReadyDrop);
    expect(left).toEqual({ record: undefined, claim: 0, blobBytes: 0 });
  });
});

describe('a mistyped link burns nothing', () => {
  it('a wrong character in the key says so, and the right link then fetches every byte', async () => {
    const bytes = randomBytes(3 * MIB);
    const sent = await send(bytes);
    const keyStart = 33; // after "<public key>."
    for (const wrong of [mistype(sent.link, keyStart + 5), mistype(sent.link, keyStart + 42)]) {
      await expect(openDrop(wrong)).rejects.toMatchObject({
        code: 'bad_link',
        message: expect.stringContaining('a character of it is wrong'),
      });
    }
    expect((await dropStatus(sent)).state).toBe('waiting');
    expect((await fetchAll(sent.link)).bytes.equals(bytes)).toBe(true);
  });

  it('a wrong character in the public key says so, and the right link then fetches every byte', async () => {
    const bytes = randomBytes(1000);
    const sent = await send(bytes);
    await expect(openDrop(mistype(sent.link, 20))).rejects.toMatchObject({ code: 'bad_link' });
    expect((await fetchAll(sent.link)).bytes.equals(bytes)).toBe(true);
  });

  it('with a password, a mistyped link is told before the password is asked for', async () => {
    const sent = await send(randomBytes(10), { password: 'pw', argon2: FAST_ARGON2 });
    await expect(openDrop(mistype(sent.link, 40), { password: 'pw' })).rejects.toMatchObject({
      code: 'bad_link',
    });
    await expect(openDrop(mistype(sent.link, 40))).rejects.toMatchObject({ code: 'bad_link' });
    expect((await fetchAll(sent.link, { password: 'pw' })).bytes.length).toBe(10);
  });

  it('links that are not drop links are refused before the relay is asked', async () => {
    for (const link of ['https://relay.example/drop', 'https://relay.example/other#a.b', 'not a url']) {
      expect(() => parseDropLink(link)).toThrow(DropError);
    }
  });
});

describe('burn after read', () => {
  it('a second fetch learns when the drop was fetched, and the sender sees it too', async () => {
    const sent = await send(randomBytes(1000));
    const before = await dropStatus(sent);
    expect(before.state).toBe('waiting');
    expect(before.expiresIn).toBeGreaterThan(50);
    await fetchAll(sent.link);
    const second = await openDrop(sent.link).catch((error: unknown) => error);
    expect(second).toBeInstanceOf(DropError);
    expect((second as DropError).code).toBe('gone');
    expect((second as DropError).message).toMatch(
      /^This drop was already fetched, at \d{4}-.*Z: it opens once\. If that was not you, someone else had the link\.$/,
    );
    const status = await dropStatus(sent);
    expect(status).toMatchObject({ state: 'fetched', expiresIn: 0 });
    expect(Date.now() - (status.fetchedAt as number)).toBeLessThan(60_000);
    expect((await leftOnRelay(sent)).blobBytes).toBe(0);
  });

  it('whoever claims the drop first gets it: a second receiver is told, and the sender sees a fetch going on', async () => {
    const bytes = randomBytes(3 * MIB);
    const sent = await send(bytes);
    const first = await openDrop(sent.link);
    const second = await openDrop(sent.link);
    let open = () => {};
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const { sink, chunks } = memorySink();
    const firstFetch = first.fetchInto({
      ...sink,
      write: async (index, plain) => {
        await gate;
        await sink.write(index, plain);
      },
    });
    await waitFor(async () => (await dropStatus(sent)).state === 'fetching', 'the first claim');
    await expect(second.fetchInto(memorySink().sink)).rejects.toMatchObject({
      code: 'gone',
      message: expect.stringContaining('Someone else began fetching this drop first'),
    });
    open();
    await firstFetch;
    expect(Buffer.concat(chunks).equals(bytes)).toBe(true);
  });

  it('a revoked drop is gone for the receiver, and nothing of it is left on the relay', async () => {
    const sent = await send(randomBytes(3 * MIB), { password: 'pw', argon2: FAST_ARGON2 });
    await revokeDrop(sent);
    expect((await dropStatus(sent)).state).toBe('gone');
    await expect(openDrop(sent.link, { password: 'pw' })).rejects.toMatchObject({ code: 'gone' });
    expect(await leftOnRelay(sent)).toEqual({ record: undefined, claim: 0, blobBytes: 0 });
  });
});

describe('an interrupted fetch resumes', () => {
  it('from the chunks it saved: none of them is read from the relay again, and the bytes are equal', async () => {
    const bytes = randomBytes(6 * DROP_CHUNK_SIZE + 123);
    const peeks: string[] = [];
    const watched = await openDropRelay('sqlite', {
      onRequest: (req) => {
        if (req.originalUrl.includes('?peek')) peeks.push(/\/(c\d+)\?/.exec(req.originalUrl)?.[1] as string);
      },
    });
    try {
      const sent = await sendDrop(watched.url, new Blob([bytes]), { name: 'data.bin' });
      const first = memorySink();
      const drop = await openDrop(sent.link);
      const broken = failingAt(first.sink, 3, 'disk unplugged');
      await expect(drop.fetchInto(broken)).rejects.toThrow('disk unplugged');
      expect(first.chunks.length).toBe(3);
      const seenFirst = peeks.length;

      const kept = first.chunks.slice();
      const again = resumeFrom(first, kept);
      const { sha256: verified } = await (await openDrop(sent.link)).fetchInto(again.sink);
      expect(verified).toBe(sha256(bytes));
      expect(Buffer.concat([...kept, ...again.chunks]).equals(bytes)).toBe(true);
      const resumedPeeks = peeks.slice(seenFirst);
      expect(resumedPeeks).not.toContain('c0');
      expect(resumedPeeks).not.toContain('c1');
      expect(resumedPeeks).not.toContain('c2');
      expect(new Set(resumedPeeks)).toEqual(new Set(['c3', 'c4', 'c5', 'c6']));
    } finally {
      await watched.close();
    }
  });

  it('a kept fetch whose bytes do not match fails the whole-file check', async () => {
    const bytes = randomBytes(2 * DROP_CHUNK_SIZE);
    const sent = await send(bytes);
    const first = memorySink();
    const drop = await openDrop(sent.link);
    await expect(
      drop.fetchInto({
        ...first.sink,
        write: async (index, plain) => {
          if (index === 1) throw new Error('stop');
          await first.sink.write(index, plain);
        },
      }),
    ).rejects.toThrow('stop');
    const wrong = randomBytes(DROP_CHUNK_SIZE);
    const again = memorySink({
      privateKey: first.claimed() as string,
      chunks: 1,
      bytes: async function* () {
        yield wrong;
      },
    });
    await expect((await openDrop(sent.link)).fetchInto(again.sink)).rejects.toMatchObject({
      code: 'tampered',
      message: "The file's SHA-256 does not match its manifest.",
    });
  });
});

describe('no size ceiling', () => {
  /** A relay whose key pairs hold 4 chunks (4 MiB), as the default 64 MiB holds 64. */
  let small: DropRelay;
  beforeAll(async () => {
    small = await openDropRelay('sqlite', { keyQuota: 4 * MIB });
  });
  afterAll(() => small.close());

  it('a drop many times the quota streams through it while both ends run', async () => {
    const bytes = randomBytes(20 * MIB + 5);
    const waits: string[] = [];
    let ready: ReadyDrop | undefined;
    const sending = sendDrop(small.url, new Blob([bytes]), {
      name: 'big.bin',
      cipher: nativeSuite,
      onReady: (drop) => {
        ready = drop;
      },
      onWait: (wait) => waits.push(wait.reason),
    });
    await waitFor(() => ready !== undefined, 'the link');
    const link = (ready as ReadyDrop).link;
    expect((ready as ReadyDrop).offlineLimit).toBe(4 * DROP_CHUNK_SIZE);
    await sleep(300); // the sender fills the room and waits for the receiver
    expect(waits).toContain('receiver');
    const blobBytes = await small.store.blobBytes(parseDropLink(link).publicKey);
    expect(blobBytes).toBeLessThanOrEqual(4 * MIB);
    const { bytes: received } = await fetchAll(link, { cipher: nativeSuite });
    await sending;
    expect(received.equals(bytes)).toBe(true);
  });

  it('the exact quota works, and a drop of the offline limit waits whole for a receiver who comes later', async () => {
    const exact = randomBytes(4 * MIB);
    let link = '';
    const sending = sendDrop(small.url, new Blob([exact]), {
      onReady: (drop) => {
        link = drop.link;
      },
    });
    await waitFor(() => link !== '', 'the link');
    expect((await fetchAll(link)).bytes.equals(exact)).toBe(true);
    await sending;

    const offline = randomBytes(4 * DROP_CHUNK_SIZE);
    const sent = await sendDrop(small.url, new Blob([offline]));
    expect(sent.size).toBe(sent.offlineLimit);
    expect((await fetchAll(sent.link)).bytes.equals(offline)).toBe(true);
  });

  it('a drop revoked while it streams stops its sender, and nothing of it is left', async () => {
    let ready: ReadyDrop | undefined;
    const waits: string[] = [];
    const sending = sendDrop(small.url, new Blob([randomBytes(12 * MIB)]), {
      onReady: (drop) => {
        ready = drop;
      },
      onWait: (wait) => waits.push(wait.reason),
    }).catch((error: unknown) => error);
    await waitFor(() => waits.includes('receiver'), 'the room to fill');
    await revokeDrop(ready as ReadyDrop);
    expect(await sending).toMatchObject({
      code: 'gone',
      message: expect.stringContaining('was revoked or expired'),
    });
    const pub = (ready as ReadyDrop).publicKey;
    expect(await small.store.readValue(pub)).toBeUndefined();
    expect(await small.store.blobBytes(pub)).toBe(0);
  });

  it('a failed upload removes everything it wrote', async () => {
    const stop = new AbortController();
    let ready: ReadyDrop | undefined;
    const failed = await sendDrop(small.url, new Blob([randomBytes(10 * MIB)]), {
      signal: stop.signal,
      onReady: (drop) => {
        ready = drop;
      },
      onProgress: (sent) => {
        if (sent >= 2 * MIB) stop.abort();
      },
    }).catch((error: unknown) => error);
    expect((failed as Error).name).toBe('AbortError');
    const pub = (ready as ReadyDrop).publicKey;
    expect(await small.store.readValue(pub)).toBeUndefined();
    expect(await small.store.fieldTtl(pub, 'k')).toBe(0);
    expect(await small.store.blobBytes(pub)).toBe(0);
    await expect(openDrop((ready as ReadyDrop).link)).rejects.toMatchObject({ code: 'gone' });
  });
});

describe('the live lane: chunks stream through the pipe while both ends are online', () => {
  /** A relay whose key pairs hold 4 chunks, and what it was asked: chunks stored, pipes opened. */
  let watched: DropRelay;
  const stored: string[] = [];
  const pipes: string[] = [];
  beforeAll(async () => {
    watched = await openDropRelay('sqlite', {
      keyQuota: 4 * MIB,
      onRequest: (req) => {
        if (req.method === 'POST' && /^\/private\/[^/]+\/c\d+$/.test(req.path)) stored.push(req.path);
        if (req.path.startsWith('/pipe/')) pipes.push(req.method);
      },
    });
  });
  afterAll(() => watched.close());

  /** The relay's pipe as the CLI passes it, counting the bytes each stream brings the receiver. */
  function countingPipe() {
    const pipe = createDropPipe(() => watched.url);
    const streamed: number[] = [];
    return {
      streamed,
      pipe: {
        send: pipe.send,
        async receive(key: string, signal?: AbortSignal) {
          const body = await pipe.receive(key, signal);
          const at = streamed.push(0) - 1;
          return (async function* () {
            for await (const piece of body as AsyncIterable<Uint8Array>) {
              streamed[at] = (streamed[at] as number) + piece.length;
              yield piece;
            }
          })();
        },
      },
    };
  }

  /** Starts sending `bytes` with the lane, as the CLI does. */
  const sendLive = (bytes: Uint8Array, options: SendDropOptions = {}) =>
    startSend(watched.url, bytes, {
      cipher: nativeSuite,
      pipe: createDropPipe(() => watched.url),
      ...options,
    });

  it('a drop many times the room streams whole, storing no more than the room, and nothing is left', async () => {
    const bytes = randomBytes(24 * MIB + 5);
    stored.length = 0;
    pipes.length = 0;
    const { sending, ready } = await sendLive(bytes);
    const receiver = countingPipe();
    const { bytes: received, sha256: verified } = await fetchAll(ready.link, {
      cipher: nativeSuite,
      pipe: receiver.pipe,
    });
    await sending;
    expect(received.equals(bytes)).toBe(true);
    expect(verified).toBe(sha256(bytes));
    // The room (3 chunks: one of the 4 holds the lane) was stored before the receiver came and asked; the other
    // chunks came through one stream, sealed as the store holds them, after its head (id, first index).
    expect(stored.length).toBeLessThanOrEqual(3);
    const chunks = Math.ceil(bytes.length / DROP_CHUNK_SIZE);
    const streamedChunks = chunks - stored.length;
    expect(receiver.streamed).toEqual([
      bytes.length - stored.length * DROP_CHUNK_SIZE + streamedChunks * 40 + 20,
    ]);
    expect(pipes).toEqual(expect.arrayContaining(['GET', 'POST']));
    expect(await watched.store.blobBytes(ready.publicKey)).toBe(0);
    expect(await watched.store.fieldTtl(ready.publicKey, 'l')).toBe(0);
    expect(await dropStatus(ready)).toMatchObject({ state: 'fetched' });
  });

  it('a fetch broken mid-stream resumes from what it kept: the stream starts there, and the bytes are equal', async () => {
    const bytes = randomBytes(16 * DROP_CHUNK_SIZE + 77);
    const { sending, ready } = await sendLive(bytes);
    const first = memorySink();
    const broken = failingAt(first.sink, 9, 'disk unplugged');
    const firstPipe = countingPipe();
    const drop = await openDrop(ready.link, { cipher: nativeSuite, pipe: firstPipe.pipe });
    await expect(drop.fetchInto(broken)).rejects.toThrow('disk unplugged');
    expect(first.chunks.length).toBe(9);
    expect(firstPipe.streamed.length).toBe(1);

    const kept = first.chunks.slice();
    const again = resumeFrom(first, kept);
    const secondPipe = countingPipe();
    const resumed = await openDrop(ready.link, { cipher: nativeSuite, pipe: secondPipe.pipe });
    const { sha256: verified } = await resumed.fetchInto(again.sink);
    await sending; // the sender stayed until the receiver had all of it
    expect(verified).toBe(sha256(bytes));
    expect(Buffer.concat([...kept, ...again.chunks]).equals(bytes)).toBe(true);
    // Chunks 9 to 16 and the stream's head (id, first index): nothing the first fetch kept came again.
    const rest = bytes.length - 9 * DROP_CHUNK_SIZE + 8 * 40 + 20;
    expect(secondPipe.streamed).toEqual([rest]);
    expect(await watched.store.blobBytes(ready.publicKey)).toBe(0);
  });

  it('a resumed fetch that lost chunks it had taken from the store gets them from the stream', async () => {
    const bytes = randomBytes(8 * DROP_CHUNK_SIZE + 9);
    stored.length = 0;
    const { sending, ready } = await sendLive(bytes);
    await waitFor(() => stored.length >= 3, 'the room to fill');
    const first = memorySink();
    const drop = await openDrop(ready.link, { cipher: nativeSuite, pipe: countingPipe().pipe });
    const broken = failingAt(first.sink, 5, 'power cut');
    await expect(drop.fetchInto(broken)).rejects.toThrow('power cut');
    // Chunks 0 to 2 came from the store, which deleted them once saved; the disk kept only chunk 0.
    const kept = first.chunks.slice(0, 1);
    const again = resumeFrom(first, kept);
    const pipe = countingPipe();
    const { sha256: verified } = await (
      await openDrop(ready.link, { cipher: nativeSuite, pipe: pipe.pipe })
    ).fetchInto(again.sink);
    await sending;
    expect(verified).toBe(sha256(bytes));
    expect(Buffer.concat([...kept, ...again.chunks]).equals(bytes)).toBe(true);
    expect(pipe.streamed).toEqual([bytes.length - DROP_CHUNK_SIZE + 8 * 40 + 20]);
  });

  it('either end without a pipe (the page) uses the store, and a drop within the room waits for a later receiver', async () => {
    // A sender without the lane, a receiver with it.
    const big = randomBytes(10 * MIB);
    const { sending, ready } = await startSend(watched.url, big);
    const receiver = countingPipe();
    expect((await fetchAll(ready.link, { pipe: receiver.pipe })).bytes.equals(big)).toBe(true);
    await sending;
    expect(receiver.streamed).toEqual([]);

    // A sender with the lane, a receiver without it.
    const live = await sendLive(big);
    expect((await fetchAll(live.ready.link)).bytes.equals(big)).toBe(true);
    await live.sending;

    // Within the room, the sender with the lane uploads it all and is done before anyone fetches.
    const small = randomBytes(2 * MIB);
    const sent = await sendDrop(watched.url, new Blob([small]), { pipe: createDropPipe(() => watched.url) });
    const later = countingPipe();
    expect((await fetchAll(sent.link, { pipe: later.pipe })).bytes.equals(small)).toBe(true);
    expect(later.streamed).toEqual([]);
  });

  it('a relay whose pipe refuses (none there, a buffering proxy) gets the drop through the store', async () => {
    /** The relay's pipe as a serverless relay answers it: 404 at once. */
    const refusing = (refusals: string[]) => {
      const refuse = async (method: string) => {
        refusals.push(method);
        throw new DeadropError(404, 'Not Found', method, `${watched.url}/pipe/…`);
      };
      return { send: () => refuse('POST'), receive: () => refuse('GET') };
    };
    const bytes = randomBytes(12 * MIB + 1);
    // Both ends refused: each gives the lane up after three refusals.
    const refusals: string[] = [];
    const both = await sendLive(bytes, { pipe: refusing(refusals) });
    const { bytes: received } = await fetchAll(both.ready.link, { pipe: refusing(refusals) });
    await both.sending;
    expect(received.equals(bytes)).toBe(true);
    expect(refusals.filter((method) => method === 'GET')).toHaveLength(3);

    // Only the receiver's side refused: it tells the sender, which stores the rest once its stream gives up.
    const quick = await openDropRelay('sqlite', { keyQuota: 4 * MIB, config: { pipeTtlSeconds: 1 } });
    try {
      const { sending, ready } = await startSend(quick.url, bytes, { pipe: createDropPipe(() => quick.url) });
      const { bytes: again } = await fetchAll(ready.link, { pipe: refusing([]) });
      await sending;
      expect(again.equals(bytes)).toBe(true);
      expect(await quick.store.blobBytes(ready.publicKey)).toBe(0);
    } finally {
      await quick.close();
    }
  });

  it('a relay with room for one chunk only takes a drop without the lane', async () => {
    const tiny = await openDropRelay('sqlite', { keyQuota: MIB + 4096 });
    try {
      const bytes = randomBytes(3 * MIB);
      const { sending, ready } = await startSend(tiny.url, bytes, { pipe: createDropPipe(() => tiny.url) });
      expect(ready.offlineLimit).toBe(DROP_CHUNK_SIZE);
      const receiver = countingPipe();
      expect((await fetchAll(ready.link, { pipe: receiver.pipe })).bytes.equals(bytes)).toBe(true);
      await sending;
      expect(receiver.streamed).toEqual([]);
    } finally {
      await tiny.close();
    }
  });

  it('a drop revoked while its sender waits on the lane stops the sender, and nothing of it is left', async () => {
    const { sending, ready } = await sendLive(randomBytes(12 * MIB));
    const stop = new AbortController();
    const drop = await openDrop(ready.link, { cipher: nativeSuite, pipe: countingPipe().pipe });
    const fetching = drop
      .fetchInto(
        {
          ...memorySink().sink,
          write: async (index) => {
            if (index === 6) stop.abort();
          },
        },
        { signal: stop.signal },
      )
      .catch((error: unknown) => error);
    expect(await fetching).toBeInstanceOf(Error);
    await revokeDrop(ready);
    expect(await sending.catch((error: unknown) => error)).toMatchObject({ code: 'gone' });
    expect(await watched.store.readValue(ready.publicKey)).toBeUndefined();
    expect(await watched.store.fieldTtl(ready.publicKey, 'l')).toBe(0);
    expect(await watched.store.blobBytes(ready.publicKey)).toBe(0);
  });
});

describe('a chunk that was changed is detected before anything wrong is kept', () => {
  /** Sends 3 chunks, lets `tamper` change them, and fetches the drop: what was saved before the error, and the error. */
  async function tampered(tamper: (drop: SentDrop, raw: ReturnType<typeof parts>) => Promise<void>) {
    const bytes = randomBytes(3 * DROP_CHUNK_SIZE - 10);
    const sent = await send(bytes);
    await tamper(sent, parts(sent));
    const drop = await openDrop(sent.link);
    const { sink, chunks } = memorySink();
    const error = await drop.fetchInto(sink).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    return { error: error as DropError, received: Buffer.concat(chunks), bytes };
  }

  it('a flipped bit', async () => {
    const { error, received } = await tampered(async (_drop, raw) => {
      const chunk = await raw.read('c1');
      chunk[1000] = (chunk[1000] as number) ^ 1;
      await raw.put('c1', chunk);
    });
    expect(error).toMatchObject({
      code: 'tampered',
      message: expect.stringContaining('Chunk 2 of 3 does not open'),
    });
    expect(received.length).toBe(DROP_CHUNK_SIZE);
  });

  it('two chunks swapped', async () => {
    const { error } = await tampered(async (_drop, raw) => {
      const [first, second] = [await raw.read('c0'), await raw.read('c1')];
      await raw.put('c0', second);
      await raw.put('c1', first);
    });
    expect(error).toMatchObject({ code: 'tampered', message: expect.stringContaining('Chunk 1 of 3') });
  });

  it('a chunk from another drop under the same key pair position', async () => {
    const other = await send(randomBytes(3 * DROP_CHUNK_SIZE - 10));
    const foreign = await parts(other).read('c2');
    const { error } = await tampered(async (_drop, raw) => {
      await raw.put('c2', foreign);
    });
    expect(error).toMatchObject({ code: 'tampered', message: expect.stringContaining('Chunk 3 of 3') });
  });

  it('a missing chunk', async () => {
    const { error } = await tampered(async (_drop, raw) => {
      await raw.remove('c1');
    });
    expect(error).toMatchObject({
      code: 'missing',
      message: expect.stringContaining('Part 2 of 3 is no longer on the relay'),
    });
  });

  it('a truncated last chunk', async () => {
    const { error, received } = await tampered(async (_drop, raw) => {
      const chunk = await raw.read('c2');
      await raw.put('c2', chunk.subarray(0, chunk.length - 100));
    });
    expect(error).toMatchObject({ code: 'tampered', message: expect.stringContaining('Chunk 3 of 3') });
    expect(received.length).toBe(2 * DROP_CHUNK_SIZE);
  });

  it('a record whose manifest does not open', async () => {
    const sent = await send(randomBytes(10));
    const record = await (await fetch(`${relay.url}/public/${sent.publicKey}`)).json();
    record.manifest.ct = `${record.manifest.ct.slice(0, -2)}AA`;
    await fetch(`${relay.url}/private/${sent.privateKey}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(record),
    });
    await expect(openDrop(sent.link)).rejects.toMatchObject({ code: 'tampered' });
  });
});

describe('a password', () => {
  it('is needed, a wrong one burns nothing, and the right one opens the drop', async () => {
    const bytes = randomBytes(5000);
    const sent = await send(bytes, { password: 'correct horse', argon2: FAST_ARGON2 });
    expect(await dropNeedsPassword(sent.link)).toBe(true);
    await expect(openDrop(sent.link)).rejects.toMatchObject({ code: 'password_required' });
    await expect(openDrop(sent.link, { password: 'wrong' })).rejects.toMatchObject({
      code: 'wrong_password',
    });
    expect((await dropStatus(sent)).state).toBe('waiting');
    expect((await fetchAll(sent.link, { password: 'correct horse' })).bytes.equals(bytes)).toBe(true);
  });

  it('a drop without one says so without burning anything', async () => {
    const sent = await send(randomBytes(10));
    expect(await dropNeedsPassword(sent.link)).toBe(false);
    expect((await dropStatus(sent)).state).toBe('waiting');
  });
});

describe("the relay's store", () => {
  it('holds no plaintext, no key, no file name and no password, before or after the fetch', async () => {
    const marker = Buffer.from('PLAINTEXT-MARKER-0123456789-abcdefghijklmnopqrstuvwxyz-');
    const bytes = Buffer.concat(Array.from({ length: Math.ceil((2 * MIB) / marker.length) }, () => marker));
    const name = 'secret-plans-for-the-heist.txt';
    const password = 'hunter2-but-longer';
    const sent = await send(bytes, { name, password, argon2: FAST_ARGON2 });
    const key = parseDropLink(sent.link).key;
    const needles = [marker.subarray(0, 24), Buffer.from(key), Buffer.from(name), Buffer.from(password)];

    /** Every byte of the SQLite files, and every base64 or base64url run in them decoded. */
    const storeBytes = async () => {
      const files = (await readdir(dataDir)).filter((file) => file.startsWith(SQLITE_FILE));
      const raw = Buffer.concat(await Promise.all(files.map((file) => readFile(join(dataDir, file)))));
      const text = raw.toString('latin1');
      const decoded = [...text.matchAll(/[A-Za-z0-9+/_-]{16,}/g)].flatMap(([run]) =>
        [0, 1, 2, 3].map((shift) =>
          Buffer.from(run.slice(shift), run.includes('_') || run.includes('-') ? 'base64url' : 'base64'),
        ),
      );
      return [raw, ...decoded];
    };
    const check = async () => {
      const haystacks = await storeBytes();
      expect(haystacks[0]?.length).toBeGreaterThan(2 * MIB);
      for (const needle of needles) {
        for (const haystack of haystacks) expect(haystack.includes(needle)).toBe(false);
      }
    };

    await check();
    expect((await fetchAll(sent.link, { password })).bytes.equals(bytes)).toBe(true);
    await check();
  });
});

/** Runs `deadrop drop <args>` in this process with captured output. */
async function cli(
  args: string[],
  options: { env?: Record<string, string>; stdin?: string; cwd?: string } = {},
) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: string[] = [];
  const err: string[] = [];
  stdout.on('data', (chunk) => out.push(String(chunk)));
  stderr.on('data', (chunk) => err.push(String(chunk)));
  const io: DropIo = {
    stdin: Readable.from([options.stdin ?? '']),
    stdout,
    stderr,
    env: { DEADROP_URL: relay.url, ...options.env },
    cwd: options.cwd ?? work,
  };
  const code = await runDropCommand(args, io);
  return { code, stdout: out.join(''), stderr: err.join('') };
}

describe('deadrop drop (CLI)', () => {
  it('send prints only the link on stdout; get saves the file under its name, verified', async () => {
    const bytes = randomBytes(3 * MIB + 7);
    const dir = await mkdtemp(join(work, 'send-'));
    await writeFile(join(dir, 'report.pdf'), bytes);
    const sent = await cli(['send', 'report.pdf'], { cwd: dir });
    expect(sent.code).toBe(0);
    expect(sent.stdout).toMatch(new RegExp(`^${relay.url}/drop#[\\w-]{32}\\.[\\w-]{43}\\n$`));
    expect(sent.stderr).toContain('Sender token');

    const into = await mkdtemp(join(work, 'get-'));
    const got = await cli(['get', sent.stdout.trim()], { cwd: into });
    expect(got.code).toBe(0);
    expect(got.stdout.trim()).toBe(join(into, 'report.pdf'));
    expect(sha256(await readFile(join(into, 'report.pdf')))).toBe(sha256(bytes));

    const again = await cli(['get', sent.stdout.trim(), '-o', join(into, 'second.pdf')]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^deadrop: This drop was already fetched, at .*: it opens once\./);
    expect(await readdir(into)).toEqual(['report.pdf']);
  });

  it('get saves nothing under the name when a chunk does not verify, and keeps what verified to try again', async () => {
    const bytes = randomBytes(3 * MIB);
    const sent = await send(bytes);
    const good = await parts(sent).read('c2');
    const bad = Uint8Array.from(good);
    bad[50] = (bad[50] as number) ^ 0xff;
    await parts(sent).put('c2', bad);
    const into = await mkdtemp(join(work, 'tampered-'));
    const got = await cli(['get', sent.link, '-o', 'out.bin'], { cwd: into });
    expect(got.code).toBe(1);
    expect(got.stderr).toContain('Chunk 3 of 4 does not open');
    expect(got.stderr).toContain('run the same command again');
    const { publicKey } = parseDropLink(sent.link);
    expect((await readdir(into)).sort()).toEqual([`.deadrop-${publicKey}.key`, `.deadrop-${publicKey}.part`]);
    // A chunk garbled on the way is read again: the drop is not lost for it.
    await parts(sent).put('c2', good);
    const again = await cli(['get', sent.link, '-o', 'out.bin'], { cwd: into });
    expect(again.code).toBe(0);
    expect((await readFile(join(into, 'out.bin'))).equals(bytes)).toBe(true);
    expect(await readdir(into)).toEqual(['out.bin']);
  });

  it('a password from stdin protects the drop; get reads it from $DEADROP_PASSWORD', async () => {
    const dir = await mkdtemp(join(work, 'password-'));
    await writeFile(join(dir, 'note.txt'), 'meet at noon');
    const sent = await cli(['send', 'note.txt', '--password'], { cwd: dir, stdin: 'open sesame\n' });
    expect(sent.code).toBe(0);
    const link = sent.stdout.trim();
    const wrong = await cli(['get', link, '-o', join(dir, 'x')], { env: { DEADROP_PASSWORD: 'nope' } });
    expect(wrong).toMatchObject({ code: 1, stderr: expect.stringContaining('The password is wrong') });
    const got = await cli(['get', link, '-o', join(dir, 'got.txt')], {
      env: { DEADROP_PASSWORD: 'open sesame' },
    });
    expect(got.code).toBe(0);
    expect(await readFile(join(dir, 'got.txt'), 'utf8')).toBe('meet at noon');
  });

  it('status and revoke take the sender token that send printed', async () => {
    const dir = await mkdtemp(join(work, 'revoke-'));
    await writeFile(join(dir, 'a.bin'), randomBytes(10));
    const sent = await cli(['send', 'a.bin'], { cwd: dir });
    expect(sent).toMatchObject({ code: 0, stderr: expect.stringContaining('Sender token') });
    const token = /Sender token[^:]*: (\S+)/.exec(sent.stderr)?.[1] as string;
    // The whole answer, so that a failure shows what the command said on stderr.
    expect(await cli(['status', token])).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/^Not fetched yet; it expires in \d+ s\.\n$/),
    });
    expect((await cli(['revoke', token])).code).toBe(0);
    expect((await cli(['status', token])).stdout).toBe('Gone: revoked or expired (or its upload failed).\n');
    expect((await cli(['get', sent.stdout.trim()])).code).toBe(1);
  });

  it('explains itself, and usage errors exit 2', async () => {
    expect(await cli(['--help'])).toMatchObject({
      code: 0,
      stdout: expect.stringContaining('deadrop drop <command>'),
    });
    expect((await cli(['send', '--help'])).code).toBe(0);
    expect((await cli([])).code).toBe(2);
    expect((await cli(['launch'])).stderr).toContain('unknown drop command');
    expect((await cli(['send'])).code).toBe(2);
    expect((await cli(['send', 'a', '--bogus'])).code).toBe(2);
    expect(await cli(['get', 'https://relay.example/nope'])).toMatchObject({
      code: 1,
      stderr: expect.stringContaining('not a drop link'),
    });
    expect((await cli(['send', 'does-not-exist.bin'])).stderr).toBe(
      `deadrop: There is no file or folder to send at ${join(work, 'does-not-exist.bin')}.\n`,
    );
  });
});
