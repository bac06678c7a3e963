// What an install of the relay brings along (`npm ls --omit=dev`): code it runs, nothing that only serves
// assets, and no install script except a native module's build.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

interface Installed {
  path?: string;
  dependencies?: Record<string, Installed>;
}

/** Packages that exist to serve files or to report installs: built from or left out, never shipped. */
const ASSET_OR_TELEMETRY = ['swagger-ui-dist', 'swagger-ui', '@scarf/scarf'];
const INSTALL_SCRIPTS = ['preinstall', 'install', 'postinstall'];

/** Every package of the runtime tree, by name, with where it is installed. */
async function runtimePackages(): Promise<Map<string, Installed>> {
  const { stdout } = await promisify(execFile)('npm', ['ls', '--omit=dev', '--all', '--long', '--json'], {
    maxBuffer: 64 * 1024 * 1024,
  });
  const found = new Map<string, Installed>();
  const walk = (dependencies: Record<string, Installed> = {}) => {
    for (const [name, entry] of Object.entries(dependencies)) {
      // A deduped entry lists no dependencies of its own; the full one is elsewhere in the tree.
      if (entry.path) found.set(name, entry);
      walk(entry.dependencies);
    }
  };
  walk((JSON.parse(stdout) as Installed).dependencies);
  return found;
}

describe('runtime dependencies', () => {
  it('include no package that only serves assets or reports installs', async () => {
    const packages = await runtimePackages();
    // Guards the walk: a change in npm's output must not make the next checks vacuous.
    expect(packages.has('express')).toBe(true);
    expect(packages.has('qs')).toBe(true);
    expect(ASSET_OR_TELEMETRY.filter((name) => packages.has(name))).toEqual([]);
  });

  it('run no install script but a native module build', async () => {
    const scriptsOf = (path: string) =>
      (JSON.parse(readFileSync(join(path, 'package.json'), 'utf8')) as { scripts?: Record<string, string> })
        .scripts ?? {};
    const withScripts = [...(await runtimePackages())].filter(([, { path }]) =>
      INSTALL_SCRIPTS.some((script) => scriptsOf(path as string)[script] !== undefined),
    );
    // Guards the check: the SQLite store's native module builds in an install script.
    expect(withScripts.length).toBeGreaterThan(0);
    const notNativeBuilds = withScripts
      .filter(([, { path }]) => !existsSync(join(path as string, 'binding.gyp')))
      .map(([name]) => name);
    expect(notNativeBuilds).toEqual([]);
  });
});
