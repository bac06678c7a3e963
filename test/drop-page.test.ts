// The /drop page in headless Chromium: sending and fetching with equal bytes, passwords, revoke, a mistyped link,
// a fetch cut short and resumed from IndexedDB, and a drop larger than the relay holds for an offline receiver.
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Browser, BrowserContext, Download, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DROP_CHUNK_SIZE, revokeDrop, sendDrop } from '../sdk/drop.js';
import { launchChromium, SCREENSHOTS } from './browser.js';
import { type DropRelay, mistype, openDropRelay } from './drop-relay.js';

const MIB = 1_048_576;
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const savedBytes = async (download: Download) => readFile((await download.path()) as string);

let relay: DropRelay;
let browser: Browser;
let context: BrowserContext;
/** Every request the relay got: "<method> <url> <referer>". */
const seen: string[] = [];
/** Reads of chunks from this index on wait until `open` resolves. */
let hold: { from: number; open: Promise<void> } | undefined;

/** Holds reads of chunk `from` and later on the relay until the returned function is called. */
function holdChunksFrom(from: number): () => void {
  let release = () => {};
  hold = { from, open: new Promise<void>((resolve) => (release = resolve)) };
  return release;
}

/** The chunk indexes the relay was asked to read (`GET …/c<n>?peek`), in order, from `seen[since]` on. */
const chunkReads = (since = 0) =>
  seen.slice(since).flatMap((line) => {
    const match = /^GET \S*\/c(\d+)\?peek/.exec(line);
    return match ? [Number(match[1])] : [];
  });

beforeAll(async () => {
  relay = await openDropRelay('sqlite', {
    page: true,
    onRequest: async (req) => {
      seen.push(`${req.method} ${req.originalUrl} ${req.headers.referer ?? ''}`);
      const read = /\/c(\d+)\?peek/.exec(req.originalUrl);
      if (read && hold && Number(read[1]) >= hold.from) await hold.open;
    },
  });
  browser = await launchChromium();
  context = await browser.newContext({ acceptDownloads: true, viewport: { width: 900, height: 700 } });
});

afterAll(async () => {
  await browser?.close();
  await relay?.close();
});

/** Sends `bytes` from Node, as another sender would. */
const sendFromNode = (bytes: Uint8Array, name: string) =>
  sendDrop(relay.url, new Blob([bytes as BlobPart]), { name });

/** Opens `link` in a new page of `context` and answers the file it downloads. */
async function fetchInPage(
  link: string,
  on: BrowserContext = context,
): Promise<{ page: Page; saved: Buffer }> {
  const page = await on.newPage();
  const downloading = page.waitForEvent('download', { timeout: 30_000 });
  await page.goto(link);
  const saved = await savedBytes(await downloading);
  await page.waitForSelector('#status:has-text("Saved and verified")');
  return { page, saved };
}

/** How many rows this browser's IndexedDB keeps of the drop at `publicKey` (chunks and its fetch). */
const keptRows = (page: Page, publicKey: string) =>
  page.evaluate(
    (key) =>
      new Promise<number>((resolve, reject) => {
        const open = indexedDB.open('deadrop-drop');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const transaction = open.result.transaction(['fetches', 'chunks']);
          const chunks = transaction
            .objectStore('chunks')
            .count(IDBKeyRange.bound([key, 0], [key, Number.MAX_SAFE_INTEGER]));
          const fetches = transaction.objectStore('fetches').count(key);
          transaction.oncomplete = () => resolve(chunks.result + fetches.result);
        };
      }),
    publicKey,
  );

describe('the drop page', () => {
  it('drops a 5 MiB file in one page, fetches it in another with equal bytes, then shows it burned', async () => {
    const bytes = randomBytes(5 * MIB);
    const foreign: string[] = [];
    context.on('request', (request) => {
      if (!request.url().startsWith(relay.url)) foreign.push(request.url());
    });

    const sender = await context.newPage();
    await sender.goto(`${relay.url}/drop`);
    await sender.setInputFiles('#file', {
      name: 'five-mib.bin',
      mimeType: 'application/octet-stream',
      buffer: bytes,
    });
    await sender.click('#send-button');
    await sender.waitForSelector('#status:has-text("Done:")', { timeout: 20_000 });
    const link = await sender.inputValue('#link');
    expect(link).toMatch(new RegExp(`^${relay.url}/drop#[\\w-]{32}\\.[\\w-]{43}$`));
    expect(await sender.$eval('#progress', (bar) => (bar as HTMLProgressElement).value)).toBe(1);
    expect(await sender.textContent('#status')).toContain('five-mib.bin (5.0 MiB) is waiting');
    expect(await sender.isHidden('#keep-open')).toBe(true);
    await sender.screenshot({ path: `${SCREENSHOTS}/drop-1-sent.png`, fullPage: true });

    const receiver = await context.newPage();
    const downloading = receiver.waitForEvent('download', { timeout: 20_000 });
    await receiver.goto(link);
    const download = await downloading;
    expect(download.suggestedFilename()).toBe('five-mib.bin');
    const saved = await savedBytes(download);
    expect(saved.length).toBe(bytes.length);
    expect(sha256(saved)).toBe(sha256(bytes));
    await receiver.waitForSelector('#status:has-text("Saved and verified")');
    expect(await receiver.textContent('#file-info')).toBe('five-mib.bin · 5.0 MiB');
    expect(receiver.url()).toBe(`${relay.url}/drop`);
    await receiver.screenshot({ path: `${SCREENSHOTS}/drop-2-fetched.png`, fullPage: true });

    await sender.click('#check');
    await sender.waitForSelector('#status:has-text("Fetched, at")');

    const second = await context.newPage();
    await second.goto(link);
    await second.waitForSelector('#status:has-text("This drop was already fetched, at")');
    await second.screenshot({ path: `${SCREENSHOTS}/drop-3-burned.png`, fullPage: true });

    expect(foreign).toEqual([]);
    const key = link.split('.').at(-1) as string;
    expect(seen.length).toBeGreaterThan(10);
    expect(seen.filter((line) => line.includes(key))).toEqual([]);
  });

  it('a password drop asks for it; a wrong one burns nothing and the right one fetches', async () => {
    const sender = await context.newPage();
    await sender.goto(`${relay.url}/drop`);
    await sender.setInputFiles('#file', {
      name: 'note.txt',
      mimeType: 'text/plain',
      buffer: Buffer.from('meet at noon'),
    });
    await sender.fill('#password', 'open sesame');
    await sender.click('#send-button');
    await sender.waitForSelector('#status:has-text("Done:")', { timeout: 20_000 });
    const link = await sender.inputValue('#link');

    const receiver = await context.newPage();
    await receiver.goto(link);
    await receiver.waitForSelector('#unlock:not([hidden])');
    await receiver.fill('#unlock-password', 'wrong');
    await receiver.click('#unlock button');
    await receiver.waitForSelector('#status:has-text("The password is wrong")', { timeout: 20_000 });
    const downloading = receiver.waitForEvent('download', { timeout: 20_000 });
    await receiver.fill('#unlock-password', 'open sesame');
    await receiver.click('#unlock button');
    const download = await downloading;
    expect(await readFile((await download.path()) as string, 'utf8')).toBe('meet at noon');
    await receiver.screenshot({ path: `${SCREENSHOTS}/drop-4-password.png`, fullPage: true });
  });

  it('revoke from the sender page burns the drop before anyone fetched it', async () => {
    const sender = await context.newPage();
    await sender.goto(`${relay.url}/drop`);
    await sender.setInputFiles('#file', {
      name: 'a.bin',
      mimeType: 'application/octet-stream',
      buffer: randomBytes(100),
    });
    await sender.click('#send-button');
    await sender.waitForSelector('#status:has-text("Done:")');
    await sender.click('#check');
    await sender.waitForSelector('#status:has-text("Not fetched yet")');
    await sender.click('#revoke');
    await sender.waitForSelector('#status:has-text("Revoked")');
    await sender.click('#check');
    await sender.waitForSelector('#status:has-text("Gone: revoked or expired")');
    const receiver = await context.newPage();
    await receiver.goto(await sender.inputValue('#link'));
    await receiver.waitForSelector('#status:has-text("There is no drop at this link")');
  });

  it('a mistyped link says a character is wrong and burns nothing; the right link then fetches equal bytes', async () => {
    const bytes = randomBytes(2 * MIB + 7);
    const sent = await sendFromNode(bytes, 'mistyped.bin');
    const mistyped = mistype(sent.link, 32 + 1 + 20); // a character in the middle of the key part

    const wrong = await context.newPage();
    await wrong.goto(mistyped);
    await wrong.waitForSelector('#status:has-text("a character of it is wrong")');
    expect(await wrong.textContent('#status')).toContain(
      'Nothing was fetched, so the right link still works.',
    );
    await wrong.screenshot({ path: `${SCREENSHOTS}/drop-5-mistyped.png`, fullPage: true });
    const claims = () => seen.filter((line) => line.startsWith(`GET /public/${sent.publicKey}/k `));
    expect(claims()).toEqual([]);

    const { saved } = await fetchInPage(sent.link);
    expect(sha256(saved)).toBe(sha256(bytes));
    expect(claims()).toHaveLength(1);
  });

  it('a fetch cut short by closing the page resumes from IndexedDB in a new page, reading no kept chunk again', async () => {
    const bytes = randomBytes(8 * MIB);
    const sent = await sendFromNode(bytes, 'eight-mib.bin');
    expect(sent.chunks).toBe(9);
    const firstFour = 4 * DROP_CHUNK_SIZE;

    // The relay serves chunks 0 to 3, then holds the reads of the rest while the page is closed.
    let release = holdChunksFrom(4);
    const since = seen.length;
    const first = await context.newPage();
    await first.goto(sent.link);
    await first.waitForFunction(
      (kept) => (document.getElementById('progress') as HTMLProgressElement).value >= kept,
      firstFour / bytes.length,
    );
    await first.close();
    const readBeforeClose = chunkReads(since);
    const atClose = seen.length;
    expect(readBeforeClose.filter((index) => index < 4).sort((a, b) => a - b)).toEqual([0, 1, 2, 3]);

    // The new page reads two chunks, then waits until the test saw it resume.
    const releaseRest = holdChunksFrom(6);
    release();
    release = releaseRest;
    const second = await context.newPage();
    const downloading = second.waitForEvent('download', { timeout: 30_000 });
    await second.goto(sent.link);
    await second.waitForSelector('#status:has-text("Resuming: 4.0 MiB of 8.0 MiB kept")');
    await second.screenshot({ path: `${SCREENSHOTS}/drop-6-resuming.png`, fullPage: true });
    release();
    hold = undefined;
    const saved = await savedBytes(await downloading);
    expect(sha256(saved)).toBe(sha256(bytes));
    await second.waitForSelector('#status:has-text("Saved and verified")');

    const readAfterClose = chunkReads(atClose);
    expect(readAfterClose.filter((index) => index < 4)).toEqual([]);
    expect(new Set(readAfterClose)).toEqual(new Set([4, 5, 6, 7, 8]));
    // One claim: the new page went on with the key the first one kept.
    expect(seen.filter((line) => line.startsWith(`GET /public/${sent.publicKey}/k `))).toHaveLength(1);
    expect(await keptRows(second, sent.publicKey)).toBe(0);
  }, 60_000);

  it('a fetch cut short by a reload of its tab goes on by itself, although the key left the address bar', async () => {
    const bytes = randomBytes(3 * DROP_CHUNK_SIZE + 5);
    const sent = await sendFromNode(bytes, 'reloaded.bin');
    let release = holdChunksFrom(2);
    const page = await context.newPage();
    await page.goto(sent.link);
    await page.waitForFunction(
      (kept) => (document.getElementById('progress') as HTMLProgressElement).value >= kept,
      (2 * DROP_CHUNK_SIZE) / bytes.length,
    );
    const releaseRest = holdChunksFrom(3);
    const downloading = page.waitForEvent('download', { timeout: 30_000 });
    await page.reload();
    release(); // only now: released earlier, the first load could save the rest before the reload
    release = releaseRest;
    expect(page.url()).toBe(`${relay.url}/drop`);
    await page.waitForSelector('#status:has-text("Resuming: 2.0 MiB of 3.0 MiB kept")');
    release();
    hold = undefined;
    expect(sha256(await savedBytes(await downloading))).toBe(sha256(bytes));
    await page.waitForSelector('#status:has-text("Saved and verified")');
    // Done: a reload now shows the sender's page, not the drop.
    await page.reload();
    await page.waitForSelector('#send:not([hidden])');
  });

  it('a cut-short fetch of a drop revoked meanwhile says it is gone and clears what the browser kept', async () => {
    const bytes = randomBytes(3 * DROP_CHUNK_SIZE);
    const sent = await sendFromNode(bytes, 'revoked.bin');
    const release = holdChunksFrom(2);
    const first = await context.newPage();
    await first.goto(sent.link);
    await first.waitForFunction(
      (kept) => (document.getElementById('progress') as HTMLProgressElement).value >= kept,
      (2 * DROP_CHUNK_SIZE) / bytes.length,
    );
    await first.close();
    release();
    hold = undefined;
    await revokeDrop(sent);

    const second = await context.newPage();
    await second.goto(`${relay.url}/drop`);
    expect(await keptRows(second, sent.publicKey)).toBe(3); // two chunks and the claimed key
    await second.goto(sent.link);
    await second.waitForSelector('#status:has-text("There is no drop at this link")');
    expect(await keptRows(second, sent.publicKey)).toBe(0);
  });

  it('a drop larger than the relay holds offline shows its link at once, asks the sender to stay, and streams to a receiver', async () => {
    // 4 MiB per key pair: the relay holds 4 chunks for an offline receiver.
    const small = await openDropRelay('sqlite', { page: true, keyQuota: 4 * MIB });
    const smallContext = await browser.newContext({ acceptDownloads: true });
    try {
      const bytes = randomBytes(10 * MIB);
      const sender = await smallContext.newPage();
      await sender.goto(`${small.url}/drop`);
      await sender.setInputFiles('#file', {
        name: 'ten-mib.bin',
        mimeType: 'application/octet-stream',
        buffer: bytes,
      });
      await sender.click('#send-button');
      await sender.waitForSelector('#keep-open:has-text("Keep this page open until the upload is done")');
      const link = await sender.inputValue('#link');
      expect(link).toMatch(new RegExp(`^${small.url}/drop#[\\w-]{32}\\.[\\w-]{43}$`));
      // The upload cannot end before a receiver takes chunks: the relay holds 4 of the 11.
      await sender.waitForSelector('#status:has-text("Waiting for the receiver")');
      expect(await sender.$eval('#progress', (bar) => (bar as HTMLProgressElement).value)).toBeLessThan(1);
      await sender.screenshot({ path: `${SCREENSHOTS}/drop-7-keep-open.png`, fullPage: true });

      const { saved } = await fetchInPage(link, smallContext);
      expect(sha256(saved)).toBe(sha256(bytes));
      await sender.waitForSelector(
        '#status:has-text("Done: all of ten-mib.bin (10.0 MiB) is uploaded or already fetched; you can close this page.")',
      );
      expect(await sender.isHidden('#keep-open')).toBe(true);
      await sender.click('#check');
      await sender.waitForSelector('#status:has-text("Fetched, at")');
    } finally {
      await smallContext.close();
      await small.close();
    }
  }, 60_000);
});
