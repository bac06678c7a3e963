// A user's Ed25519 key pair in a file readable by its owner only (mode 0600), as `deadrop user init` makes it.
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { formatUserKeyFile, parseUserKeyFile } from '../../sdk/box/user-key-file.js';
import { toBase64url } from '../../sdk/e2e/encoding.js';
import { nodeSuite } from '../../sdk/e2e/native-suite.js';
import type { RawKeyPair } from '../../sdk/e2e/suite.js';

/** Where `deadrop user init` and `deadrop call` keep and look for the user's key. */
export const defaultUserKeyFile = () => join(homedir(), '.config', 'deadrop', 'user.json');

/** A key file that is missing or unusable; the message says what to do. */
export class UserKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserKeyError';
  }
}

/**
 * Makes a new key pair at `path` (mode 0600, its directory 0700) and answers its public key, base64url.
 * An existing file is kept unless `force`: replacing it would lock its user out of every worker.
 */
export async function createUserKeyFile(path: string, force = false): Promise<string> {
  const keys = nodeSuite.ed25519Keygen();
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  try {
    await writeFile(path, formatUserKeyFile(keys), {
      mode: 0o600,
      flag: force ? 'w' : 'wx',
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new UserKeyError(
        `${path} exists already; pass --force to replace it (workers will no longer know you).`,
      );
    }
    throw error;
  }
  // writeFile's mode applies only to a new file; a forced overwrite keeps the old mode otherwise.
  await chmod(path, 0o600);
  return toBase64url(keys.publicKey);
}

/** The key pair at `path` (the format of sdk/box/user-key-file.ts, which the /box page imports and exports). */
export async function loadUserKeys(path: string): Promise<RawKeyPair> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new UserKeyError(`There is no user key at ${path}; make one with "deadrop user init".`);
    }
    throw new UserKeyError(`The user key at ${path} cannot be read: ${(error as Error).message}`);
  }
  try {
    return parseUserKeyFile(text, nodeSuite);
  } catch (error) {
    const why = (error as Error).message;
    if (why.startsWith('it is damaged')) {
      throw new UserKeyError(
        `The user key at ${path} is damaged: its public key does not match its secret key.`,
      );
    }
    throw new UserKeyError(`The user key at ${path} cannot be read: ${why}.`);
  }
}
