// What a request must pass before a receiver sees it: it opens, is the user's, is fresh, is new, and is for us.
import { toBase64url } from '../../sdk/e2e/encoding.js';
import { type OpenedRequest, openRequest } from '../../sdk/e2e/envelope.js';
import { nodeSuite } from '../../sdk/e2e/native-suite.js';
import { WorkerError } from '../../sdk/e2e/protocol.js';
import { SealError } from '../../sdk/e2e/seal-error.js';
import type { RawKeyPair } from '../../sdk/e2e/suite.js';
import type { UserGrant } from './config.js';
import type { ReplayCache } from './replay-cache.js';

/** Why a request was refused, for the worker's log. */
export type Refusal =
  | 'malformed'
  | 'tampered'
  | 'replayed'
  | 'expired'
  | 'early'
  | 'too-long'
  | 'busy'
  | 'wrong-worker'
  | 'unknown-user';

/** The gate's verdict. A refused request that opened carries the error to answer it with. */
export type Verdict =
  | { admitted: true; request: OpenedRequest; user: UserGrant }
  | {
      admitted: false;
      reason: Refusal;
      detail?: string;
      rid?: string;
      answer?: { request: OpenedRequest; error: WorkerError };
    };

export interface GateContext {
  worker: RawKeyPair;
  id: string;
  replay: ReplayCache;
  users: ReadonlyMap<string, UserGrant>;
  nowMs: number;
}

/** Clocks of users and worker may differ this much. */
const CLOCK_SKEW_SECONDS = 60;
/**
 * A request may wait this long for a stopped worker (`deadrop call --detach`): a week, beyond any usual relay TTL
 * (DEADROP_TTL, a day by default), which is what really bounds it. Its id is remembered that long against replay.
 */
export const MAX_REQUEST_LIFETIME_SECONDS = 7 * 24 * 3600;
/** A rid is the uid of the answer at the relay, and `<rid>.<n>` of its parts: both must be valid uids. */
const RID_PATTERN = /^[A-Za-z0-9_-]{8,48}$/;

/**
 * Opens `item` (anything drained from the queue) and checks it. Nothing that fails to open or is replayed
 * gets an answer: a tampered request has no trustworthy rid, and answering a replay could overwrite the
 * genuine answer still waiting at that rid.
 */
export function checkRequest(item: unknown, context: GateContext): Verdict {
  let request: OpenedRequest;
  try {
    request = openRequest(item, context.worker, nodeSuite);
  } catch (error) {
    const reason = error instanceof SealError ? 'tampered' : 'malformed';
    return { admitted: false, reason, detail: (error as Error).message };
  }
  const { header } = request;
  if (!RID_PATTERN.test(header.rid)) return { admitted: false, reason: 'malformed', detail: 'bad rid' };
  const refuse = (reason: Refusal, error: WorkerError): Verdict => ({
    admitted: false,
    reason,
    rid: header.rid,
    answer: { request, error },
  });
  const now = context.nowMs / 1000;
  if (header.exp <= now) {
    return refuse('expired', new WorkerError('expired', 'The request expired before the worker took it.'));
  }
  if (header.iat > now + CLOCK_SKEW_SECONDS) {
    return refuse(
      'early',
      new WorkerError('bad_request', 'The request is dated in the future: check the clock.'),
    );
  }
  if (header.exp - header.iat > MAX_REQUEST_LIFETIME_SECONDS) {
    return refuse(
      'too-long',
      new WorkerError('bad_request', `A request may live at most ${MAX_REQUEST_LIFETIME_SECONDS} s.`),
    );
  }
  if (header.to.toUpperCase() !== context.id) {
    return refuse(
      'wrong-worker',
      new WorkerError('bad_request', 'The request is addressed to another worker.'),
    );
  }
  // Users are checked before their rid is remembered: a stranger's requests, however long-lived, take no room
  // in the replay cache, so they cannot fill it and lock the worker's users out.
  const user = context.users.get(toBase64url(request.userPublicKey));
  if (!user) {
    return refuse(
      'unknown-user',
      new WorkerError('forbidden', "This user key is not in the worker's auth list."),
    );
  }
  const admission = context.replay.admit(header.rid, header.exp, context.nowMs);
  if (admission === 'replayed') return { admitted: false, reason: 'replayed', rid: header.rid };
  if (admission === 'full') {
    return refuse('busy', new WorkerError('failed', 'The worker is busy; try again in a minute.'));
  }
  return { admitted: true, request, user };
}
