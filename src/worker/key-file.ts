// The worker's key file: its X25519 key pair, its fingerprint and its relay key pair, made on first start (mode 0600).
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fromBase64url, toBase64url } from '../../sdk/e2e/encoding.js';
import { generateWorkerKeys } from '../../sdk/e2e/envelope.js';
import { fingerprint, verifyFingerprint } from '../../sdk/e2e/fingerprint.js';
import { nodeSuite } from '../../sdk/e2e/native-suite.js';
import type { RawKeyPair } from '../../sdk/e2e/suite.js';
import type { KeyPair } from '../../sdk/index.js';

/** X25519(secret, 9) is the public key of `secret`. */
const X25519_BASE_POINT = Uint8Array.from({ length: 32 }, (_, at) => (at === 0 ? 9 : 0));

/** Who the worker is: its keys, its id (the fingerprint) and the relay key pair it is reached at. */
export interface WorkerIdentity {
  keys: RawKeyPair;
  id: string;
  level: number;
  counter: number;
  relayKeys: KeyPair;
}

interface KeyFileContents {
  v: 1;
  secretKey: string;
  publicKey: string;
  level: number;
  length: number;
  counter: number;
  id: string;
  relay?: KeyPair;
}

/** A key file that exists but cannot be used: the sentence says why. */
export class KeyFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyFileError';
  }
}

/** Writes the file whole or not at all, readable by its owner only. */
async function writeKeyFile(path: string, contents: KeyFileContents): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(temporary, `${JSON.stringify(contents, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  await rename(temporary, path);
}

async function readKeyFile(path: string): Promise<KeyFileContents | undefined> {
  let source: string;
  try {
    source = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new KeyFileError(`The key file ${path} cannot be read (${(error as NodeJS.ErrnoException).code}).`);
  }
  let contents: KeyFileContents;
  try {
    contents = JSON.parse(source) as KeyFileContents;
    const secretKey = fromBase64url(contents.secretKey);
    if (
      contents.v !== 1 ||
      toBase64url(nodeSuite.x25519(secretKey, X25519_BASE_POINT)) !== contents.publicKey
    )
      throw new Error();
  } catch {
    throw new KeyFileError(
      `The key file ${path} is damaged (not JSON, or its keys do not match). Move it away to make a new one.`,
    );
  }
  return contents;
}

/**
 * Opens the worker's identity from `path`, making what is missing: a key pair (first start), the id for the
 * configured fingerprint level and length (first start, or when they changed), and a relay key pair from
 * `issueRelayKeys` (first start, or when `renewRelayKeys` says the relay no longer knows the old one).
 * Warns through `warn` when the file can be read by others, and makes it 0600.
 */
export async function openIdentity(
  path: string,
  options: { level: number; length: number },
  issueRelayKeys: () => Promise<KeyPair>,
  warn: (message: string) => void,
): Promise<WorkerIdentity> {
  let contents = await readKeyFile(path);
  let changed = false;
  if (contents === undefined) {
    const keys = generateWorkerKeys(nodeSuite);
    const { id, counter } = fingerprint(keys.publicKey, options.level, options.length, nodeSuite);
    contents = {
      v: 1,
      secretKey: toBase64url(keys.secretKey),
      publicKey: toBase64url(keys.publicKey),
      level: options.level,
      length: options.length,
      counter,
      id,
    };
    changed = true;
  } else {
    const mode = (await stat(path)).mode & 0o777;
    if (mode & 0o077) {
      warn(`The key file ${path} was readable by others (mode ${mode.toString(8)}); it is now 0600.`);
      await chmod(path, 0o600);
    }
  }
  const publicKey = fromBase64url(contents.publicKey);
  if (
    contents.level !== options.level ||
    contents.length !== options.length ||
    !verifyFingerprint(publicKey, contents.id, contents.level, contents.counter, nodeSuite)
  ) {
    const { id, counter } = fingerprint(publicKey, options.level, options.length, nodeSuite);
    contents = { ...contents, level: options.level, length: options.length, id, counter };
    changed = true;
  }
  if (!contents.relay) {
    contents = { ...contents, relay: await issueRelayKeys() };
    changed = true;
  }
  if (changed) await writeKeyFile(path, contents);
  return {
    keys: { secretKey: fromBase64url(contents.secretKey), publicKey },
    id: contents.id,
    level: contents.level,
    counter: contents.counter,
    relayKeys: contents.relay as KeyPair,
  };
}

/** Replaces the relay key pair kept in the key file (the relay's secret changed). */
export async function replaceRelayKeys(path: string, relay: KeyPair): Promise<void> {
  const contents = await readKeyFile(path);
  if (!contents) throw new KeyFileError(`The key file ${path} is gone.`);
  await writeKeyFile(path, { ...contents, relay });
}
