// The user key file of `deadrop user init`, read and written alike by the CLI and the /box page: one identity for both.
import { fromBase64url, toBase64url } from '../e2e/encoding.js';
import type { CipherSuite, RawKeyPair } from '../e2e/suite.js';

/** The file's JSON: an Ed25519 key pair, base64url, the public key kept to notice a damaged file. */
export interface UserKeyFile {
  v: 1;
  type: 'ed25519';
  publicKey: string;
  secretKey: string;
}

/** A key file that cannot be used; the message says why. */
export class UserKeyFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserKeyFileError';
  }
}

/** The file's text for `keys`, as `deadrop user init` writes it. */
export function formatUserKeyFile(keys: RawKeyPair): string {
  const contents: UserKeyFile = {
    v: 1,
    type: 'ed25519',
    publicKey: toBase64url(keys.publicKey),
    secretKey: toBase64url(keys.secretKey),
  };
  return `${JSON.stringify(contents, null, 2)}\n`;
}

/** The key pair in a key file's text; the public key is derived again, so that a damaged file is refused. */
export function parseUserKeyFile(text: string, suite: CipherSuite): RawKeyPair {
  let contents: Partial<UserKeyFile>;
  try {
    contents = JSON.parse(text) as Partial<UserKeyFile>;
  } catch (error) {
    throw new UserKeyFileError(`it is not JSON (${(error as Error).message})`);
  }
  if (contents?.type !== 'ed25519' || typeof contents.secretKey !== 'string') {
    throw new UserKeyFileError('it is not a user key file ("deadrop user init" makes one)');
  }
  try {
    const secretKey = fromBase64url(contents.secretKey);
    if (secretKey.length !== 32) throw new Error('length');
    const publicKey = suite.ed25519PublicKey(secretKey);
    if (toBase64url(publicKey) !== contents.publicKey) throw new Error('mismatch');
    return { secretKey, publicKey };
  } catch {
    throw new UserKeyFileError('it is damaged: its public key does not match its secret key');
  }
}
