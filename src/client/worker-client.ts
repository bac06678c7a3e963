// The worker client of sdk/box/ on Node's native cipher suite: what `deadrop call` and the tests use.
import type { WorkerAddress } from '../../sdk/box/worker-client.js';
import * as shared from '../../sdk/box/worker-client.js';
import { nodeSuite } from '../../sdk/e2e/native-suite.js';
import type { RawKeyPair } from '../../sdk/e2e/suite.js';
import type { Ticket } from '../../sdk/e2e/ticket.js';

export {
  AnswerError,
  DEFAULT_TIMEOUT_SECONDS,
  DescriptorError,
  type DetachOptions,
  type RequestOptions,
  type WorkerClient,
} from '../../sdk/box/worker-client.js';
export { checkDescriptor } from '../../sdk/e2e/descriptor-check.js';

export interface ConnectOptions {
  user: RawKeyPair;
  fetch?: typeof fetch;
}

/** Reads the worker's descriptor at `address` and checks it; throws a DescriptorError if it is not that worker. */
export const connectWorker = (address: string | WorkerAddress, connect: ConnectOptions) =>
  shared.connectWorker(address, { ...connect, suite: nodeSuite });

/** The answer of a detached request, or undefined when none came within `waitSeconds`. */
export const fetchTicketAnswer = (
  ticket: Ticket,
  options: { user: RawKeyPair; waitSeconds: number; signal?: AbortSignal; fetch?: typeof fetch },
) => shared.fetchTicketAnswer(ticket, { ...options, suite: nodeSuite });
