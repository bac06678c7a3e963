// scripts/test-prerequisites.mjs, which `npm test` runs first: passes when Chromium and Redis are there,
// starts a local Redis it can start, and otherwise stops at once with one sentence per missing part.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);

/** Runs the script with `env` over this process's environment; resolves with its exit code and output. */
async function prerequisites(env: Record<string, string>) {
  try {
    const { stdout, stderr } = await run(process.execPath, ['scripts/test-prerequisites.mjs'], {
      env: { ...process.env, ...env },
      timeout: 20_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** A loopback port nothing listens on (it was free a moment ago). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Sends one inline Redis command to 127.0.0.1:port and resolves with the first reply, or the error. */
function redisCommand(port: number, command: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.on('connect', () => socket.write(`${command}\r\n`));
    socket.on('data', (data) => {
      socket.destroy();
      resolve(data.toString().trim());
    });
    socket.on('error', (error) => resolve(String(error)));
    socket.on('close', () => resolve('closed'));
  });
}

describe('the test prerequisites step', () => {
  let emptyPath: string;
  beforeAll(async () => {
    // A PATH with neither apt-get nor redis-server on it: nothing can be installed or started.
    emptyPath = await mkdtemp(join(tmpdir(), 'deadrop-empty-path-'));
  });
  afterAll(async () => {
    await rm(emptyPath, { recursive: true, force: true });
  });

  it('passes silently when Chromium is there and Redis answers', async () => {
    expect(await prerequisites({})).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  it('stops with one sentence naming Chromium and how to install it when it is missing', async () => {
    const missing = join(emptyPath, 'chromium');
    const result = await prerequisites({ CHROMIUM_PATH: missing, PATH: emptyPath });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `npm test needs Chromium at ${missing}: install Debian's (apt-get install chromium) or set CHROMIUM_PATH to one.\n`,
    );
  });

  it('stops with one sentence naming the Redis URL when no Redis answers and none can be started', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const result = await prerequisites({ REDIS_URL: url, PATH: emptyPath });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `npm test needs a Redis answering at ${url}: install one (apt-get install redis-server) or set REDIS_URL to one that runs.\n`,
    );
  });

  it('starts a redis-server for a loopback REDIS_URL where none answers', async () => {
    const port = await freePort();
    expect(await redisCommand(port, 'PING')).toMatch(/ECONNREFUSED/);
    const result = await prerequisites({ REDIS_URL: `redis://127.0.0.1:${port}` });
    try {
      expect(result.code).toBe(0);
      expect(result.stderr).toContain(`starting redis-server on 127.0.0.1 port ${port}`);
      expect(await redisCommand(port, 'PING')).toBe('+PONG');
    } finally {
      await redisCommand(port, 'SHUTDOWN NOSAVE');
    }
    expect(await redisCommand(port, 'PING')).toMatch(/ECONNREFUSED/);
  });
});
