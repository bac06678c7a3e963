// The user's side of DESIGN §7 for Node and browsers alike: check the descriptor, send sealed requests, wait for
// and open answers, or leave a request for a stopped worker and fetch its answer later through a ticket.
import { parseAddress, type WorkerAddress } from '../e2e/address.js';

export type { WorkerAddress };

import { checkDescriptor, DescriptorError } from '../e2e/descriptor-check.js';
import { fromBase64url, toBase64url } from '../e2e/encoding.js';
import { sealRequest } from '../e2e/envelope.js';
import { type Answer, type AnswerErrorCode, type Descriptor, openAnswer } from '../e2e/protocol.js';
import type { CipherSuite, RawKeyPair } from '../e2e/suite.js';
import { type Ticket, ticketEphemeralKey, ticketResponseKey } from '../e2e/ticket.js';
import { createClient, type DeadropClient, DeadropError } from '../index.js';

export { DescriptorError };

/** The worker refused or failed the request; `code` is the protocol's stable code. */
export class AnswerError extends Error {
  constructor(
    readonly code: AnswerErrorCode | 'no_answer',
    message: string,
  ) {
    super(message);
    this.name = 'AnswerError';
  }
}

/** Options of one request. */
export interface RequestOptions {
  /** How to reply, sealed and signed with the request (a pipe key pair for a transfer). */
  reply?: unknown;
  /** Seconds the worker may still take the request, and (by default) to wait for its answer. */
  ttlSeconds?: number;
  /** Seconds to wait for the answer; Infinity waits until `signal` aborts. */
  answerSeconds?: number;
  signal?: AbortSignal;
}

/** Options of a detached request. */
export interface DetachOptions {
  /** Seconds the request waits for the worker: at most the relay's TTL and the worker's limit. */
  lifetimeSeconds: number;
  /** The command as the user named it, kept in the ticket to show the answer alike (for instance "fs list"). */
  command: string;
  signal?: AbortSignal;
}

/** A checked connection to one worker. */
export interface WorkerClient {
  readonly address: WorkerAddress;
  readonly descriptor: Descriptor;
  /** The relay the worker is at, for pipes. */
  readonly relay: DeadropClient;
  /** Sends a request and answers the worker's result; throws an AnswerError when it refused or failed. */
  request<T>(typ: string, body: unknown, options?: RequestOptions): Promise<T>;
  /**
   * Leaves a request for the worker without waiting: it carries it out when it next takes requests, within
   * `lifetimeSeconds`. Answers the ticket to fetch the answer with ({@link fetchTicketAnswer}).
   */
  detach(typ: string, body: unknown, options: DetachOptions): Promise<Ticket>;
}

export interface ConnectOptions {
  user: RawKeyPair;
  suite: CipherSuite;
  fetch?: typeof fetch;
  /**
   * A descriptor seen earlier (the page keeps the last one), used when none is published now: a worker stopped
   * for longer than the relay keeps its descriptor can still be left requests. It is checked like a fresh one.
   */
  remembered?: unknown;
}

/** The relay's longest wait (DESIGN §5). */
const MAX_WAIT_SECONDS = 60;
export const DEFAULT_TIMEOUT_SECONDS = 60;
/** A network error while posting: the post is sent again, as the worker drops a second copy as a replay. */
const POST_ATTEMPTS = 3;
const RETRY_DELAY_MS = 200;

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, signal?.aborted ? 0 : ms);
    signal?.addEventListener('abort', done);
  });

/** Waits at `<rid>` of the worker at `publicKey` until a value comes or `deadline` (ms) passes; undefined then. */
async function waitForValue(
  relay: DeadropClient,
  publicKey: string,
  rid: string,
  deadline: number,
  signal?: AbortSignal,
): Promise<unknown> {
  for (;;) {
    const left = (deadline - Date.now()) / 1000;
    if (left <= 0) return undefined;
    try {
      const sealed = await relay.receive(publicKey, rid, {
        wait: Math.min(MAX_WAIT_SECONDS, Math.ceil(left)),
        signal,
      });
      if (sealed !== undefined) return sealed;
    } catch (error) {
      if (signal?.aborted || !(error instanceof DeadropError) || (error.status !== 0 && error.status < 500))
        throw error;
      await sleep(RETRY_DELAY_MS, signal);
    }
  }
}

/** Reads the worker's descriptor at `address` and checks it; throws a DescriptorError if it is not that worker. */
export async function connectWorker(
  address: string | WorkerAddress,
  connect: ConnectOptions,
): Promise<WorkerClient> {
  const { suite } = connect;
  const parsed = typeof address === 'string' ? parseAddress(address) : address;
  const relay = createClient(parsed.relay, connect.fetch ? { fetch: connect.fetch } : {});
  const published = (await relay.read(parsed.publicKey)) ?? connect.remembered;
  if (published === undefined) {
    throw new DescriptorError(
      `No worker is published at ${parsed.relay}: is it running, and is the address right?`,
    );
  }
  const descriptor = checkDescriptor(parsed, published, suite);
  const workerPublicKey = fromBase64url(descriptor.pk);

  const post = async (envelope: unknown, signal?: AbortSignal) => {
    for (let attempt = 1; ; attempt++) {
      try {
        await relay.post(parsed.publicKey, envelope, { signal });
        return;
      } catch (error) {
        if (
          signal?.aborted ||
          !(error instanceof DeadropError) ||
          error.status !== 0 ||
          attempt === POST_ATTEMPTS
        ) {
          throw error;
        }
        await sleep(RETRY_DELAY_MS, signal);
      }
    }
  };

  const open = (rid: string, responseKey: Uint8Array, sealed: unknown, signal?: AbortSignal) =>
    openAnswer(responseKey, rid, sealed, (uid) => relay.receive(parsed.publicKey, uid, { signal }), suite);

  return {
    address: parsed,
    descriptor,
    relay,
    async request<T>(typ: string, body: unknown, options: RequestOptions = {}): Promise<T> {
      const ttlSeconds = options.ttlSeconds ?? DEFAULT_TIMEOUT_SECONDS;
      const { envelope, responseKey } = sealRequest(
        {
          workerPublicKey,
          to: parsed.id,
          typ,
          body,
          user: connect.user,
          reply: options.reply,
          ttlSeconds,
        },
        suite,
      );
      const stop = new AbortController();
      const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
      const deadline = Date.now() + (options.answerSeconds ?? ttlSeconds) * 1000;
      // Waiting starts before the post, so the answer is taken the moment it is left.
      const answering = waitForValue(relay, parsed.publicKey, envelope.rid, deadline, signal);
      answering.catch(() => {});
      try {
        await post(envelope, options.signal);
      } catch (error) {
        stop.abort();
        throw error;
      }
      const sealed = await answering;
      if (sealed === undefined) {
        throw new AnswerError(
          'no_answer',
          `The worker did not answer in time; it may be stopped or busy (its descriptor runs until ${new Date(descriptor.exp * 1000).toISOString()}).`,
        );
      }
      const answer: Answer = await open(envelope.rid, responseKey, sealed, signal);
      if (!answer.ok) throw new AnswerError(answer.error.code, answer.error.message);
      return answer.result as T;
    },
    async detach(typ, body, options) {
      const rid = toBase64url(suite.randomBytes(16));
      const { envelope } = sealRequest(
        {
          workerPublicKey,
          to: parsed.id,
          typ,
          body,
          user: connect.user,
          ttlSeconds: options.lifetimeSeconds,
          rid,
          ephemeralSecretKey: ticketEphemeralKey(connect.user.secretKey, rid, suite),
        },
        suite,
      );
      await post(envelope, options.signal);
      return {
        relay: parsed.relay,
        publicKey: parsed.publicKey,
        id: parsed.id,
        workerKey: descriptor.pk,
        rid,
        exp: envelope.exp,
        command: options.command,
      };
    },
  };
}

/** Options of {@link fetchTicketAnswer}. */
export interface TicketFetchOptions {
  user: RawKeyPair;
  suite: CipherSuite;
  /** Seconds to wait for the answer when it is not there yet (0: look once). */
  waitSeconds: number;
  signal?: AbortSignal;
  fetch?: typeof fetch;
}

/**
 * The answer of a detached request, taken from the relay (it is read once: it is gone afterwards), or undefined
 * when none came within `waitSeconds`. Throws a SealError when the answer does not open with the user's key.
 */
export async function fetchTicketAnswer(
  ticket: Ticket,
  options: TicketFetchOptions,
): Promise<Answer | undefined> {
  const relay = createClient(ticket.relay, options.fetch ? { fetch: options.fetch } : {});
  const deadline = Date.now() + Math.max(options.waitSeconds, 0.001) * 1000;
  const sealed = await waitForValue(relay, ticket.publicKey, ticket.rid, deadline, options.signal);
  if (sealed === undefined) return undefined;
  return openAnswer(
    ticketResponseKey(ticket, options.user.secretKey, options.suite),
    ticket.rid,
    sealed,
    (uid) => relay.receive(ticket.publicKey, uid, { signal: options.signal }),
    options.suite,
  );
}
