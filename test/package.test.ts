// The package as an operator gets it: `npm pack` of a clean copy of this checkout, `npm install` of the
// tarball into an empty folder, then `npx deadrop --version` and `npx deadrop serve` as real processes.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
/** A native module may compile from source while the tarball installs (SQLite, without a prebuilt binary). */
const INSTALL_TIMEOUT_MS = 15 * 60_000;

/**
 * This environment without what `npm test` put there (npm_config_local_prefix would make the nested npm
 * work on this checkout), keeping where the cache and settings are.
 */
const npmEnv = (extra: Record<string, string> = {}) => ({
  ...Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) =>
        !name.toLowerCase().startsWith('npm_') ||
        ['npm_config_cache', 'npm_config_userconfig', 'npm_config_registry'].includes(name.toLowerCase()),
    ),
  ),
  ...extra,
});

describe('the npm package', () => {
  let work: string;
  let app: string;
  let version: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'deadrop-package-'));
    version = (JSON.parse(await readFile('package.json', 'utf8')) as { version: string }).version;

    // A copy of what a clone holds (tracked files and new ones, no dist/ or data/), so the tarball is
    // built from the sources alone; node_modules is shared for the build's tools.
    const checkout = join(work, 'checkout');
    const { stdout } = await run('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z']);
    for (const file of stdout.split('\0').filter(Boolean)) {
      await mkdir(dirname(join(checkout, file)), { recursive: true });
      await cp(file, join(checkout, file)).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error; // deleted in the working tree, not yet in the index
      });
    }
    await symlink(resolve('node_modules'), join(checkout, 'node_modules'));
    const tarballs = join(work, 'tarballs');
    await mkdir(tarballs);
    await run('npm', ['pack', '--pack-destination', tarballs], {
      cwd: checkout,
      env: npmEnv(),
      maxBuffer: 16 * 1024 * 1024,
    });
    const [tarball] = await readdir(tarballs);
    expect(tarball).toBe(`deadrop-${version}.tgz`);

    app = join(work, 'app');
    await mkdir(app);
    await run(
      'npm',
      [
        'install',
        join(tarballs, tarball as string),
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        '--loglevel=error',
      ],
      { cwd: app, env: npmEnv(), timeout: INSTALL_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 },
    );
  }, INSTALL_TIMEOUT_MS + 120_000);

  afterAll(async () => {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null)
        process.kill(-(child.pid as number), 'SIGKILL');
    }
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('installs with no development tool and no Swagger UI package, only what it runs', async () => {
    const { stdout } = await run('npm', ['ls', '--all', '--parseable'], { cwd: app, env: npmEnv() });
    const installed = stdout.split('\n').map((path) => path.replace(/^.*\/node_modules\//, ''));
    expect(installed).toContain('deadrop');
    expect(installed).toContain('express');
    for (const absent of ['typescript', 'esbuild', 'vitest', 'swagger-ui-dist', '@scarf/scarf']) {
      expect(installed).not.toContain(absent);
    }
  });

  it('answers `npx deadrop --version` and `-v` with the package version', async () => {
    for (const flag of ['--version', '-v']) {
      const { stdout } = await run('npx', ['deadrop', flag], { cwd: app, env: npmEnv() });
      expect(stdout).toBe(`${version}\n`);
    }
  });

  it('serves with `npx deadrop serve` (SQLite in ./data, pages and their assets) and stops on SIGTERM', async () => {
    // Its own process group, as a terminal or systemd gives it: the signal reaches npm and the relay.
    const server = spawn('npx', ['deadrop', 'serve'], {
      cwd: app,
      env: npmEnv({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info' }),
      stdio: ['ignore', 'pipe', 'inherit'],
      detached: true,
    });
    children.push(server);
    const log: { url?: string; msg?: string; store?: string }[] = [];
    const lines = createInterface({ input: server.stdout as NodeJS.ReadableStream });
    const listening = new Promise<string>((resolveUrl) => {
      lines.on('line', (line) => {
        const entry = JSON.parse(line) as { url?: string };
        log.push(entry);
        if (entry.url) resolveUrl(entry.url);
      });
    });
    const url = await listening;
    expect(log.find((entry) => entry.url)?.store).toBe('sqlite');

    const id = await fetch(`${url}/id`);
    expect(id.status).toBe(200);
    expect(await id.text()).toMatch(/^[\w-]{8}$/);
    expect((await fetch(`${url}/`)).status).toBe(200);
    const bundle = await fetch(`${url}/docs/assets/swagger-ui-bundle.js`);
    expect(bundle.status).toBe(200);
    expect((await bundle.arrayBuffer()).byteLength).toBeGreaterThan(100_000);
    expect((await fetch(`${url}/sdk/deadrop.js`)).status).toBe(200);

    const closed = once(server, 'close');
    process.kill(-(server.pid as number), 'SIGTERM');
    await closed;
    expect(log.some((entry) => String(entry.msg).startsWith('shutting down'))).toBe(true);
    await expect(fetch(`${url}/id`)).rejects.toThrow();
  });
});
