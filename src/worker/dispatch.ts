// Routes an admitted request to its receiver, if the worker offers it and the user is granted it.
import type { OpenedRequest } from '../../sdk/e2e/envelope.js';
import {
  answerOfError,
  parseRequestType,
  REQUEST_TYPES,
  WorkerError,
  type WorkerOffer,
} from '../../sdk/e2e/protocol.js';
import type { UserGrant } from './config.js';
import { isRecord } from './config-fields.js';
import type { ExecReceiver } from './exec-receiver.js';
import type { FsReceiver } from './fs-receiver.js';
import { type Outcome, ok } from './receiver.js';
import { MAX_REQUEST_LIFETIME_SECONDS } from './request-gate.js';
import type { WolReceiver } from './wol-receiver.js';

/** The receivers a worker's config enables. */
export interface Receivers {
  fs?: FsReceiver;
  exec?: ExecReceiver;
  wol?: WolReceiver;
}

/** The request types the receivers offer, for the descriptor; every worker answers `info`. */
export function offeredTypes(receivers: Receivers): string[] {
  return [
    REQUEST_TYPES.info,
    ...(receivers.fs?.operations.map(REQUEST_TYPES.fs) ?? []),
    ...(receivers.exec ? [REQUEST_TYPES.exec] : []),
    ...(receivers.wol ? [REQUEST_TYPES.wol] : []),
  ];
}

/** What `user` may use on this worker: the offered operations, commands and targets granted to them, no more. */
export function offerFor(user: UserGrant, receivers: Receivers, id: string): WorkerOffer {
  const operations = receivers.fs?.operations.filter((operation) => user.fs.has(operation)) ?? [];
  return {
    id,
    ...(receivers.fs && operations.length > 0 && { fs: { operations, roots: receivers.fs.roots } }),
    exec: receivers.exec?.describe().filter((command) => user.exec.has(command.name)) ?? [],
    wol: receivers.wol?.names.filter((name) => user.wol.has(name)) ?? [],
    maxRequestSeconds: MAX_REQUEST_LIFETIME_SECONDS,
  };
}

const forbidden = (user: UserGrant, what: string) =>
  new WorkerError('forbidden', `The user "${user.name}" may not use ${what} on this worker.`);

const field = (body: unknown, name: string): unknown => (isRecord(body) ? body[name] : undefined);

async function route(
  request: OpenedRequest,
  user: UserGrant,
  receivers: Receivers,
  signal: AbortSignal,
  id: string,
) {
  const kind = parseRequestType(request.header.typ);
  if (kind?.receiver === 'info') return ok(offerFor(user, receivers, id));
  const unsupported = new WorkerError('unsupported', `This worker does not offer ${request.header.typ}.`);
  if (kind?.receiver === 'fs') {
    if (!receivers.fs?.operations.includes(kind.operation)) {
      throw new WorkerError(
        'unsupported',
        `This worker does not offer the file operation "${kind.operation}".`,
      );
    }
    if (!user.fs.has(kind.operation)) throw forbidden(user, `the file operation "${kind.operation}"`);
    return receivers.fs.handle(kind.operation, request.body, request.reply, signal);
  }
  if (kind?.receiver === 'exec') {
    if (!receivers.exec) throw unsupported;
    const name = field(request.body, 'name');
    // A command that does not exist is said to be missing, not forbidden: the user is in the auth list.
    if (typeof name !== 'string' || !receivers.exec.names.includes(name))
      throw new WorkerError('not_found', `The worker has no command named ${JSON.stringify(name)}.`);
    if (!user.exec.has(name)) throw forbidden(user, `the command ${JSON.stringify(name)}`);
    return ok(await receivers.exec.run(name, field(request.body, 'params'), signal));
  }
  if (kind?.receiver === 'wol') {
    if (!receivers.wol) throw unsupported;
    const target = field(request.body, 'target');
    if (typeof target !== 'string' || !receivers.wol.names.includes(target))
      throw new WorkerError(
        'not_found',
        `The worker has no wake-on-LAN target named ${JSON.stringify(target)}.`,
      );
    if (!user.wol.has(target)) throw forbidden(user, `the target ${JSON.stringify(target)}`);
    return ok(await receivers.wol.wake(target));
  }
  throw unsupported;
}

/**
 * Carries out an admitted request. Every failure becomes an answer: a WorkerError with its code and
 * sentence, anything else a bare "failed" (reported through `onError`), so that nothing local leaks.
 */
export async function carryOut(
  request: OpenedRequest,
  user: UserGrant,
  receivers: Receivers,
  signal: AbortSignal,
  onError: (error: unknown) => void,
  id = '',
): Promise<Outcome> {
  try {
    return await route(request, user, receivers, signal, id);
  } catch (error) {
    if (!(error instanceof WorkerError)) onError(error);
    return { answer: answerOfError(error) };
  }
}
