// The /box page in headless Chromium against a real relay and a real worker: key, files, transfers, commands,
// refusals, requests left for a stopped worker, and a screenshot of each state.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import express from 'express';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { list as listTar } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toBase64url } from '../sdk/e2e/encoding.js';
import { nodeSuite } from '../sdk/e2e/native-suite.js';
import { createUserKeyFile, loadUserKeys } from '../src/client/user-keys.js';
import { checkWorkerConfig } from '../src/worker/config.js';
import { type RunningWorker, startWorker } from '../src/worker/worker.js';
import { launchChromium, OTHER_HOST, SCREENSHOTS } from './browser.js';
import { listen, openTestRelay, type TestRelay, tempDir, waitFor } from './helpers.js';

const BIG_BYTES = 20 * 1024 * 1024;
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

let relay: TestRelay;
let server: { url: string; close: () => Promise<void> };
let dir: string;
let root: string;
let worker: RunningWorker | undefined;
let browser: Browser;
let context: BrowserContext;
let pub: string;
let id: string;
/** Every request the relay got: "<method> <path>". */
const seen: string[] = [];
/** The page's key, exported in the file format of `deadrop user`. */
let pageKeyFile: string;
/** Keys allowed on the worker, beside the one the page makes. */
const otherUser = toBase64url(nodeSuite.ed25519Keygen().publicKey);

/** Starts the worker with `pageKey` (if any) in its auth list; the key file keeps its address across restarts. */
async function runWorker(pageKey?: string): Promise<RunningWorker> {
  const auth = [{ name: 'other', key: otherUser, allow: { fs: ['list'] } }];
  if (pageKey) auth.push({ name: 'page', key: pageKey, allow: { fs: '*', exec: '*', wol: '*' } as never });
  const config = await checkWorkerConfig(
    {
      relay: server.url,
      keyFile: 'worker-key.json',
      fingerprint: { level: 4 },
      reconnect: { min: '50ms', max: '200ms' },
      receivers: {
        fs: {
          roots: { files: './root' },
          exclude: ['**/*.key'],
          operations: ['list', 'stat', 'find', 'grep', 'download', 'upload', 'mkdir', 'delete'],
        },
        exec: {
          commands: {
            greet: {
              argv: [process.execPath, '-e', 'console.log("hello, " + process.argv[1])', '{name}'],
              params: { name: { pattern: '[a-z]{1,20}', default: 'world' } },
            },
          },
        },
        wol: { targets: { desk: { mac: 'de:ad:be:ef:00:02', address: '127.0.0.1', port: 9 } } },
      },
      auth,
    },
    dir,
    'worker.yml',
  );
  const events: string[] = [];
  const started = await startWorker({ config, emit: (event) => events.push(event.type) });
  await waitFor(() => events.includes('published'), 'the descriptor');
  return started;
}

beforeAll(async () => {
  execFileSync('node', ['scripts/build-sdk.mjs'], { stdio: 'ignore' });
  relay = await openTestRelay('sqlite');
  const app = express();
  app.locals.pipes = relay.app.locals.pipes;
  app.use((req, _res, next) => {
    seen.push(`${req.method} ${req.path}`);
    next();
  });
  app.use(relay.app);
  server = await listen(app as unknown as TestRelay['app']);
  dir = await tempDir();
  root = join(dir, 'root');
  await mkdir(join(root, 'photos', 'trip'), { recursive: true });
  await mkdir(join(dir, 'outside'));
  await writeFile(join(root, 'hello.txt'), 'hello from the worker\nthe needle is here\n');
  await writeFile(join(root, 'big.bin'), randomBytes(BIG_BYTES));
  await writeFile(join(root, 'photos', 'cat.jpg'), randomBytes(50_000));
  await writeFile(join(root, 'photos', 'trip', 'notes.txt'), 'sunny');
  await writeFile(join(root, 'photos', 'private.key'), 'excluded');
  await writeFile(join(dir, 'outside', 'secret.txt'), 'outside the root');
  await symlink(join(dir, 'outside'), join(root, 'escape'));
  worker = await runWorker();
  [pub, id] = worker.address.replace(`${server.url}/public/`, '').split('#') as [string, string];
  browser = await launchChromium();
  context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1000, height: 800 } });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await worker?.stop();
  await server?.close();
  await relay?.dispose();
  await rm(dir, { recursive: true, force: true });
});

const status = (page: Page) => page.textContent('#status');
const shot = (page: Page, name: string) =>
  page.screenshot({ path: `${SCREENSHOTS}/box-${name}.png`, fullPage: true });
/** Waits for the status line to hold `text`; on a timeout, says what it held instead. */
const waitStatus = async (page: Page, text: string, timeout = 20_000) => {
  try {
    await page.waitForSelector(`#status:has-text(${JSON.stringify(text)})`, { timeout });
  } catch (error) {
    throw new Error(`The status never said "${text}"; it says "${await status(page)}".`, { cause: error });
  }
};

describe('the box page', () => {
  it('refuses a worker whose key does not have the fingerprint of the address, and sends nothing', async () => {
    const page = await context.newPage();
    const before = seen.length;
    const wrong = id.replace(/^../, id.startsWith('AA') ? 'BB' : 'AA');
    await page.goto(`${server.url}/box#${pub}.${wrong}`);
    await waitStatus(page, 'does not have the fingerprint');
    expect(await status(page)).toContain(
      `does not have the fingerprint ${wrong}: it is not the worker you named, so nothing was sent.`,
    );
    expect(await page.isHidden('#files')).toBe(true);
    const requests = seen.slice(before).filter((line) => line.includes(pub));
    expect(requests).toEqual([`GET /public/${pub}`]);
    await shot(page, '0-wrong-fingerprint');
    await page.close();
  });

  it('makes a key, is refused until the worker lists it, then lists, downloads, uploads, runs and refuses', async () => {
    const foreign: string[] = [];
    context.on('request', (request) => {
      if (!request.url().startsWith(server.url)) foreign.push(request.url());
    });
    const page = await context.newPage();
    page.on('dialog', (dialog) => void dialog.accept());
    await page.goto(`${server.url}/box#${pub}.${id}`);
    await waitStatus(page, 'This browser has no user key yet');
    await shot(page, '1-no-key');

    await page.click('#make-key');
    await waitStatus(page, 'Your key is made');
    const publicKey = await page.inputValue('#public-key');
    expect(publicKey).toMatch(/^[\w-]{43}$/);
    expect(await page.textContent('#auth-snippet')).toContain(`key: ${publicKey}`);
    await page.click('#retry');
    await waitStatus(page, "This user key is not in the worker's auth list.");
    await shot(page, '2-not-in-auth');

    await worker?.stop();
    worker = await runWorker(publicKey);
    await page.click('#retry');
    await page.waitForSelector('#listing button:has-text("hello.txt")', { timeout: 20_000 });
    expect(await page.textContent('#crumbs')).toContain('files');
    const rows = await page.$$eval('#listing tbody tr', (trs) => trs.map((tr) => tr.textContent ?? ''));
    expect(rows.join('\n')).toContain('big.bin20.0 MiB');
    expect(rows.join('\n')).not.toContain('escape');
    await shot(page, '3-files');

    // A 20 MiB download, streamed to disk through the page's service worker.
    const downloading = page.waitForEvent('download', { timeout: 60_000 });
    await page.click('#listing button:has-text("big.bin")');
    const download = await downloading;
    expect(download.suggestedFilename()).toBe('big.bin');
    const saved = await readFile((await download.path()) as string);
    expect(saved.length).toBe(BIG_BYTES);
    expect(sha256(saved)).toBe(sha256(await readFile(join(root, 'big.bin'))));
    await waitStatus(page, 'Saved big.bin (20.0 MiB)', 60_000);
    expect(await page.textContent('#progress-text')).toBe('Downloading big.bin: 20.0 MiB of 20.0 MiB');
    await shot(page, '4-downloaded');

    // An upload into the root, as a file input (drag and drop hands the page the same File objects).
    const uploaded = randomBytes(300_000);
    await page.setInputFiles('#upload', {
      name: 'from-browser.bin',
      mimeType: 'application/octet-stream',
      buffer: uploaded,
    });
    await waitStatus(page, 'Uploaded from-browser.bin to /files/from-browser.bin');
    expect(sha256(await readFile(join(root, 'from-browser.bin')))).toBe(sha256(uploaded));
    await page.waitForSelector('#listing button:has-text("from-browser.bin")');
    // Dropped on the drop zone, as a file manager would.
    const dropped = await page.evaluateHandle(() => {
      const transfer = new DataTransfer();
      transfer.items.add(new File(['dropped in the page\n'], 'dropped.txt', { type: 'text/plain' }));
      return transfer;
    });
    await page.dispatchEvent('#drop-zone', 'drop', { dataTransfer: dropped });
    await waitStatus(page, 'Uploaded dropped.txt to /files/dropped.txt');
    expect(await readFile(join(root, 'dropped.txt'), 'utf8')).toBe('dropped in the page\n');
    await shot(page, '5-uploaded');

    // A folder as a tar archive.
    await page.click('#listing button:has-text("photos/")');
    await page.waitForSelector('#listing button:has-text("cat.jpg")');
    const archiving = page.waitForEvent('download', { timeout: 30_000 });
    await page.click('#download-folder');
    const archive = await archiving;
    expect(archive.suggestedFilename()).toBe('photos.tar');
    const names: string[] = [];
    await listTar({ file: (await archive.path()) as string, onReadEntry: (entry) => names.push(entry.path) });
    expect(names.sort()).toEqual(['photos/', 'photos/cat.jpg', 'photos/trip/', 'photos/trip/notes.txt']);
    await waitStatus(page, 'Saved /files/photos as photos.tar (2 files');

    // New folder, find by name and by content, delete.
    await page.fill('#mkdir-name', 'made-here');
    await page.click('#mkdir-form button');
    await page.waitForSelector('#listing button:has-text("made-here/")');
    await page.click('#crumbs button:has-text("files")');
    await page.waitForSelector('#listing button:has-text("hello.txt")');
    await page.fill('#find-text', 'notes');
    await page.click('#find-form button');
    await page.waitForSelector('#found button:has-text("/files/photos/trip/notes.txt")');
    await page.fill('#find-text', 'needle');
    await page.selectOption('#find-mode', 'content');
    await page.click('#find-form button');
    await page.waitForSelector('#found li:has-text("2: the needle is here")');
    await page.click('#listing tr:has-text("from-browser.bin") button:has-text("Delete")');
    await waitStatus(page, 'Deleted /files/from-browser.bin.');
    await shot(page, '6-found-and-deleted');

    // A command with a field per parameter, and a wake-on-LAN button.
    await page.fill('#param-greet-name', 'box');
    await page.click('button:has-text("Run greet")');
    await page.waitForSelector('#output:has-text("hello, box")');
    expect(await page.textContent('#output')).toContain('(exit code 0)');
    await page.click('button:has-text("Wake desk")');
    await waitStatus(page, 'Sent a magic packet to desk (de:ad:be:ef:00:02).');
    await page.fill('#param-greet-name', 'NOT ALLOWED');
    await page.evaluate(() =>
      (document.getElementById('param-greet-name') as HTMLInputElement).removeAttribute('pattern'),
    );
    await page.click('button:has-text("Run greet")');
    await waitStatus(page, 'The value of "name" is not one the command "greet" accepts.');
    await shot(page, '7-command');

    // Refusals from the worker, in its words.
    await page.fill('#goto', '/files/escape');
    await page.click('#goto-form button');
    await waitStatus(page, '/files/escape leads outside its root.');
    expect(await page.getAttribute('#status', 'class')).toContain('error');
    await shot(page, '8-outside-the-root');
    await page.fill('#goto', '/files/../outside');
    await page.click('#goto-form button');
    await waitStatus(page, 'A path may not contain "." or ".." segments.');

    await page.fill('#goto', '/files');
    await page.click('#goto-form button');
    await page.waitForSelector('#listing button:has-text("hello.txt")');
    await page.setViewportSize({ width: 390, height: 844 });
    await shot(page, '9-phone');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await page.setViewportSize({ width: 1000, height: 800 });

    expect(foreign).toEqual([]);
    await page.close();
  }, 180_000);

  it('exports its key in the file format of "deadrop user", and imports one the CLI made', async () => {
    const page = await context.newPage();
    await page.goto(`${server.url}/box#${pub}.${id}`);
    await page.waitForSelector('#listing button:has-text("hello.txt")', { timeout: 20_000 });
    const shown = await page.inputValue('#public-key');
    await page.click('#key summary');
    const exporting = page.waitForEvent('download');
    await page.click('#export-key');
    const exported = await exporting;
    expect(exported.suggestedFilename()).toBe('user.json');
    pageKeyFile = join(dir, 'page-user.json');
    await exported.saveAs(pageKeyFile);
    const keys = await loadUserKeys(pageKeyFile);
    expect(toBase64url(keys.publicKey)).toBe(shown);

    const cliFile = join(dir, 'cli-user.json');
    const cliPublic = await createUserKeyFile(cliFile);
    await page.setInputFiles('#import-key', cliFile);
    // The page connects again with the key it imported, which this worker does not list.
    await waitStatus(page, "This user key is not in the worker's auth list.");
    expect(await page.inputValue('#public-key')).toBe(cliPublic);
    // The page's first key back, from its exported file: the worker lists it.
    await page.setInputFiles('#import-key', (await exported.path()) as string);
    await page.waitForSelector('#listing button:has-text("hello.txt")', { timeout: 20_000 });
    expect(await page.inputValue('#public-key')).toBe(shown);
    await page.close();
  }, 60_000);

  it('leaves a command for a stopped worker and shows its answer once the worker is back', async () => {
    const page = await context.newPage();
    await page.goto(`${server.url}/box#${pub}.${id}`);
    await page.waitForSelector('#listing button:has-text("hello.txt")', { timeout: 20_000 });
    const publicKey = await page.inputValue('#public-key');
    await worker?.stop();
    worker = undefined;
    await page.check('#when-back');
    await page.selectOption('#when-back-for', '28800');
    await page.fill('#param-greet-name', 'later');
    await page.click('button:has-text("Run greet")');
    await waitStatus(page, 'Left for the worker: greet name=later.');
    await page.waitForSelector('#waiting li:has-text("waiting for the worker")');
    await shot(page, '10-waiting');
    worker = await runWorker(publicKey);
    await page.waitForSelector('#waiting li:has-text("hello, later")', { timeout: 40_000 });
    expect(await page.textContent('#waiting')).toContain('(exit code 0)');
    await shot(page, '11-answered-when-back');
    await page.close();
  }, 90_000);
  it('over plain http under another name, where no service worker may run, saves a download from memory', async () => {
    const page = await context.newPage();
    const url = server.url.replace('127.0.0.1', OTHER_HOST);
    await page.goto(`${url}/box#${pub}.${id}`);
    expect(await page.evaluate(() => window.isSecureContext)).toBe(false);
    // This origin has a key store of its own: the page's key comes in as its exported file.
    await page.setInputFiles('#import-key', pageKeyFile);
    await page.waitForSelector('#listing button:has-text("hello.txt")', { timeout: 20_000 });
    const downloading = page.waitForEvent('download', { timeout: 30_000 });
    await page.click('#listing button:has-text("hello.txt")');
    const download = await downloading;
    expect(download.suggestedFilename()).toBe('hello.txt');
    expect(await readFile((await download.path()) as string)).toEqual(
      await readFile(join(root, 'hello.txt')),
    );
    await waitStatus(page, 'held in memory: this browser cannot stream to disk here');
    await shot(page, '12-memory-fallback');
    await page.close();
  }, 60_000);
});
