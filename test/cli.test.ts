// The `deadrop` command as a user runs it: help, serve (with a bad and a good config) and keys.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const CLI = ['--import', 'tsx', 'src/cli.ts'];
const deadrop = (args: string[], env: Record<string, string> = {}) =>
  run('node', [...CLI, ...args], { env: { ...process.env, ...env } });

describe('deadrop CLI', () => {
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const child of children) child.kill('SIGKILL');
  });

  it('prints help for itself and for each command', async () => {
    expect((await deadrop(['--help'])).stdout).toMatch(/serve[\s\S]*keys/);
    expect((await deadrop(['serve', '--help'])).stdout).toContain('Usage: deadrop serve');
    expect((await deadrop(['keys', '--help'])).stdout).toContain('Usage: deadrop keys');
    await expect(deadrop(['launch'])).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('unknown command'),
    });
  });

  it('refuses to serve with a bad setting, saying which and why', async () => {
    const failure = deadrop(['serve'], { DEADROP_TTL: 'a day', DEADROP_STORE: 'memory' });
    await expect(failure).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining('DEADROP_TTL must be'),
    });
  });

  it('serves, hands out keys through `deadrop keys`, and stops on SIGTERM', async () => {
    const server = spawn('node', [...CLI, 'serve'], {
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DEADROP_STORE: 'memory', LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(server);
    let url = '';
    for await (const line of createInterface({ input: server.stdout as NodeJS.ReadableStream })) {
      const entry = JSON.parse(line) as { url?: string };
      if (entry.url) {
        url = entry.url;
        break;
      }
    }
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const { stdout } = await deadrop(['keys', '--relay', url, '--json']);
    const pair = JSON.parse(stdout) as { private: string; public: string };
    const info = await (await fetch(`${url}/keys/${pair.private}`)).json();
    expect(info).toEqual({ type: 'private', public: pair.public });
    expect((await deadrop(['keys', '--relay', url])).stdout).toMatch(
      /^private: [\w-]{32}.*\npublic: {2}[\w-]{32}\n$/,
    );

    server.kill('SIGTERM');
    const [code] = await once(server, 'exit');
    expect(code).toBe(0);
  });

  it('says so when the relay cannot be reached, in a sentence naming the URL', async () => {
    await expect(deadrop(['keys', '--relay', 'http://127.0.0.1:9'])).rejects.toMatchObject({
      code: 1,
      stderr:
        'deadrop keys: Nothing is listening at 127.0.0.1:9 (connection refused): is the relay running, and are the host and port of http://127.0.0.1:9 right?\n',
    });
  });
});
