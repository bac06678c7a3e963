// The worker protocol both sides share (DESIGN §7): request types, descriptor, pipe replies, answers and their parts.
import { fromBase64url, toBase64url } from './encoding.js';
import { openResponse, type ResponseEnvelope, sealResponse } from './envelope.js';
import type { CipherSuite } from './suite.js';

/** The file operations a worker may offer; each is enabled in its config and granted per user. */
export const FS_OPERATIONS = [
  'list',
  'stat',
  'find',
  'grep',
  'download',
  'upload',
  'mkdir',
  'delete',
] as const;
export type FsOperation = (typeof FS_OPERATIONS)[number];

/**
 * The request type URNs, one per file operation, one for commands, one for wake-on-LAN, and one that asks the
 * worker what the user may use there (its answer is a {@link WorkerOffer}).
 */
export const REQUEST_TYPES = {
  fs: (operation: FsOperation) => `urn:deadrop:fs:${operation}`,
  exec: 'urn:deadrop:exec',
  wol: 'urn:deadrop:wol',
  info: 'urn:deadrop:info',
} as const;

/** What a request type URN asks for, or undefined for a type this protocol does not know. */
export type RequestKind = { receiver: 'fs'; operation: FsOperation } | { receiver: 'exec' | 'wol' | 'info' };

/** Reads a request type URN. */
export function parseRequestType(typ: string): RequestKind | undefined {
  if (typ === REQUEST_TYPES.exec) return { receiver: 'exec' };
  if (typ === REQUEST_TYPES.wol) return { receiver: 'wol' };
  if (typ === REQUEST_TYPES.info) return { receiver: 'info' };
  const operation = /^urn:deadrop:fs:([a-z]+)$/.exec(typ)?.[1];
  return FS_OPERATIONS.includes(operation as FsOperation)
    ? { receiver: 'fs', operation: operation as FsOperation }
    : undefined;
}

/** What a worker publishes at its private path (key-value mode); users check `fingerprint(pk) == id`. */
export interface Descriptor {
  v: 1;
  id: string;
  /** The worker's X25519 public key, base64url. */
  pk: string;
  level: number;
  counter: number;
  types: string[];
  /** Seconds since the epoch after which the worker is to be taken as gone. */
  exp: number;
  /**
   * The relay's data lifetime (DEADROP_TTL) in seconds, as the worker read it: how long a request may wait there
   * for a stopped worker, and an answer for its reader. Older workers leave it out.
   */
  ttl?: number;
}

/** A parameter of a command, as {@link WorkerOffer} describes it: the form a value must have. */
export interface OfferedParam {
  name: string;
  /** The regular expression (anchored by the worker) a value must match. */
  pattern?: string;
  /** The values allowed. */
  values?: string[];
  default?: string;
}

/** The answer to `urn:deadrop:info`: what this worker lets the asking user do, and nothing else. */
export interface WorkerOffer {
  /** The worker's id. */
  id: string;
  /** The file operations the user may use (offered and granted), and the roots; absent without any. */
  fs?: { operations: FsOperation[]; roots: string[] };
  /** The commands the user may run, with their parameters. */
  exec: { name: string; params: OfferedParam[] }[];
  /** The wake-on-LAN targets the user may wake. */
  wol: string[];
  /** The longest a request may live at this worker, in seconds (a detached one waits at most this long). */
  maxRequestSeconds: number;
}

/** What a download answers: a file's size, or a folder sent as a tar archive with its file count and bytes. */
export type DownloadAnswer =
  | { path: string; type?: 'file'; size: number; mtime: number }
  | {
      path: string;
      type: 'dir';
      format: 'tar';
      name: string;
      files: number;
      bytes: number;
      estimate: number;
    };

/** The `reply` of a transfer request: the private key of a fresh relay key pair and the frame key. */
export interface PipeReply {
  pipe: string;
  key: string;
}

/** The `reply` of a transfer: where the pipe is, and the key its frames are sealed with; a WorkerError if not. */
export function readPipeReply(reply: unknown): { pipe: string; key: Uint8Array } {
  const { pipe, key } = (reply ?? {}) as Partial<PipeReply>;
  if (typeof pipe === 'string' && /^[\w-]{16,64}$/.test(pipe) && typeof key === 'string') {
    try {
      const bytes = fromBase64url(key);
      if (bytes.length === 32) return { pipe, key: bytes };
    } catch {
      // Reported below like any other bad reply.
    }
  }
  throw new WorkerError('bad_request', 'A transfer needs a pipe key and a 32-byte frame key in its reply.');
}

/** Stable error codes of a refused or failed request. */
export type AnswerErrorCode =
  | 'bad_request'
  | 'forbidden'
  | 'not_found'
  | 'expired'
  | 'unsupported'
  | 'conflict'
  | 'too_large'
  | 'timeout'
  | 'failed';

/** The worker's answer to one request. */
export type Answer<T = unknown> =
  | { ok: true; result: T }
  | { ok: false; error: { code: AnswerErrorCode; message: string } };

/** An error a receiver throws to answer a request with `code` and a sentence. */
export class WorkerError extends Error {
  /**
   * @param code The stable code the user's client sees.
   * @param message A sentence saying what was wrong.
   */
  constructor(
    readonly code: AnswerErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'WorkerError';
  }
}

/** The answer of a WorkerError; anything else is a bare "failed", so that no local detail leaks. */
export function answerOfError(error: unknown): Answer<never> {
  if (error instanceof WorkerError) return { ok: false, error: { code: error.code, message: error.message } };
  return { ok: false, error: { code: 'failed', message: 'The worker could not carry out the request.' } };
}

/**
 * Plaintext bytes per part: base64 inside the sealed JSON, base64 of the ciphertext and the envelope fields
 * keep a part below the relay's 10 KiB body limit (DEADROP_BODY_LIMIT's default).
 */
const PART_BYTES = 5000;
/** An answer whose envelope is longer goes in parts. */
const MAX_INLINE_CHARS = 9000;
/** About 1.2 MiB of answer: results are capped well below it, so more means a bug, not a big directory. */
export const MAX_PARTS = 256;

/** One value to leave at the worker's one-to-one path. */
export interface AnswerMessage {
  uid: string;
  envelope: ResponseEnvelope;
}

/**
 * Seals `answer` to request `rid`: one envelope at `<rid>`, or, when too large, parts at `<rid>.1`…`<rid>.n`
 * followed by `{parts: n}` at `<rid>`. Each part is sealed for its own uid, so parts cannot be swapped.
 */
export function sealAnswer(
  responseKey: Uint8Array,
  rid: string,
  answer: Answer,
  suite: CipherSuite,
): AnswerMessage[] {
  const whole = sealResponse(responseKey, rid, answer, suite);
  if (JSON.stringify(whole).length <= MAX_INLINE_CHARS) return [{ uid: rid, envelope: whole }];
  const bytes = new TextEncoder().encode(JSON.stringify(answer));
  const count = Math.ceil(bytes.length / PART_BYTES);
  if (count > MAX_PARTS) {
    const tooLarge: Answer = {
      ok: false,
      error: { code: 'too_large', message: 'The answer is too large; narrow the request.' },
    };
    return [{ uid: rid, envelope: sealResponse(responseKey, rid, tooLarge, suite) }];
  }
  const messages: AnswerMessage[] = [];
  for (let index = 1; index <= count; index++) {
    const part = toBase64url(bytes.subarray((index - 1) * PART_BYTES, index * PART_BYTES));
    messages.push({
      uid: `${rid}.${index}`,
      envelope: sealResponse(responseKey, `${rid}.${index}`, part, suite),
    });
  }
  messages.push({ uid: rid, envelope: sealResponse(responseKey, rid, { parts: count }, suite) });
  return messages;
}

/**
 * Opens the answer at `<rid>` and, when it announces parts, takes and joins them with `take(uid)`.
 * Throws a SealError when anything was changed, and an Error when a part is missing.
 */
export async function openAnswer(
  responseKey: Uint8Array,
  rid: string,
  envelope: unknown,
  take: (uid: string) => Promise<unknown>,
  suite: CipherSuite,
): Promise<Answer> {
  const first = openResponse<Answer | { parts: number }>(responseKey, rid, envelope, suite);
  if (!('parts' in first)) return first;
  const count = first.parts;
  if (!Number.isInteger(count) || count < 1 || count > MAX_PARTS) {
    throw new Error('The answer announces an impossible number of parts.');
  }
  const parts = await Promise.all(
    Array.from({ length: count }, async (_, at) => {
      const uid = `${rid}.${at + 1}`;
      const sealed = await take(uid);
      if (sealed === undefined) throw new Error(`Part ${at + 1} of ${count} of the answer is missing.`);
      return fromBase64url(openResponse<string>(responseKey, uid, sealed, suite));
    }),
  );
  const joined = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.length;
  }
  return JSON.parse(new TextDecoder().decode(joined)) as Answer;
}
