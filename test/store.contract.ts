// The store contract: one suite that every adapter (memory, SQLite, Redis) must pass.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../src/store/store.js';
import { sleep } from './helpers.js';

const DAY = 86_400_000;
/** A random public key per test, so suites sharing one Redis never collide. */
const pub = () => randomBytes(24).toString('base64url');
const item = (n: number) => JSON.stringify({ n });

/** Runs the contract against the store `open` returns. */
export function storeContract(
  name: string,
  open: () => Promise<{ store: Store; dispose: () => Promise<void> }>,
) {
  describe(`store contract: ${name}`, () => {
    let store: Store;
    let dispose: () => Promise<void>;
    beforeAll(async () => {
      ({ store, dispose } = await open());
    });
    afterAll(() => dispose());

    describe('aggregator queue', () => {
      it('drains every item oldest first, then is empty', async () => {
        const key = pub();
        for (let n = 0; n < 5; n++) expect(await store.appendToQueue(key, item(n), DAY, 10)).toBe(true);
        expect(await store.drainQueue(key)).toEqual([0, 1, 2, 3, 4].map(item));
        expect(await store.drainQueue(key)).toEqual([]);
      });

      it('keeps items as given, byte for byte', async () => {
        const key = pub();
        const text = '{"big":12345678901234567890,"s":"é\\u0000 ✓"}';
        await store.appendToQueue(key, text, DAY, 10);
        expect(await store.drainQueue(key)).toEqual([text]);
      });

      it('refuses an item over the bound and drops nothing already queued', async () => {
        const key = pub();
        for (let n = 0; n < 3; n++) expect(await store.appendToQueue(key, item(n), DAY, 3)).toBe(true);
        expect(await store.appendToQueue(key, item(3), DAY, 3)).toBe(false);
        expect(await store.drainQueue(key)).toEqual([0, 1, 2].map(item));
        expect(await store.appendToQueue(key, item(4), DAY, 3)).toBe(true);
      });

      it('frees room in the bound as items expire', async () => {
        const key = pub();
        await store.appendToQueue(key, item(0), 150, 2);
        await store.appendToQueue(key, item(1), 150, 2);
        await sleep(250);
        expect(await store.appendToQueue(key, item(2), DAY, 2)).toBe(true);
        expect(await store.drainQueue(key)).toEqual([item(2)]);
      });

      it('neither drains nor counts expired items', async () => {
        const key = pub();
        await store.appendToQueue(key, item(0), 150, 10);
        await sleep(250);
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

      it('loses and duplicates nothing when 200 appends race with drains', async () => {
        const key = pub();
        const drained: string[] = [];
        const appends = Array.from({ length: 200 }, (_, n) => store.appendToQueue(key, item(n), DAY, 1000));
        const drains = Array.from({ length: 20 }, async () => drained.push(...(await store.drainQueue(key))));
        expect(await Promise.all(appends)).toEqual(Array(200).fill(true));
        await Promise.all(drains);
        drained.push(...(await store.drainQueue(key)));
        expect(drained.map((text) => JSON.parse(text).n).sort((x, y) => x - y)).toEqual(
          Array.from({ length: 200 }, (_, n) => n),
        );
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

      it('starts a new log with ids above those of an expired one', async () => {
        const key = pub();
        await store.appendToQueue(key, item(0), DAY, 10);
        const [old] = await store.moveToLog(key, 100, 10);
        await sleep(200);
        expect(await store.readLog(key, 0)).toEqual([]);
        await store.appendToQueue(key, item(1), DAY, 10);
        const [fresh] = await store.moveToLog(key, DAY, 10);
        expect(fresh?.id).toBeGreaterThan(old?.id as number);
      });
    });

    describe('webhook record', () => {
      it('stops appendUnlessHooked, which hands it over instead of queueing', async () => {
        const key = pub();
        expect(await store.appendUnlessHooked(key, item(0), DAY, 1)).toBe(true);
        expect(await store.appendUnlessHooked(key, item(1), DAY, 1)).toBe(false);
        await store.setHook(key, 'sealed-record', DAY);
        expect(await store.appendUnlessHooked(key, item(2), DAY, 1)).toEqual({ hook: 'sealed-record' });
        expect(await store.drainQueue(key)).toEqual([item(0)]);
      });

      it('is kept, read and forgotten', async () => {
        const key = pub();
        expect(await store.getHook(key)).toBeUndefined();
        await store.setHook(key, 'sealed-record', DAY);
        expect(await store.getHook(key)).toBe('sealed-record');
        await store.deleteHook(key);
        expect(await store.getHook(key)).toBeUndefined();
        await store.setHook(key, 'short', 100);
        await sleep(200);
        expect(await store.getHook(key)).toBeUndefined();
      });
    });

    describe('published value', () => {
      it('is read any number of times, replaced, then deleted', async () => {
        const key = pub();
        expect(await store.readValue(key)).toBeUndefined();
        await store.publishValue(key, '"one"', DAY);
        expect(await store.readValue(key)).toBe('"one"');
        expect(await store.readValue(key)).toBe('"one"');
        await store.publishValue(key, '"two"', DAY);
        expect(await store.readValue(key)).toBe('"two"');
        await store.deleteValue(key);
        expect(await store.readValue(key)).toBeUndefined();
        expect(await store.valueTtl(key)).toBe(0);
      });

      it('expires after its TTL', async () => {
        const key = pub();
        await store.publishValue(key, '1', 150);
        expect(await store.valueTtl(key)).toBeGreaterThan(0);
        await sleep(250);
        expect(await store.readValue(key)).toBeUndefined();
        expect(await store.valueTtl(key)).toBe(0);
      });

      it('renews its TTL, and says so only when there is a value', async () => {
        const key = pub();
        expect(await store.renewValue(key, DAY)).toBe(false);
        await store.publishValue(key, '1', 200);
        expect(await store.renewValue(key, 10_000)).toBe(true);
        await sleep(300);
        expect(await store.readValue(key)).toBe('1');
        expect(await store.valueTtl(key)).toBeGreaterThan(9000);
      });
    });

    describe('one-to-one fields', () => {
      it('gives a value to one reader only', async () => {
        const key = pub();
        expect(await store.putField(key, 'a', '"x"', DAY, 10)).toBe(true);
        expect(await store.fieldTtl(key, 'a')).toBeGreaterThan(DAY - 5000);
        const takes = await Promise.all(Array.from({ length: 10 }, () => store.takeField(key, 'a')));
        expect(takes.filter((value) => value !== undefined)).toEqual(['"x"']);
        expect(await store.fieldTtl(key, 'a')).toBe(0);
      });

      it('bounds the number of uids, counting a replaced uid once and freeing a read one', async () => {
        const key = pub();
        expect(await store.putField(key, 'a', '1', DAY, 2)).toBe(true);
        expect(await store.putField(key, 'b', '2', DAY, 2)).toBe(true);
        expect(await store.putField(key, 'a', '3', DAY, 2)).toBe(true);
        expect(await store.putField(key, 'c', '4', DAY, 2)).toBe(false);
        expect(await store.takeField(key, 'c')).toBeUndefined();
        expect(await store.takeField(key, 'a')).toBe('3');
        expect(await store.putField(key, 'c', '4', DAY, 2)).toBe(true);
        await store.deleteField(key, 'b');
        expect(await store.takeField(key, 'b')).toBeUndefined();
        expect(await store.putField(key, 'd', '5', DAY, 2)).toBe(true);
      });

      it('accepts uids that are property names elsewhere', async () => {
        const key = pub();
        for (const uid of ['__proto__', 'constructor', 'toString']) {
          expect(await store.putField(key, uid, '1', DAY, 10)).toBe(true);
        }
        expect(await store.takeField(key, '__proto__')).toBe('1');
        expect(await store.takeField(key, 'constructor')).toBe('1');
      });

      it('expires after its TTL and frees its place', async () => {
        const key = pub();
        await store.putField(key, 'a', '1', 150, 1);
        expect(await store.putField(key, 'b', '1', DAY, 1)).toBe(false);
        await sleep(250);
        expect(await store.takeField(key, 'a')).toBeUndefined();
        expect(await store.putField(key, 'b', '2', DAY, 1)).toBe(true);
      });
    });
  });
}
