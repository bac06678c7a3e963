// The relay's pages in real headless Chromium: the form with no JavaScript, the live inbox, the SDK in a
// page, and the API reference working with nothing from outside the relay. Screenshots are saved.
import { execFileSync } from 'node:child_process';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, OTHER_HOST, SCREENSHOTS } from './browser.js';
import { forgedKey, listen, openTestRelay, type TestRelay } from './helpers.js';

describe('pages in Chromium', () => {
  let relay: TestRelay;
  let server: Awaited<ReturnType<typeof listen>>;
  let browser: Browser;
  const outside: string[] = [];

  const newPage = async (): Promise<Page> => {
    const page = await browser.newPage();
    page.on('request', (request) => {
      if (!request.url().startsWith(server.url) && !request.url().startsWith('data:'))
        outside.push(request.url());
    });
    return page;
  };

  beforeAll(async () => {
    execFileSync('node', ['scripts/build-sdk.mjs'], { stdio: 'ignore' }); // the SDK bundle the pages load
    relay = await openTestRelay('sqlite');
    server = await listen(relay.app);
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await relay?.dispose();
  });

  it('shows the instance on the home page and hands out a key pair with its button', async () => {
    const page = await newPage();
    await page.goto(`${server.url}/`);
    expect(await page.textContent('#instance-id')).toBe(relay.keyring.id);
    await page.click('#new-keys');
    await page.waitForSelector('#keys:not([hidden])');
    const text = (await page.textContent('#keys')) ?? '';
    const priv = /private: ([\w-]{32})/.exec(text)?.[1] as string;
    expect(relay.keyring.inspect(priv)?.type).toBe('private');
    await page.screenshot({ path: `${SCREENSHOTS}/home.png`, fullPage: true });
    await page.close();
  });

  it('submits the plain form to the thanks page and back, and the open inbox shows submissions, nested values as JSON', async () => {
    const keys = relay.keys();
    const inbox = await newPage();
    await inbox.goto(`${server.url}/examples/inbox.html#${keys.private}`);
    await inbox.waitForSelector('#status[data-state="listening"]');

    const form = await browser.newContext({ javaScriptEnabled: false }).then((context) => context.newPage());
    await form.goto(`${server.url}/examples/form.html?pub=${keys.public}`);
    await form.fill('#name', 'Ada');
    await form.fill('#message', 'Hello from a form with no JavaScript');
    await form.screenshot({ path: `${SCREENSHOTS}/form.png`, fullPage: true });
    await Promise.all([
      form.waitForURL(`${server.url}/examples/thanks.html?pub=${keys.public}`),
      form.click('button[type=submit]'),
    ]);
    expect(await form.textContent('#result')).toBe('Thank you');

    await inbox.waitForSelector('.item');
    expect(await inbox.textContent('.item')).toContain('Hello from a form with no JavaScript');
    // A JSON submission with nested values shows them as JSON.
    await relay.agent
      .post(`/public/${keys.public}`)
      .send({ order: { id: 7, items: ['tea', 2] }, tags: ['a', 'b'], note: 'nested' })
      .expect(200);
    await inbox.waitForSelector('.item:has-text("nested")');
    const nested = (await inbox.textContent('.item:has-text("nested")')) ?? '';
    expect(nested).toContain('order: {"id":7,"items":["tea",2]}');
    expect(nested).toContain('tags: ["a","b"]');
    expect(nested).not.toContain('[object Object]');
    await inbox.screenshot({ path: `${SCREENSHOTS}/inbox.png`, fullPage: true });
    await inbox.close();

    // The thanks page leads back to the same form.
    await Promise.all([
      form.waitForURL(`${server.url}/examples/form.html?pub=${keys.public}`),
      form.click('#back'),
    ]);
    expect(await form.getAttribute('form', 'action')).toContain(`/public/${keys.public}?ok=`);
    await form.context().close();
    // The inbox took it from the relay as it showed it.
    await relay.agent.get(`/private/${keys.private}`).expect(404);
  });

  it('lands a refused submission on the error page, which links back to the form', async () => {
    const form = await browser.newContext({ javaScriptEnabled: false }).then((context) => context.newPage());
    const forged = forgedKey();
    await form.goto(`${server.url}/examples/form.html?pub=${forged}`);
    await form.fill('#name', 'Mallory');
    await form.fill('#message', 'To a key the relay never issued');
    await Promise.all([
      form.waitForURL(`${server.url}/examples/oops.html?pub=${forged}`),
      form.click('button[type=submit]'),
    ]);
    expect(await form.textContent('#result')).toBe('Not sent');
    await form.screenshot({ path: `${SCREENSHOTS}/form-error.png` });
    await Promise.all([
      form.waitForURL(`${server.url}/examples/form.html?pub=${forged}`),
      form.click('#back'),
    ]);
    expect(await form.inputValue('#name')).toBe('');
    await form.context().close();
  });

  it('runs the SDK in a page: keys, publish and read, drain with wait, and a subscription', async () => {
    const page = await newPage();
    await page.goto(`${server.url}/`);
    // A string, so the test runner does not rewrite the page's dynamic import.
    const result = await page.evaluate(`(async () => {
      const { createClient } = await import(location.origin + '/sdk/deadrop.js');
      const relay = createClient(location.origin);
      const pair = await relay.keys();
      await relay.publish(pair.private, { notice: 'hi' });
      const read = await relay.read(pair.public);
      const waiting = relay.drain(pair.private, { wait: 10 });
      setTimeout(() => relay.post(pair.public, { late: 1 }), 200);
      const drained = await waiting;
      const received = [];
      const stop = new AbortController();
      const subscription = relay.subscribe(pair.private, (item) => {
        received.push(item);
        if (received.length === 3) stop.abort();
      }, { signal: stop.signal });
      for (const n of [1, 2, 3]) await relay.post(pair.public, { n });
      await subscription;
      return { read, drained, received, empty: await relay.drain(pair.private) };
    })()`);
    expect(result).toEqual({
      read: { notice: 'hi' },
      drained: [{ late: 1 }],
      received: [{ n: 1 }, { n: 2 }, { n: 3 }],
      empty: [],
    });
    await page.close();
  });

  it('renders every operation of the API reference with nothing loaded from outside the relay', async () => {
    outside.length = 0;
    const page = await newPage();
    await page.goto(`${server.url}/docs`);
    await page.waitForSelector('.opblock');
    const spec = (await (await fetch(`${server.url}/openapi.json`)).json()) as {
      paths: Record<string, object>;
    };
    const operations = Object.values(spec.paths).flatMap((item) =>
      Object.keys(item).filter((method) =>
        ['get', 'post', 'put', 'patch', 'delete', 'head'].includes(method),
      ),
    );
    await page.waitForFunction(
      (count) => document.querySelectorAll('.opblock').length >= count,
      operations.length,
    );
    expect(await page.locator('.opblock').count()).toBe(operations.length);
    await page.screenshot({ path: `${SCREENSHOTS}/docs.png`, fullPage: false });
    expect(outside).toEqual([]);
    await page.close();
  });

  it('runs the scripts and applies the styles of / and /drop opened under another name over plain HTTP', async () => {
    const base = server.url.replace('127.0.0.1', OTHER_HOST);
    const page = await browser.newPage();
    const failed: string[] = [];
    page.on('requestfailed', (request) => failed.push(request.url()));
    await page.goto(`${base}/`);
    // style.css sets the body's width; without it the page is bare text across the window.
    expect(await page.$eval('body', (body) => getComputedStyle(body).maxWidth)).toBe('736px');
    await page.click('#new-keys');
    await page.waitForSelector('#keys:not([hidden])');
    expect(await page.textContent('#keys')).toMatch(/private: [\w-]{32}/);
    await page.screenshot({ path: `${SCREENSHOTS}/home-other-host.png` });

    await page.goto(`${base}/drop`);
    await page.waitForSelector('#send:not([hidden])');
    expect(await page.$eval('body', (body) => getComputedStyle(body).maxWidth)).toBe('736px');
    expect(failed).toEqual([]);
    await page.close();
  });

  it('runs "Try it out" on GET /id against this relay on its own port', async () => {
    outside.length = 0;
    const page = await newPage();
    await page.goto(`${server.url}/docs`);
    const operation = page.locator('#operations-keys-getInstanceId');
    await operation.locator('.opblock-summary').click();
    // docs-init.js sets tryItOutEnabled: each operation opens ready to execute (its button says Cancel).
    expect(await operation.locator('button.try-out__btn').textContent()).toBe('Cancel');
    await operation.locator('button.execute').click();
    const response = operation.locator('.live-responses-table .response');
    await response.waitFor();
    expect(await response.locator('.response-col_status').textContent()).toContain('200');
    expect(await response.locator('.response-col_description').textContent()).toContain(relay.keyring.id);
    expect((await operation.locator('.request-url pre').textContent())?.trim()).toBe(`${server.url}/id`);
    await operation.screenshot({ path: `${SCREENSHOTS}/docs-try-it-out.png` });
    expect(outside).toEqual([]);
    await page.close();
  });
});
