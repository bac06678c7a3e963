// What a drop's sender and receiver share: its link, the sender's token, its manifest and its errors.
import { fromBase64url, toBase64url } from '../e2e/encoding.js';

const LINK_PATTERN = /^([A-Za-z0-9_-]{32})\.([A-Za-z0-9_-]{43})$/;
const OWNER_PATTERN = /^([A-Za-z0-9_-]{32})\.(\d{1,9})$/;

/** The one-to-one uid of a drop's claim: the first fetch takes it, and with it the key that reads the chunks. */
export const CLAIM_UID = 'k';
/** The uid the sender writes once every chunk is on the relay: a chunk missing after that will never come. */
export const UPLOADED_UID = 'u';
export const chunkUid = (index: number) => `c${index}`;

/** Argon2id cost: `t` passes over `m` KiB in `p` lanes. */
export interface Argon2Params {
  t: number;
  m: number;
  p: number;
}

/** What the receiver learns once the drop opens, before anything is fetched. */
export interface DropManifest {
  name: string;
  size: number;
  type: string;
  chunks: number;
  chunkSize: number;
}

/** Why a drop could not be sent or fetched; `code` is stable, the message says what to do. */
export type DropErrorCode =
  /** Not a drop link, or a mistyped one: nothing was fetched. */
  | 'bad_link'
  | 'password_required'
  | 'wrong_password'
  /** Fetched (by whoever came first), revoked or expired. */
  | 'gone'
  /** A chunk is no longer on the relay: this fetch can never complete. */
  | 'missing'
  /** The sender stopped uploading before the drop was whole; what was fetched is kept. */
  | 'stalled'
  | 'tampered'
  | 'file_changed'
  /** The relay cannot hold a drop at all (it takes no blobs). */
  | 'unsupported';

/** A drop that cannot be sent or fetched. Relay and network failures are DeadropErrors. */
export class DropError extends Error {
  /**
   * Whether what a fetch kept is worth keeping: false when the drop can never be fetched whole (gone, a chunk
   * missing, the whole file's hash wrong), true when trying again may succeed (a chunk that did not verify may
   * have been garbled on the way; a stalled sender may come back).
   */
  readonly resumable: boolean;

  /**
   * @param code What went wrong.
   * @param message What went wrong, and what to do.
   * @param resumable See {@link DropError.resumable}; by default false for `gone` and `missing` only.
   */
  constructor(
    readonly code: DropErrorCode,
    message: string,
    resumable = code !== 'gone' && code !== 'missing',
  ) {
    super(message);
    this.name = 'DropError';
    this.resumable = resumable;
  }
}

/** The parts of a drop link: the relay, the drop's public key and the 32-byte secret. */
export interface DropLink {
  relay: string;
  publicKey: string;
  key: Uint8Array;
}

/** `<relay>/drop#<public key>.<secret>`. */
export function formatDropLink(relay: string, publicKey: string, key: Uint8Array): string {
  return `${relay.replace(/\/+$/, '')}/drop#${publicKey}.${toBase64url(key)}`;
}

/** The parts of `<relay>/drop#<public key>.<key>`; anything else is a DropError `bad_link`. */
export function parseDropLink(link: string): DropLink {
  const bad = () =>
    new DropError(
      'bad_link',
      'This is not a drop link; it looks like https://relay.example/drop#<key>.<key>.',
    );
  let url: URL;
  try {
    url = new URL(link.trim());
  } catch {
    throw bad();
  }
  const match = LINK_PATTERN.exec(url.hash.slice(1));
  if (!match || !/\/drop\/?$/.test(url.pathname) || !/^https?:$/.test(url.protocol)) throw bad();
  let key: Uint8Array;
  try {
    key = fromBase64url(match[2] as string);
  } catch {
    throw new DropError(
      'bad_link',
      "This link's key does not decode: a character of it is wrong. Nothing was fetched, so the right link still works.",
    );
  }
  return { relay: url.origin + url.pathname.replace(/\/drop\/?$/, ''), publicKey: match[1] as string, key };
}

/** What the sender keeps to follow and revoke a drop: the private key and the chunk count. */
export interface DropOwner {
  relay: string;
  privateKey: string;
  chunks: number;
}

/** `<private key>.<chunks>`: the owner's token, for `dropStatus` and `revokeDrop`. */
export const formatOwnerToken = (owner: Pick<DropOwner, 'privateKey' | 'chunks'>) =>
  `${owner.privateKey}.${owner.chunks}`;

/** The owner of a drop from its token and relay; a malformed token is a DropError `bad_link`. */
export function parseOwnerToken(token: string, relay: string): DropOwner {
  const match = OWNER_PATTERN.exec(token.trim());
  if (!match) throw new DropError('bad_link', 'A sender token looks like <private key>.<chunk count>.');
  return { relay: relay.replace(/\/+$/, ''), privateKey: match[1] as string, chunks: Number(match[2]) };
}

export const chunkCount = (size: number, chunkSize: number) => Math.max(1, Math.ceil(size / chunkSize));

/** The plaintext length chunk `index` must have. */
export const chunkLength = (manifest: Pick<DropManifest, 'size' | 'chunks' | 'chunkSize'>, index: number) =>
  index < manifest.chunks - 1
    ? manifest.chunkSize
    : manifest.size - manifest.chunkSize * (manifest.chunks - 1);

/** Keeps at most `limit` tasks running; the first failure is thrown by `add` or `finish`. */
export function createWindow(limit: number) {
  const running = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  const settle = async () => {
    await Promise.allSettled(running);
  };
  return {
    async add(task: Promise<void>) {
      const tracked = task.then(
        () => {
          running.delete(tracked);
        },
        (error: unknown) => {
          running.delete(tracked);
          failure ??= { error };
        },
      );
      running.add(tracked);
      while (running.size >= limit && !failure) await Promise.race(running);
      if (failure) {
        await settle();
        throw failure.error;
      }
    },
    async finish() {
      await settle();
      if (failure) throw failure.error;
    },
    settle,
  };
}
