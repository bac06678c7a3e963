// A reply deadline for every Redis call: a hung Redis (a stalled VM, a partition) answers 503 rather than
// holding requests, whether one server or one primary of a cluster.

/**
 * How long any command may go unanswered before the caller gives up (a 503): node-redis's own
 * per-command timeout ends when the command is written, and under load a hung primary's socket is never
 * idle, so its socket timeout would not fire. A reply normally takes milliseconds.
 */
export const REPLY_DEADLINE_MS = 2000;

/** Thrown when Redis did not answer within REPLY_DEADLINE_MS; the command may still run. */
export class RedisDeadlineError extends Error {
  constructor() {
    super(`Redis did not answer within ${REPLY_DEADLINE_MS} ms`);
    this.name = 'RedisDeadlineError';
  }
}

/** `reply`, or a RedisDeadlineError once REPLY_DEADLINE_MS have passed without it. */
export function replyWithin<T>(reply: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RedisDeadlineError()), REPLY_DEADLINE_MS);
  });
  return Promise.race([reply, late]).finally(() => clearTimeout(timer));
}
