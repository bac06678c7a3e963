// `deadrop --version` and `-v` print the version of the package they run from.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

describe('deadrop --version', () => {
  it("prints package.json's version for --version and -v, and nothing else", async () => {
    const { version } = JSON.parse(await readFile('package.json', 'utf8')) as { version: string };
    expect(version).toMatch(/^\d+\.\d+\.\d+/);
    for (const flag of ['--version', '-v']) {
      const { stdout, stderr } = await run('node', ['--import', 'tsx', 'src/cli.ts', flag]);
      expect(stdout).toBe(`${version}\n`);
      expect(stderr).toBe('');
    }
  });
});
