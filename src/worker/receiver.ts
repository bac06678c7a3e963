// What the receivers share: the outcome of a request, and the pipe ends files travel through.
import type { Readable } from 'node:stream';
import type { Answer } from '../../sdk/e2e/protocol.js';

/** A receiver's result: the answer, and work to do once it is sent (or not: `delivered` false). */
export interface Outcome {
  answer: Answer;
  after?: (delivered: boolean) => Promise<void>;
}

/** The relay's pipe, as the worker uses it for files. */
export interface PipeEnds {
  /** Streams `body` (of `length` bytes, when known) to `/pipe/<key>`; resolves once all of it is through. */
  send(key: string, body: Readable, signal: AbortSignal, length?: number): Promise<void>;
  /** What the other side streams to `/pipe/<key>`, once it is there. */
  receive(key: string, signal: AbortSignal): Promise<Readable>;
}

export const ok = <T>(result: T): Outcome => ({ answer: { ok: true, result } });
