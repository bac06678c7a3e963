// The user's side of DESIGN §7: read and check the descriptor, send sealed requests, wait for and open answers.
import { parseAddress, type WorkerAddress } from '../../sdk/e2e/address.js';
import { checkDescriptor, DescriptorError } from '../../sdk/e2e/descriptor-check.js';
import { fromBase64url } from '../../sdk/e2e/encoding.js';
import { sealRequest } from '../../sdk/e2e/envelope.js';
import { nodeSuite } from '../../sdk/e2e/native-suite.js';
import { type Answer, type AnswerErrorCode, type Descriptor, openAnswer } from '../../sdk/e2e/protocol.js';
import type { RawKeyPair } from '../../sdk/e2e/suite.js';
import { createClient, type DeadropClient, DeadropError } from '../../sdk/index.js';
import { sleep } from '../worker/backoff.js';

export { checkDescriptor, DescriptorError };

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

/** A checked connection to one worker. */
export interface WorkerClient {
  readonly address: WorkerAddress;
  readonly descriptor: Descriptor;
  /** The relay the worker is at, for pipes. */
  readonly relay: DeadropClient;
  /** Sends a request and answers the worker's result; throws an AnswerError when it refused or failed. */
  request<T>(typ: string, body: unknown, options?: RequestOptions): Promise<T>;
}

export interface ConnectOptions {
  user: RawKeyPair;
  fetch?: typeof fetch;
}

/** The relay's longest wait (DESIGN §5). */
const MAX_WAIT_SECONDS = 60;
export const DEFAULT_TIMEOUT_SECONDS = 60;
/** A network error while posting: the post is sent again, as the worker drops a second copy as a replay. */
const POST_ATTEMPTS = 3;
const RETRY_DELAY_MS = 200;

/** Reads the worker's descriptor at `address` and checks it; throws a DescriptorError if it is not that worker. */
export async function connectWorker(
  address: string | WorkerAddress,
  connect: ConnectOptions,
): Promise<WorkerClient> {
  const parsed = typeof address === 'string' ? parseAddress(address) : address;
  const relay = createClient(parsed.relay, connect.fetch ? { fetch: connect.fetch } : {});
  const published = await relay.read(parsed.publicKey);
  if (published === undefined) {
    throw new DescriptorError(
      `No worker is published at ${parsed.relay}: is it running, and is the address right?`,
    );
  }
  const descriptor = checkDescriptor(parsed, published, nodeSuite);
  const workerPublicKey = fromBase64url(descriptor.pk);

  /** Waits at `<rid>` until the answer comes or `deadline` (ms) passes. */
  const awaitAnswer = async (
    rid: string,
    responseKey: Uint8Array,
    deadline: number,
    signal?: AbortSignal,
  ) => {
    for (;;) {
      const left = (deadline - Date.now()) / 1000;
      if (left <= 0) {
        throw new AnswerError(
          'no_answer',
          `The worker did not answer in time; it may be stopped or busy (its descriptor runs until ${new Date(descriptor.exp * 1000).toISOString()}).`,
        );
      }
      let sealed: unknown;
      try {
        sealed = await relay.receive(parsed.publicKey, rid, {
          wait: Math.min(MAX_WAIT_SECONDS, Math.ceil(left)),
          signal,
        });
      } catch (error) {
        if (signal?.aborted || !(error instanceof DeadropError) || (error.status !== 0 && error.status < 500))
          throw error;
        await sleep(RETRY_DELAY_MS, signal);
        continue;
      }
      if (sealed !== undefined) {
        return openAnswer(
          responseKey,
          rid,
          sealed,
          (uid) => relay.receive(parsed.publicKey, uid, { signal }),
          nodeSuite,
        );
      }
    }
  };

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
        nodeSuite,
      );
      const stop = new AbortController();
      const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
      const deadline = Date.now() + (options.answerSeconds ?? ttlSeconds) * 1000;
      // Waiting starts before the post, so the answer is taken the moment it is left.
      const answering = awaitAnswer(envelope.rid, responseKey, deadline, signal);
      answering.catch(() => {});
      try {
        await post(envelope, options.signal);
      } catch (error) {
        stop.abort();
        throw error;
      }
      const answer: Answer = await answering;
      if (!answer.ok) throw new AnswerError(answer.error.code, answer.error.message);
      return answer.result as T;
    },
  };
}
