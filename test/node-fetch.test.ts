// The CLI's fetch on node:http answers as the global fetch does, for what the relay client asks of it.
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeFetch, nodeFetch } from '../src/client/node-fetch.js';

let server: Server;
let base: string;
const seen: { method: string; url: string; type: string | undefined; body: string; port: number }[] = [];

beforeAll(async () => {
  server = createServer(async (req, res) => {
    let body = '';
    for await (const part of req) body += part;
    seen.push({
      method: req.method ?? '',
      url: req.url ?? '',
      type: req.headers['content-type'],
      body,
      port: req.socket.remotePort ?? 0,
    });
    const [path] = (req.url ?? '').split('?');
    if (path === '/see-other') res.writeHead(303, { location: '/echo' }).end();
    else if (path === '/temporary') res.writeHead(307, { location: `${base}/echo` }).end();
    else if (path === '/loop') res.writeHead(302, { location: '/loop' }).end();
    else if (path === '/elsewhere') res.writeHead(302, { location: 'ftp://127.0.0.1/file' }).end();
    else if (path === '/none') res.writeHead(204).end();
    else if (path === '/slow') setTimeout(() => res.end('late'), 5000);
    else if (path === '/drip') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first part');
      setTimeout(() => res.end(' and the rest'), 5000);
    } else if (path === '/cut') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100' });
      res.write('ten bytes.');
      setTimeout(() => res.destroy(), 20);
    } else if (path === '/missing') {
      res.writeHead(404, 'Not Found', { 'content-type': 'application/json', 'x-two': ['a', 'b'] });
      res.end(JSON.stringify({ statusCode: 404, error: 'Not Found', message: 'nothing here' }));
    } else {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ method: req.method, body, type: req.headers['content-type'] ?? null }));
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('nodeFetch', () => {
  it('sends a string body with its headers and reads the JSON answer', async () => {
    const res = await nodeFetch(`${base}/echo`, {
      method: 'POST',
      body: JSON.stringify({ a: 1 }),
      headers: { 'content-type': 'application/json' },
    });
    expect(res.ok).toBe(true);
    expect(res.status).toBe(200);
    expect(res.headers.get('Content-Type')).toBe('application/json');
    expect(await res.json()).toEqual({ method: 'POST', body: '{"a":1}', type: 'application/json' });
  });

  it('answers an error status with its status text, headers and body, as fetch does', async () => {
    const res = await nodeFetch(`${base}/missing`);
    const reference = await fetch(`${base}/missing`);
    expect([res.ok, res.status, res.statusText]).toEqual([
      reference.ok,
      reference.status,
      reference.statusText,
    ]);
    expect(res.headers.get('x-two')).toBe(reference.headers.get('x-two'));
    expect(res.headers.get('x-none')).toBeNull();
    expect(await res.json()).toEqual(await reference.json());
    await expect(res.text()).rejects.toThrow(TypeError);
  });

  it('follows a 303 with a GET without the body, and a 307 with the same method and body', async () => {
    seen.length = 0;
    const other = await nodeFetch(`${base}/see-other`, { method: 'POST', body: 'x=1' });
    expect(await other.json()).toMatchObject({ method: 'GET', body: '' });
    expect(other.redirected).toBe(true);
    expect(other.url).toBe(`${base}/echo`);
    const temporary = await nodeFetch(`${base}/temporary`, {
      method: 'PUT',
      body: new TextEncoder().encode('y'),
    });
    expect(await temporary.json()).toMatchObject({ method: 'PUT', body: 'y' });
    expect(seen.map((request) => `${request.method} ${request.url}`)).toEqual([
      'POST /see-other',
      'GET /echo',
      'PUT /temporary',
      'PUT /echo',
    ]);
  });

  it('gives up on a redirect loop, and on a redirect to another scheme, with a TypeError, as fetch does', async () => {
    await expect(nodeFetch(`${base}/loop`)).rejects.toThrow(TypeError);
    await expect(nodeFetch(`${base}/elsewhere`)).rejects.toThrow('fetch failed');
  });

  it('keeps HEAD through a 303', async () => {
    seen.length = 0;
    const res = await nodeFetch(`${base}/see-other`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(seen.map((request) => request.method)).toEqual(['HEAD', 'HEAD']);
  });

  it('gives a connection whose answer has no body back at once, unread: the next request uses it', async () => {
    seen.length = 0;
    const none = await nodeFetch(`${base}/none`);
    expect(none.status).toBe(204);
    await new Promise((resolve) => setTimeout(resolve, 20));
    await (await nodeFetch(`${base}/echo`)).json();
    expect(seen).toHaveLength(2);
    expect(seen[1]?.port).toBe(seen[0]?.port);
  });

  it('gives up on a relay that sends no byte for its idle timeout, before the answer or during its body', async () => {
    const impatient = createNodeFetch({ connectMs: 1000, idleMs: 200 });
    const silent = await impatient(`${base}/slow`).catch((failure: unknown) => failure);
    expect(silent).toBeInstanceOf(TypeError);
    expect(((silent as Error).cause as NodeJS.ErrnoException).code).toBe('ETIMEDOUT');
    const stalled = await impatient(`${base}/drip`);
    await expect(stalled.text()).rejects.toThrow('terminated');
  });

  it('fails to connect with "fetch failed" and the system error as its cause', async () => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const closed = `http://127.0.0.1:${(probe.address() as AddressInfo).port}`;
    await new Promise((resolve) => probe.close(resolve));
    const error = await nodeFetch(`${closed}/echo`).catch((failure: unknown) => failure);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toBe('fetch failed');
    expect(((error as Error).cause as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
  });

  it('rejects with the signal’s reason when it aborts before the answer, or was aborted already', async () => {
    const timeout = await nodeFetch(`${base}/slow`, { signal: AbortSignal.timeout(100) }).catch(
      (failure: unknown) => failure,
    );
    expect((timeout as Error).name).toBe('TimeoutError');
    const stop = new AbortController();
    stop.abort();
    await expect(nodeFetch(`${base}/echo`, { signal: stop.signal })).rejects.toThrow(/abort/i);
  });

  it('an abort while the body arrives rejects the read with the reason; a cut connection is "terminated"', async () => {
    const stop = new AbortController();
    const res = await nodeFetch(`${base}/drip`, { signal: stop.signal });
    expect(res.status).toBe(200);
    setTimeout(() => stop.abort(new DOMException('enough', 'AbortError')), 50);
    await expect(res.text()).rejects.toMatchObject({ name: 'AbortError', message: 'enough' });
    const cut = await nodeFetch(`${base}/cut`);
    await expect(cut.text()).rejects.toThrow('terminated');
  });

  it('gives the same body stream each time it is asked for', async () => {
    const res = await nodeFetch(`${base}/echo`);
    expect(res.body).toBe(res.body);
    expect(JSON.parse(await new Response(res.body).text())).toMatchObject({ method: 'GET' });
  });

  it('hands anything but a string or bytes body to the global fetch', async () => {
    const body = new Blob(['from a blob']);
    const res = await nodeFetch(`${base}/echo`, { method: 'POST', body });
    expect(await res.json()).toMatchObject({ method: 'POST', body: 'from a blob' });
    expect(res).toBeInstanceOf(Response);
  });

  it('does not hold a process open with its kept connection', async () => {
    const script = `import { nodeFetch } from './src/client/node-fetch.ts';
      const res = await nodeFetch(${JSON.stringify(`${base}/echo`)});
      console.log((await res.json()).method);`;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      { timeout: 20_000 },
    );
    expect(stdout.trim()).toBe('GET');
  });
});
