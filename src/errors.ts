// The error catalog: every error the relay answers with, its HTTP status and a message that says what to do.
import { STATUS_CODES } from 'node:http';

/** An error the relay answers with `{statusCode, error, message, code}`; `code` is stable for clients and tests. */
export class RelayError extends Error {
  /** Seconds after which a retry may succeed: sent as `Retry-After` (every 429 and 503 carries one). */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    options?: { cause?: unknown; retryAfterSeconds?: number },
  ) {
    // An answer, not a bug: its stack is never read (a 500 logs its cause), and capturing one is most of
    // what an error costs, paid on every 404 of a client polling an empty queue.
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message, options);
    Error.stackTraceLimit = stackTraceLimit;
    this.name = 'RelayError';
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }

  /** The JSON body of the error answer: Securelay's three fields, then the catalog's code. */
  toJSON(): { statusCode: number; error: string; message: string; code: string } {
    return {
      statusCode: this.statusCode,
      error: STATUS_CODES[this.statusCode] ?? 'Error',
      message: this.message,
      code: this.code,
    };
  }
}

const ACCEPTED_TYPES =
  'application/json, application/x-www-form-urlencoded or text/plain (and application/octet-stream for one-to-one values)';

/** One constructor per error; the HTTP layer renders them, domain code throws them. */
export const errors = {
  forgedKey: () =>
    new RelayError(401, 'forged_key', 'This key was not issued by this relay; ask GET /keys for a key pair.'),
  wrongKeyType: (expected: 'private' | 'public') =>
    new RelayError(
      401,
      'wrong_key_type',
      expected === 'private'
        ? 'This path takes a private key, but a public key was given.'
        : 'This path takes a public key, but a private key was given.',
    ),
  badKey: () => new RelayError(400, 'bad_key', 'This is not a key issued by this relay.'),
  badUid: () =>
    new RelayError(
      400,
      'bad_uid',
      'The uid must be 1 to 64 characters of A-Z, a-z, 0-9, ".", "_", "~" or "-".',
    ),
  badRedirect: (name: 'ok' | 'err') =>
    new RelayError(400, 'bad_redirect', `The "${name}" parameter must be one absolute http or https URL.`),
  badQuery: (message: string) => new RelayError(400, 'bad_query', message),
  blobTooLarge: (limit: number, length?: number) =>
    new RelayError(
      413,
      'blob_too_large',
      length === undefined
        ? `The blob is larger than the limit of ${limit} bytes (DEADROP_BLOB_LIMIT); send it in parts.`
        : `The blob is ${length} bytes; the limit is ${limit} bytes (DEADROP_BLOB_LIMIT); send it in parts.`,
    ),
  keyQuotaFull: (quota: number, used: number, length: number) =>
    new RelayError(
      507,
      'key_quota_full',
      `This key pair holds ${used} bytes of blobs; ${length} more would pass its quota of ${quota} bytes (DEADROP_KEY_QUOTA). Wait until some are read or expire.`,
    ),
  badHook: (reason: string) => new RelayError(400, 'bad_hook', `The webhook URL is refused: ${reason}`),
  rateLimited: (retryAfterSeconds: number) =>
    new RelayError(
      429,
      'rate_limited',
      `Too many requests from this address; retry in ${retryAfterSeconds} s (DEADROP_RATE_LIMIT per DEADROP_RATE_WINDOW).`,
      { retryAfterSeconds },
    ),
  writeBudgetSpent: (budget: number, retryAfterSeconds: number) =>
    new RelayError(
      429,
      'write_budget_spent',
      `This address wrote its ${budget} bytes for this window (DEADROP_WRITE_BUDGET per DEADROP_RATE_WINDOW); retry in ${retryAfterSeconds} s.`,
      { retryAfterSeconds },
    ),
  banned: (seconds: number) =>
    new RelayError(
      403,
      'banned',
      `This address ignored too many 429 answers and is banned for ${seconds} s (DEADROP_BAN_AFTER, DEADROP_BAN_TIME).`,
      { retryAfterSeconds: seconds },
    ),
  pipeBusy: () => new RelayError(409, 'pipe_busy', 'This stream already has its sender and receiver.'),
  pipeNotFound: () =>
    new RelayError(
      404,
      'pipe_not_found',
      'This stream token is unknown, expired or already used; ask /pipe/<key> for a new one.',
    ),
  pipeExpired: (ttlSeconds: number, missing: 'sender' | 'receiver') =>
    new RelayError(
      408,
      'pipe_expired',
      `No ${missing} came within ${ttlSeconds} s (DEADROP_PIPE_TTL); nothing was transferred. Try again.`,
    ),
  tooManyPipes: (max: number, retryAfterSeconds: number) =>
    new RelayError(
      429,
      'too_many_pipes',
      `${max} pipes already wait at this key for this method (DEADROP_PIPE_MAX); retry in ${retryAfterSeconds} s.`,
      { retryAfterSeconds },
    ),
  malformedBody: (detail: string) =>
    new RelayError(400, 'malformed_body', `The body could not be read: ${detail}`),
  emptyBody: () => new RelayError(400, 'empty_body', 'The body is empty; send a JSON value.'),
  bodyTooLarge: (limit: number, length?: number) =>
    new RelayError(
      413,
      'body_too_large',
      length === undefined
        ? `The body is larger than the limit of ${limit} bytes (DEADROP_BODY_LIMIT).`
        : `The body is ${length} bytes; the limit is ${limit} bytes (DEADROP_BODY_LIMIT).`,
    ),
  missingContentType: () =>
    new RelayError(415, 'missing_content_type', `The body has no Content-Type; send ${ACCEPTED_TYPES}.`),
  unsupportedContentType: (type: string) =>
    new RelayError(
      415,
      'unsupported_content_type',
      `Content-Type ${JSON.stringify(type.slice(0, 100))} is not accepted; send ${ACCEPTED_TYPES}.`,
    ),
  unsupportedEncoding: (detail: string) => new RelayError(415, 'unsupported_encoding', detail),
  nothingQueued: () => new RelayError(404, 'nothing_queued', 'Nothing is queued for this key.'),
  nothingPublished: () => new RelayError(404, 'nothing_published', 'Nothing is published at this key.'),
  noField: () => new RelayError(404, 'no_field', 'Nothing is stored at this uid, or it was already read.'),
  routeNotFound: (method: string) =>
    new RelayError(404, 'route_not_found', `There is no ${method} route here.`),
  methodNotAllowed: (method: string, allowed: readonly string[]) =>
    new RelayError(405, 'method_not_allowed', `${method} is not allowed here; use ${allowed.join(', ')}.`),
  queueFull: (max: number) =>
    new RelayError(
      507,
      'queue_full',
      `The queue of this key holds ${max} items, the limit (DEADROP_MAX_QUEUE); the owner must read it first.`,
    ),
  fieldsFull: (max: number) =>
    new RelayError(
      507,
      'fields_full',
      `This key holds ${max} one-to-one values, the limit (DEADROP_MAX_FIELDS); wait until some are read or expire.`,
    ),
  storeFull: () =>
    new RelayError(
      507,
      'store_full',
      'The relay has no room for more data right now (DEADROP_STORE_MAX); try again once some is read or expires.',
    ),
  storeUnavailable: (cause?: unknown) =>
    new RelayError(503, 'store_unavailable', 'The store is unreachable; try again shortly.', {
      cause,
      retryAfterSeconds: 1,
    }),
  bodyTimeout: (timeoutMs: number) =>
    new RelayError(
      408,
      'body_timeout',
      `The body did not arrive within ${timeoutMs / 1000} s of the headers (DEADROP_BODY_TIMEOUT); send it at once.`,
    ),
} as const;
