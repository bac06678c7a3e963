// The /drop page in headless Chromium: one page drops a 5 MiB file, another fetches it, a third finds it burned.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { type Browser, type BrowserContext, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DropRelay, openDropRelay } from './drop-relay.js';

const SCREENSHOTS = 'test-results/screenshots';
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

let relay: DropRelay;
let browser: Browser;
let context: BrowserContext;
/** Every request the relay got: "<method> <url> <referer>". */
const seen: string[] = [];

beforeAll(async () => {
  relay = await openDropRelay('sqlite', {
    page: true,
    onRequest: (req) => void seen.push(`${req.method} ${req.originalUrl} ${req.headers.referer ?? ''}`),
  });
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium' });
  context = await browser.newContext({ acceptDownloads: true, viewport: { width: 900, height: 700 } });
  await mkdir(SCREENSHOTS, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  await relay?.close();
});

describe('the drop page', () => {
  it('drops a 5 MiB file in one page, fetches it in another with equal bytes, then shows it burned', async () => {
    const bytes = randomBytes(5 * 1_048_576);
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
    await sender.waitForSelector('#sent:not([hidden])', { timeout: 20_000 });
    const link = await sender.inputValue('#link');
    expect(link).toMatch(new RegExp(`^${relay.url}/drop#[\\w-]{32}\\.[\\w-]{43}$`));
    expect(await sender.$eval('#progress', (bar) => (bar as HTMLProgressElement).value)).toBe(1);
    expect(await sender.textContent('#status')).toContain('five-mib.bin (5.0 MiB) is waiting');
    await sender.screenshot({ path: `${SCREENSHOTS}/drop-1-sent.png`, fullPage: true });

    const receiver = await context.newPage();
    const downloading = receiver.waitForEvent('download', { timeout: 20_000 });
    await receiver.goto(link);
    const download = await downloading;
    expect(download.suggestedFilename()).toBe('five-mib.bin');
    const saved = await readFile((await download.path()) as string);
    expect(saved.length).toBe(bytes.length);
    expect(sha256(saved)).toBe(sha256(bytes));
    await receiver.waitForSelector('#status:has-text("Saved and verified")');
    expect(await receiver.textContent('#file-info')).toBe('five-mib.bin · 5.0 MiB');
    expect(receiver.url()).toBe(`${relay.url}/drop`);
    await receiver.screenshot({ path: `${SCREENSHOTS}/drop-2-fetched.png`, fullPage: true });

    await sender.click('#check');
    await sender.waitForSelector('#status:has-text("Gone: fetched")');

    const second = await context.newPage();
    await second.goto(link);
    await second.waitForSelector('#status:has-text("already fetched or expired")');
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
    await sender.waitForSelector('#sent:not([hidden])', { timeout: 20_000 });
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
    await sender.waitForSelector('#sent:not([hidden])');
    await sender.click('#check');
    await sender.waitForSelector('#status:has-text("Not fetched yet")');
    await sender.click('#revoke');
    await sender.waitForSelector('#status:has-text("Revoked")');
    const receiver = await context.newPage();
    await receiver.goto(await sender.inputValue('#link'));
    await receiver.waitForSelector('#status:has-text("already fetched or expired")');
  });
});
