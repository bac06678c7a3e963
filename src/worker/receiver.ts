// What the receivers share: the outcome of a request, and the pipe ends files travel through.
import type { Readable } from 'node:stream';
import { fromBase64url } from '../../sdk/crypto.js';
import { isRecord } from './config-fields.js';
import { type Answer, WorkerError } from './protocol.js';

/** A receiver's result: the answer, and work to do once it is sent (or not: `delivered` false). */
export interface Outcome {
  answer: Answer;
  after?: (delivered: boolean) => Promise<void>;
}

/** The relay's pipe, as the worker uses it for files (sdk pipeSend / pipeReceive). */
export interface PipeEnds {
  /** Streams `body` to `/pipe/<key>`; resolves once all of it is through. */
  send(key: string, body: Readable, signal: AbortSignal): Promise<void>;
  /** What the other side streams to `/pipe/<key>`, once it is there. */
  receive(key: string, signal: AbortSignal): Promise<Readable>;
}

/** The `reply` of a transfer: where the pipe is, and the key its frames are sealed with. */
export function readPipeReply(reply: unknown): { pipe: string; key: Uint8Array } {
  if (isRecord(reply) && typeof reply.pipe === 'string' && /^[\w-]{16,64}$/.test(reply.pipe)) {
    try {
      const key = fromBase64url(String(reply.key));
      if (key.length === 32) return { pipe: reply.pipe, key };
    } catch {
      // Reported below like any other bad reply.
    }
  }
  throw new WorkerError('bad_request', 'A transfer needs a pipe key and a 32-byte frame key in its reply.');
}

export const ok = <T>(result: T): Outcome => ({ answer: { ok: true, result } });
