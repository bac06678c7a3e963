// examples/worker.yml stays a working example: with its folder and a real user key, it loads.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateUserKeys, toBase64url } from '../sdk/crypto.js';
import { loadWorkerConfig } from '../src/worker/config.js';
import { tempDir } from './helpers.js';

describe('examples/worker.yml', () => {
  it('loads once its shared folder exists and its placeholder is a real user key', async () => {
    const dir = await tempDir();
    try {
      await mkdir(join(dir, 'shared'));
      const key = toBase64url(generateUserKeys().publicKey);
      const example = await readFile('examples/worker.yml', 'utf8');
      await writeFile(join(dir, 'worker.yml'), example.replace(/REPLACE_WITH_\w+/, key));
      const config = await loadWorkerConfig(join(dir, 'worker.yml'));
      expect(config.relays).toEqual(['http://localhost:8080']);
      expect([...config.users.keys()]).toEqual([key]);
      expect(Object.keys(config.receivers).sort()).toEqual(['exec', 'fs', 'wol']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
