// Tickets of detached requests: where the answer will be and how to open it, with no secret in them.

import { fromBase64url, toBase64url, utf8 } from './encoding.js';
import { responseKeyOf } from './envelope.js';
import type { CipherSuite } from './suite.js';

// A detached request's ephemeral X25519 key is derived from the user's secret key and the request id, so the
// response key can be derived again later by the same user, and nobody else: a ticket that leaks (a shell
// history, a log) opens nothing. The rid is random per request, so no ephemeral key is ever used twice.

const PREFIX = 'dt1.';
const EPHEMERAL_INFO = utf8('deadrop/ticket/1');

/** What a ticket holds: the worker, the request, when it expires, and which command it was (to print its answer). */
export interface Ticket {
  /** The relay's base URL. */
  relay: string;
  /** The worker's relay public key, where its answers are read. */
  publicKey: string;
  /** The worker's id (fingerprint). */
  id: string;
  /** The worker's X25519 public key, base64url, the request was sealed to. */
  workerKey: string;
  /** The request id: the uid its answer is left at. */
  rid: string;
  /** Seconds since the epoch after which the worker no longer carries the request out. */
  exp: number;
  /** The command as its sender named it (for instance "fs list" or "exec"), to show the answer alike. */
  command: string;
}

/** A text that is not a ticket; the message says what is expected. */
export class TicketError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TicketError';
  }
}

/** The ephemeral X25519 secret key of the detached request `rid` of the user with `userSecretKey`. */
export const ticketEphemeralKey = (userSecretKey: Uint8Array, rid: string, suite: CipherSuite): Uint8Array =>
  suite.hkdf(userSecretKey, utf8(rid), EPHEMERAL_INFO, 32);

/** The key that opens the answer of `ticket`, derived again from the user's secret key. */
export function ticketResponseKey(ticket: Ticket, userSecretKey: Uint8Array, suite: CipherSuite): Uint8Array {
  return responseKeyOf(
    ticketEphemeralKey(userSecretKey, ticket.rid, suite),
    fromBase64url(ticket.workerKey),
    suite,
  );
}

/** The ticket as one line of text: `dt1.` and base64url JSON. */
export function formatTicket(ticket: Ticket): string {
  const { relay, publicKey, id, workerKey, rid, exp, command } = ticket;
  const json = JSON.stringify({ r: relay, p: publicKey, i: id, k: workerKey, q: rid, e: exp, c: command });
  return PREFIX + toBase64url(utf8(json));
}

/** Reads a ticket that {@link formatTicket} made. */
export function parseTicket(text: string): Ticket {
  const bad = new TicketError(
    'A ticket is the last line "deadrop call --detach" printed, starting with "dt1."; this is not one.',
  );
  const trimmed = text.trim();
  if (!trimmed.startsWith(PREFIX)) throw bad;
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(fromBase64url(trimmed.slice(4))));
  } catch {
    throw bad;
  }
  const { r, p, i, k, q, e, c } = record ?? {};
  if (
    typeof r !== 'string' ||
    !/^https?:\/\//.test(r) ||
    typeof p !== 'string' ||
    !/^[\w-]{16,64}$/.test(p) ||
    typeof i !== 'string' ||
    typeof k !== 'string' ||
    typeof q !== 'string' ||
    !/^[\w-]{8,48}$/.test(q) ||
    typeof e !== 'number' ||
    typeof c !== 'string'
  ) {
    throw bad;
  }
  return { relay: r, publicKey: p, id: i, workerKey: k, rid: q, exp: e, command: c };
}
