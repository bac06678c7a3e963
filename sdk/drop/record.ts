// The record a drop publishes at its key: the link check, the password's Argon2id parameters and the sealed
// manifest; a receiver reads it (it is never consumed) to prove the link and the password before anything burns.
import { argon2idAsync } from '@noble/hashes/argon2.js';
import { concatBytes } from '@noble/hashes/utils.js';
import {
  deriveDropKey,
  deriveLinkCheck,
  openRecord,
  type SealedRecord,
  sealRecord,
} from '../e2e/drop-chunks.js';
import { fromBase64url, toBase64url } from '../e2e/encoding.js';
import type { CipherSuite } from '../e2e/suite.js';
import { type Argon2Params, chunkCount, DropError, type DropManifest } from './common.js';

/** RFC 9106 §4, second recommended option: t=3, p=4, 64 MiB; about a second in JavaScript. */
export const DEFAULT_ARGON2: Argon2Params = { t: 3, m: 65_536, p: 4 };
/** Bounds on the parameters a receiver accepts, so that a forged record cannot freeze a phone's page. */
const MAX_ARGON2: Argon2Params = { t: 8, m: 262_144, p: 16 };

/** The manifest as sealed: with the whole file's SHA-256 once the sender has read the whole file. */
export interface SealedManifestValue extends DropManifest {
  v: 2;
  sha256?: string;
}

/** What the drop's key holds. A fetched drop's record keeps only `v`, `link` and `fetched`. */
export interface DropRecord {
  v: 2;
  /** base64url of the link check: a receiver with a mistyped link learns it here, and nothing burns. */
  link: string;
  password?: Argon2Params & { kdf: 'argon2id'; salt: string };
  manifest?: SealedRecord;
  /** When a receiver had the whole drop (ms since the epoch): the drop is burned. */
  fetched?: number;
}

const stretch = (password: string, salt: Uint8Array, params: Argon2Params) =>
  argon2idAsync(password.normalize('NFC'), salt, { t: params.t, m: params.m, p: params.p, dkLen: 32 });

/** The key that seals everything of a drop: from its link's secret and, when it has one, its password. */
async function keyOf(
  record: Pick<DropRecord, 'password'>,
  linkSecret: Uint8Array,
  password: string | undefined,
  publicKey: string,
  cipher: CipherSuite,
): Promise<Uint8Array> {
  if (!record.password) return deriveDropKey(linkSecret, publicKey, cipher);
  const stretched = await stretch(password ?? '', fromBase64url(record.password.salt), record.password);
  return deriveDropKey(concatBytes(linkSecret, stretched), publicKey, cipher);
}

/** A new drop's record (without its manifest yet) and its key. */
export async function createRecord(
  linkSecret: Uint8Array,
  publicKey: string,
  cipher: CipherSuite,
  password?: string,
  argon2: Argon2Params = DEFAULT_ARGON2,
): Promise<{ record: DropRecord; key: Uint8Array }> {
  const record: DropRecord = { v: 2, link: toBase64url(deriveLinkCheck(linkSecret, publicKey, cipher)) };
  if (password) record.password = { kdf: 'argon2id', ...argon2, salt: toBase64url(cipher.randomBytes(16)) };
  return { record, key: await keyOf(record, linkSecret, password, publicKey, cipher) };
}

/** The record with `manifest` sealed in it. */
export const withManifest = (
  record: DropRecord,
  key: Uint8Array,
  publicKey: string,
  manifest: SealedManifestValue,
  cipher: CipherSuite,
): DropRecord => ({ ...record, manifest: sealRecord(key, publicKey, 'manifest', manifest, cipher) });

const tampered = () =>
  new DropError('tampered', 'The record of this drop is not valid; ask the sender for a new drop.');

/** Checks the shape of what the drop's key holds. */
export function checkRecord(value: unknown): DropRecord {
  const record = value as DropRecord | null;
  if (record?.v !== 2 || typeof record.link !== 'string') {
    throw new DropError(
      'tampered',
      'The key of this link holds no drop this version of deadrop can open; ask the sender for a new drop.',
    );
  }
  const password = record.password;
  if (password !== undefined) {
    const within = (name: keyof Argon2Params) =>
      Number.isSafeInteger(password[name]) && password[name] >= 1 && password[name] <= MAX_ARGON2[name];
    let salt: Uint8Array | undefined;
    try {
      salt = fromBase64url(password.salt);
    } catch {}
    if (password.kdf !== 'argon2id' || !within('t') || !within('m') || !within('p') || salt?.length !== 16)
      throw tampered();
  }
  return record;
}

function checkManifest(value: unknown): SealedManifestValue {
  const m = value as SealedManifestValue;
  const valid =
    m?.v === 2 &&
    typeof m.name === 'string' &&
    typeof m.type === 'string' &&
    (m.sha256 === undefined || (typeof m.sha256 === 'string' && /^[0-9a-f]{64}$/.test(m.sha256))) &&
    Number.isSafeInteger(m.size) &&
    m.size >= 0 &&
    Number.isSafeInteger(m.chunkSize) &&
    m.chunkSize >= 1 &&
    m.chunks === chunkCount(m.size, m.chunkSize);
  if (!valid) throw new DropError('tampered', 'The manifest of this drop is not valid.');
  return m;
}

/** The manifest sealed in `record`; a DropError `tampered` when it does not open under `key`. */
export function openManifestOf(
  record: DropRecord,
  key: Uint8Array,
  publicKey: string,
  cipher: CipherSuite,
): SealedManifestValue {
  if (!record.manifest) throw tampered();
  return checkManifest(openRecord(key, publicKey, 'manifest', record.manifest, cipher));
}

/**
 * Proves the link, then the password, against the record; reads nothing more from the relay, so a wrong
 * link or password burns nothing. Answers the drop's key and manifest.
 */
export async function unlockRecord(
  record: DropRecord,
  linkSecret: Uint8Array,
  publicKey: string,
  password: string | undefined,
  cipher: CipherSuite,
): Promise<{ key: Uint8Array; manifest: SealedManifestValue }> {
  if (toBase64url(deriveLinkCheck(linkSecret, publicKey, cipher)) !== record.link) {
    throw new DropError(
      'bad_link',
      'This link does not open the drop at its key: a character of it is wrong. Nothing was fetched, so the right link still works.',
    );
  }
  if (record.password && !password) {
    throw new DropError(
      'password_required',
      'This drop is protected by a password; give it to open the drop.',
    );
  }
  const key = await keyOf(record, linkSecret, password, publicKey, cipher);
  try {
    return { key, manifest: openManifestOf(record, key, publicKey, cipher) };
  } catch (error) {
    if (record.password) {
      throw new DropError('wrong_password', 'The password is wrong; nothing was fetched, so try again.');
    }
    throw error instanceof DropError
      ? error
      : new DropError('tampered', 'The manifest of this drop does not open: it was tampered with.');
  }
}
