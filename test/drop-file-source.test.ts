// What `drop send` reads: a file by range through one handle, refused once it changes while it is sent.
import { randomBytes } from 'node:crypto';
import { appendFile, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openFileSource } from '../src/drop/file-source.js';
import { tempDir } from './helpers.js';

const MIB = 1_048_576;
let dir: string;
beforeAll(async () => {
  dir = await tempDir();
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const fileOf = async (name: string, bytes: Uint8Array) => {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
};

describe('a file as a drop source', () => {
  it('reads each range as it is in the file, the last one short', async () => {
    const bytes = randomBytes(2 * MIB + 5);
    const source = await openFileSource(await fileOf('whole.bin', bytes));
    try {
      expect(source.size).toBe(bytes.length);
      expect(Buffer.from(await source.read(0, MIB)).equals(bytes.subarray(0, MIB))).toBe(true);
      expect(Buffer.from(await source.read(2 * MIB, 2 * MIB + 5)).equals(bytes.subarray(2 * MIB))).toBe(true);
    } finally {
      await source.close();
    }
  });

  it('refuses to go on once the file grew, shrank or was rewritten in place', async () => {
    for (const change of [
      (path: string) => appendFile(path, 'more'),
      (path: string) => writeFile(path, randomBytes(MIB)),
      async (path: string) => {
        // Same size, new bytes and a new modification time: an editor's save.
        await writeFile(path, randomBytes(2 * MIB));
        const later = new Date(Date.now() + 5000);
        await utimes(path, later, later);
      },
    ]) {
      const path = await fileOf('changing.bin', randomBytes(2 * MIB));
      const source = await openFileSource(path);
      try {
        await source.read(0, MIB);
        await change(path);
        await expect(source.read(MIB, 2 * MIB)).rejects.toMatchObject({ code: 'file_changed' });
      } finally {
        await source.close();
      }
    }
  });
});
