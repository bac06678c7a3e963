// The pipe's errors that src/errors.ts does not catalogue yet (an unknown token, a wait that timed out).
import { RelayError } from '../errors.js';

/** Errors of /stream/; they belong in the catalog of src/errors.ts and should move there. */
export const pipeErrors = {
  tokenNotFound: () =>
    new RelayError(
      404,
      'pipe_not_found',
      'This stream token is unknown, expired or already used; ask /pipe/<key> for a new one.',
    ),
  expired: (ttlSeconds: number, missing: 'sender' | 'receiver') =>
    new RelayError(
      408,
      'pipe_expired',
      `No ${missing} came within ${ttlSeconds} s (DEADROP_PIPE_TTL); nothing was transferred. Try again.`,
    ),
} as const;
