// The store contract: one suite that every adapter (memory, SQLite, Redis) must pass, atomicity included.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FieldLimits, Store } from '../src/store/store.js';

const DAY = 86_400_000;
/** A random public key per test, so suites sharing one Redis never collide. */
const pub = () => randomBytes(24).toString('base64url');
const item = (n: number) => JSON.stringify({ n });
const fields = (maxFields: number, blobQuota = 1 << 30): FieldLimits => ({ maxFields, blobQuota });
const bytes = (size: number, fill = 7) => new Uint8Array(size).fill(fill);
const RACERS = 50;

/** A store under test, and how to move its clock forward. */
export interface ContractFixture {
  store: Store;
  /** Moves the store's clock `ms` forward (or waits until its own clock has moved that far). */
  elapse: (ms: number) => Promise<void>;
  dispose: () => Promise<void>;
}

/** Runs the contract against the store `open` returns. */
export function storeContract(name: string, open: () => Promise<ContractFixture>) {
  describe(`store contract: ${name}`, () => {
    let store: Store;
    let elapse: ContractFixture['elapse'];
    let dispose: () => Promise<void>;
    beforeAll(async () => {
      ({ store, elapse, dispose } = await open());
    });
    afterAll(() => dispose());

    describe('aggregator queue', () => {
      it('drains every item oldest first, then is empty', async () => {
        const key = pub();
        for (let n = 0; n < 5; n++) expect(await store.appendToQueue(key, item(n), DAY, 10)).toBe('stored');
        expect(await store.drainQueue(key)).toEqual([0, 1, 2, 3, 4].map(item));
        expect(await store.drainQueue(key)).toEqual([]);
      });

      it('keeps items as given, byte for byte', async () => {
        const key = pub();
        const text = '{"big":12345678901234567890,"s":"é\\u0000 ✓"}';
        await store.appendToQueue(key, text, DAY, 10);
        await store.appendToQueue(key, '12', DAY, 10);
        expect(await store.drainQueue(key)).toEqual([text, '12']);
      });

      it('refuses an item over the bound and drops nothing already queued', async () => {
        const key = pub();
        for (let n = 0; n < 3; n++) expect(await store.appendToQueue(key, item(n), DAY, 3)).toBe('stored');
        expect(await store.appendToQueue(key, item(3), DAY, 3)).toEqual({ refused: 'queue_full' });
        expect(await store.drainQueue(key)).toEqual([0, 1, 2].map(item));
        expect(await store.appendToQueue(key, item(4), DAY, 3)).toBe('stored');
      });

      it('frees room in the bound as items expire', async () => {
        const key = pub();
        await store.appendToQueue(key, item(0), 100, 2);
        await store.appendToQueue(key, item(1), 100, 2);
        await elapse(150);
        expect(await store.appendToQueue(key, item(2), DAY, 2)).toBe('stored');
        expect(await store.drainQueue(key)).toEqual([item(2)]);
      });

      it('neither drains nor counts expired items', async () => {
        const key = pub();
        await store.appendToQueue(key, item(0), 100, 10);
        await elapse(150);
        await store.appendToQueue(key, item(1), DAY, 10);
        expect(await store.queueStats(key)).toEqual({ count: 1, ttlMs: expect.any(Number) });
        expect(await store.drainQueue(key)).toEqual([item(1)]);
      });

      it('reports the count and the time left of the newest item', async () => {
        const key = pub();
        expect(await store.queueStats(key)).toEqual({ count: 0, ttlMs: 0 });
        await store.appendToQueue(key, item(0), 10_000, 10);
        await store.appendToQueue(key, item(1), 20_000, 10);
        const stats = await store.queueStats(key);
        expect(stats.count).toBe(2);
        expect(stats.ttlMs).toBeGreaterThan(18_000);
        expect(stats.ttlMs).toBeLessThanOrEqual(20_000);
        await store.drainQueue(key);
        expect(await store.queueStats(key)).toEqual({ count: 0, ttlMs: 0 });
      });

      it('keeps the queues of two key pairs apart', async () => {
        const [a, b] = [pub(), pub()];
        await store.appendToQueue(a, item(1), DAY, 10);
        await store.appendToQueue(b, item(2), DAY, 10);
        expect(await store.drainQueue(a)).toEqual([item(1)]);
        expect(await store.drainQueue(b)).toEqual([item(2)]);
      });
    });

    describe(`atomicity under ${RACERS} concurrent callers`, () => {
      it('appends: exactly the bound is stored, and drains racing with them lose and repeat nothing', async () => {
        const key = pub();
        const drained: string[] = [];
        const appends = Array.from({ length: RACERS * 4 }, (_, n) =>
          store.appendToQueue(key, item(n), DAY, 150),
        );
        const drains = Array.from({ length: RACERS }, async () =>
          drained.push(...(await store.drainQueue(key))),
        );
        const results = await Promise.all(appends);
        await Promise.all(drains);
        drained.push(...(await store.drainQueue(key)));
        const stored = results.flatMap((result, n) => (result === 'stored' ? [n] : []));
        expect(drained.map((text) => JSON.parse(text).n).sort((x, y) => x - y)).toEqual(stored);
        expect(stored.length).toBeGreaterThanOrEqual(150);
      });

      it('appends to a bound: exactly `max` of them are stored', async () => {
        const key = pub();
        const results = await Promise.all(
          Array.from({ length: RACERS }, (_, n) => store.appendToQueue(key, item(n), DAY, 20)),
        );
        expect(results.filter((result) => result === 'stored')).toHaveLength(20);
        expect(await store.drainQueue(key)).toHaveLength(20);
      });

      it('one-to-one: one value, fifty readers, one of them gets it', async () => {
        const key = pub();
        await store.putField(key, 'a', '"x"', DAY, fields(10));
        const takes = await Promise.all(Array.from({ length: RACERS }, () => store.takeField(key, 'a')));
        expect(takes.filter((value) => value !== undefined)).toEqual(['"x"']);
      });

      it('one-to-one: fifty writers to distinct uids, exactly maxFields stored', async () => {
        const key = pub();
        const results = await Promise.all(
          Array.from({ length: RACERS }, (_, n) => store.putField(key, `u${n}`, item(n), DAY, fields(17))),
        );
        expect(results.filter((result) => result === 'stored')).toHaveLength(17);
        expect(results.filter((result) => result !== 'stored')).toEqual(
          Array(RACERS - 17).fill({ refused: 'fields_full' }),
        );
      });

      it('blobs: fifty writers against a byte quota, never more than the quota stored', async () => {
        const key = pub();
        const results = await Promise.all(
          Array.from({ length: RACERS }, (_, n) =>
            store.putField(key, `b${n}`, bytes(1000), DAY, fields(100, 10_500)),
          ),
        );
        expect(results.filter((result) => result === 'stored')).toHaveLength(10);
        expect(await store.blobBytes(key)).toBe(10_000);
      });

      it('live stream: moves racing with appends give each item one id, once', async () => {
        const key = pub();
        const moved: { id: number; item: string }[] = [];
        const appends = Array.from({ length: RACERS * 2 }, (_, n) =>
          store.appendToQueue(key, item(n), DAY, 1000),
        );
        const moves = Array.from({ length: RACERS }, async () =>
          moved.push(...(await store.moveToLog(key, DAY, 1000))),
        );
        await Promise.all([...appends, ...moves]);
        moved.push(...(await store.moveToLog(key, DAY, 1000)));
        expect(moved.map((entry) => JSON.parse(entry.item).n).sort((x, y) => x - y)).toEqual(
          Array.from({ length: RACERS * 2 }, (_, n) => n),
        );
        expect(new Set(moved.map((entry) => entry.id)).size).toBe(RACERS * 2);
      });

      it('published value: fifty publishers, the value is one of theirs, whole', async () => {
        const key = pub();
        await Promise.all(Array.from({ length: RACERS }, (_, n) => store.publishValue(key, item(n), DAY)));
        expect(JSON.parse((await store.readValue(key)) as string).n).toBeLessThan(RACERS);
      });
    });

    describe('delivery log (live streams)', () => {
      it('moves queued items into the log with growing ids, and replays what was not acknowledged', async () => {
        const key = pub();
        expect(await store.moveToLog(key, DAY, 100)).toEqual([]);
        for (let n = 0; n < 3; n++) await store.appendToQueue(key, item(n), DAY, 10);
        const first = await store.moveToLog(key, DAY, 100);
        expect(first.map((entry) => entry.item)).toEqual([0, 1, 2].map(item));
        expect(first[1]?.id).toBe((first[0]?.id as number) + 1);
        expect(await store.drainQueue(key)).toEqual([]);
        await store.appendToQueue(key, item(3), DAY, 10);
        const second = await store.moveToLog(key, DAY, 100);
        expect(second[0]?.id).toBeGreaterThan(first[2]?.id as number);
        expect(await store.readLog(key, first[0]?.id as number)).toEqual([...first.slice(1), ...second]);
        expect(await store.readLog(key, second[0]?.id as number)).toEqual([]);
      });

      it('keeps only the newest entries past its bound', async () => {
        const key = pub();
        for (let n = 0; n < 5; n++) await store.appendToQueue(key, item(n), DAY, 10);
        const moved = await store.moveToLog(key, DAY, 2);
        expect(moved.map((entry) => entry.item)).toEqual([item(3), item(4)]);
        expect(await store.readLog(key, 0)).toEqual(moved);
      });

      it('lets sent items go once the resume window has passed', async () => {
        const key = pub();
        await store.appendToQueue(key, item(0), DAY, 10);
        const sent = await store.moveToLog(key, 100, 10);
        expect(await store.readLog(key, 0)).toEqual(sent);
        await elapse(150);
        expect(await store.readLog(key, 0)).toEqual([]);
      });

      it('starts a new log with ids above those of an expired one', async () => {
        const key = pub();
        await store.appendToQueue(key, item(0), DAY, 10);
        const [old] = await store.moveToLog(key, 100, 10);
        await elapse(150);
        expect(await store.readLog(key, 0)).toEqual([]);
        await store.appendToQueue(key, item(1), DAY, 10);
        const [fresh] = await store.moveToLog(key, DAY, 10);
        expect(fresh?.id).toBeGreaterThan(old?.id as number);
      });
    });

    describe('webhook record', () => {
      it('stops appendUnlessHooked, which hands it over instead of queueing', async () => {
        const key = pub();
        expect(await store.appendUnlessHooked(key, item(0), DAY, 1)).toBe('stored');
        expect(await store.appendUnlessHooked(key, item(1), DAY, 1)).toEqual({ refused: 'queue_full' });
        await store.setHook(key, 'sealed-record', DAY);
        expect(await store.appendUnlessHooked(key, item(2), DAY, 1)).toEqual({ hook: 'sealed-record' });
        expect(await store.drainQueue(key)).toEqual([item(0)]);
      });

      it('is kept, read, forgotten, and expires', async () => {
        const key = pub();
        expect(await store.getHook(key)).toBeUndefined();
        await store.setHook(key, 'sealed-record', DAY);
        expect(await store.getHook(key)).toBe('sealed-record');
        await store.deleteHook(key);
        expect(await store.getHook(key)).toBeUndefined();
        await store.setHook(key, 'short', 100);
        await elapse(150);
        expect(await store.getHook(key)).toBeUndefined();
      });
    });

    describe('published value', () => {
      it('is read any number of times, replaced, then deleted', async () => {
        const key = pub();
        expect(await store.readValue(key)).toBeUndefined();
        expect(await store.publishValue(key, '"one"', DAY)).toBe('stored');
        expect(await store.readValue(key)).toBe('"one"');
        expect(await store.readValue(key)).toBe('"one"');
        await store.publishValue(key, '"two"', DAY);
        expect(await store.readValue(key)).toBe('"two"');
        await store.deleteValue(key);
        expect(await store.readValue(key)).toBeUndefined();
        expect(await store.valueTtl(key)).toBe(0);
      });

      it('keeps text that looks like a number as text', async () => {
        const key = pub();
        await store.publishValue(key, '0012', DAY);
        expect(await store.readValue(key)).toBe('0012');
      });

      it('expires after its TTL', async () => {
        const key = pub();
        await store.publishValue(key, '1', 100);
        expect(await store.valueTtl(key)).toBeGreaterThan(0);
        await elapse(150);
        expect(await store.readValue(key)).toBeUndefined();
        expect(await store.valueTtl(key)).toBe(0);
      });

      it('renews its TTL, and says so only when there is a value', async () => {
        const key = pub();
        expect(await store.renewValue(key, DAY)).toBe(false);
        await store.publishValue(key, '1', 100);
        expect(await store.renewValue(key, 10_000)).toBe(true);
        await elapse(150);
        expect(await store.readValue(key)).toBe('1');
        expect(await store.valueTtl(key)).toBeGreaterThan(9000);
      });
    });

    describe('one-to-one fields', () => {
      it('gives a value to one reader only', async () => {
        const key = pub();
        expect(await store.putField(key, 'a', '"x"', DAY, fields(10))).toBe('stored');
        expect(await store.fieldTtl(key, 'a')).toBeGreaterThan(DAY - 5000);
        expect(await store.takeField(key, 'a')).toBe('"x"');
        expect(await store.takeField(key, 'a')).toBeUndefined();
        expect(await store.fieldTtl(key, 'a')).toBe(0);
      });

      it('lets its owner read a value, JSON or blob, as often as needed, until one reader takes it', async () => {
        const key = pub();
        const blob = Uint8Array.from([0, 1, 2, 255]);
        expect(await store.readField(key, 'a')).toBeUndefined();
        await store.putField(key, 'a', '"x"', DAY, fields(10));
        await store.putField(key, 'b', blob, DAY, fields(10, 100));
        expect(await store.readField(key, 'a')).toBe('"x"');
        expect(await store.readField(key, 'a')).toBe('"x"');
        expect(Buffer.from((await store.readField(key, 'b')) as Uint8Array)).toEqual(Buffer.from(blob));
        expect(await store.blobBytes(key)).toBe(4);
        expect(await store.takeField(key, 'a')).toBe('"x"');
        expect(await store.readField(key, 'a')).toBeUndefined();
        await store.deleteField(key, 'b');
        expect(await store.readField(key, 'b')).toBeUndefined();
      });

      it('bounds the number of uids, counting a replaced uid once and freeing a read one', async () => {
        const key = pub();
        expect(await store.putField(key, 'a', '1', DAY, fields(2))).toBe('stored');
        expect(await store.putField(key, 'b', '2', DAY, fields(2))).toBe('stored');
        expect(await store.putField(key, 'a', '3', DAY, fields(2))).toBe('stored');
        expect(await store.putField(key, 'c', '4', DAY, fields(2))).toEqual({ refused: 'fields_full' });
        expect(await store.takeField(key, 'c')).toBeUndefined();
        expect(await store.takeField(key, 'a')).toBe('3');
        expect(await store.putField(key, 'c', '4', DAY, fields(2))).toBe('stored');
        await store.deleteField(key, 'b');
        expect(await store.takeField(key, 'b')).toBeUndefined();
        expect(await store.putField(key, 'd', '5', DAY, fields(2))).toBe('stored');
      });

      it('accepts uids that are property names elsewhere', async () => {
        const key = pub();
        for (const uid of ['__proto__', 'constructor', 'toString']) {
          expect(await store.putField(key, uid, '1', DAY, fields(10))).toBe('stored');
        }
        expect(await store.takeField(key, '__proto__')).toBe('1');
        expect(await store.takeField(key, 'constructor')).toBe('1');
      });

      it('expires after its TTL and frees its place', async () => {
        const key = pub();
        await store.putField(key, 'a', '1', 100, fields(1));
        expect(await store.putField(key, 'b', '1', DAY, fields(1))).toEqual({ refused: 'fields_full' });
        await elapse(150);
        expect(await store.readField(key, 'a')).toBeUndefined();
        expect(await store.takeField(key, 'a')).toBeUndefined();
        expect(await store.putField(key, 'b', '2', DAY, fields(1))).toBe('stored');
      });
    });

    describe('blobs', () => {
      it('come back as the same bytes, and JSON as text', async () => {
        const key = pub();
        const blob = new Uint8Array(randomBytes(70_000));
        blob[0] = 0x6a; // the first byte of a JSON mark must not confuse any adapter
        await store.putField(key, 'b', blob, DAY, fields(10));
        await store.putField(key, 'j', '"b"', DAY, fields(10));
        const back = await store.takeField(key, 'b');
        expect(back).toBeInstanceOf(Uint8Array);
        expect(Buffer.compare(Buffer.from(back as Uint8Array), Buffer.from(blob))).toBe(0);
        expect(await store.takeField(key, 'j')).toBe('"b"');
        expect(await store.putField(key, 'e', new Uint8Array(0), DAY, fields(10))).toBe('stored');
        expect((await store.takeField(key, 'e')) as Uint8Array).toHaveLength(0);
      });

      it('count toward the quota until read, replaced or expired; JSON values do not', async () => {
        const key = pub();
        const limits = fields(10, 3000);
        expect(await store.putField(key, 'a', bytes(1000), DAY, limits)).toBe('stored');
        expect(await store.putField(key, 'b', bytes(1500), 100, limits)).toBe('stored');
        expect(await store.putField(key, 'j', 'x'.repeat(5000), DAY, limits)).toBe('stored');
        expect(await store.blobBytes(key)).toBe(2500);
        expect(await store.putField(key, 'c', bytes(600), DAY, limits)).toEqual({
          refused: 'quota_full',
          used: 2500,
        });
        expect(await store.putField(key, 'a', bytes(1400), DAY, limits)).toBe('stored'); // replaces a's 1000
        expect(await store.blobBytes(key)).toBe(2900);
        await elapse(150); // b expires
        expect(await store.blobBytes(key)).toBe(1400);
        expect(await store.putField(key, 'c', bytes(1600), DAY, limits)).toBe('stored');
        await store.takeField(key, 'a');
        await store.deleteField(key, 'c');
        expect(await store.blobBytes(key)).toBe(0);
        expect(await store.putField(key, 'd', bytes(3000), DAY, limits)).toBe('stored');
      });
    });
  });
}
