// A user's Ed25519 key pair in a file readable by its owner only (mode 0600), as `deadrop user init` makes it.
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fromBase64url, toBase64url } from '../../sdk/e2e/encoding.js';
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

interface UserKeyFile {
  v: 1;
  type: 'ed25519';
  publicKey: string;
  secretKey: string;
}

/**
 * Makes a new key pair at `path` (mode 0600, its directory 0700) and answers its public key, base64url.
 * An existing file is kept unless `force`: replacing it would lock its user out of every worker.
 */
export async function createUserKeyFile(path: string, force = false): Promise<string> {
  const keys = nodeSuite.ed25519Keygen();
  const contents: UserKeyFile = {
    v: 1,
    type: 'ed25519',
    publicKey: toBase64url(keys.publicKey),
    secretKey: toBase64url(keys.secretKey),
  };
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  try {
    await writeFile(path, `${JSON.stringify(contents, null, 2)}\n`, {
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
  return contents.publicKey;
}

/** The key pair at `path`; the public key is derived again, so a damaged file is noticed. */
export async function loadUserKeys(path: string): Promise<RawKeyPair> {
  let contents: UserKeyFile;
  try {
    contents = JSON.parse(await readFile(path, 'utf8')) as UserKeyFile;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new UserKeyError(`There is no user key at ${path}; make one with "deadrop user init".`);
    }
    throw new UserKeyError(`The user key at ${path} cannot be read: ${(error as Error).message}`);
  }
  try {
    const secretKey = fromBase64url(contents.secretKey);
    const publicKey = nodeSuite.ed25519PublicKey(secretKey);
    if (toBase64url(publicKey) !== contents.publicKey) throw new Error('mismatch');
    return { secretKey, publicKey };
  } catch {
    throw new UserKeyError(
      `The user key at ${path} is damaged: its public key does not match its secret key.`,
    );
  }
}
