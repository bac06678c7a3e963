// Reads a write's body: checks its type, limits its size while reading, and turns it into JSON text (or,
// where blobs are allowed, keeps application/octet-stream bytes as they are).
import { parse as parseQueryString } from 'node:querystring';
import { parse as parseContentType } from 'content-type';
import express, { type RequestHandler } from 'express';
import { errors, RelayError } from '../errors.js';

type BodyKind = 'json' | 'form' | 'text' | 'blob';

const KINDS: Record<string, BodyKind> = {
  'application/json': 'json',
  'application/x-www-form-urlencoded': 'form',
  'text/plain': 'text',
  'application/octet-stream': 'blob',
};
const UTF8_CHARSETS = new Set(['utf-8', 'utf8', 'us-ascii']);

function bodyKind(header: string | undefined, blobs: boolean): BodyKind {
  if (!header) throw errors.missingContentType();
  let parsed: ReturnType<typeof parseContentType>;
  try {
    parsed = parseContentType(header);
  } catch {
    throw errors.unsupportedContentType(header);
  }
  const kind = KINDS[parsed.type];
  if (!kind || (kind === 'blob' && !blobs)) throw errors.unsupportedContentType(parsed.type);
  const charset = parsed.parameters.charset?.toLowerCase();
  if (charset && !UTF8_CHARSETS.has(charset)) {
    throw errors.unsupportedEncoding(`Charset "${charset.slice(0, 40)}" is not accepted; send UTF-8.`);
  }
  return kind;
}

/** The body as the JSON text that is stored: JSON as sent, a form as an object, text as a string. */
function toJsonText(kind: Exclude<BodyKind, 'blob'>, bytes: Buffer): string {
  const text = bytes.toString('utf8');
  if (kind === 'text') return JSON.stringify(text);
  if (kind === 'form') return JSON.stringify(parseQueryString(text));
  const json = text.replace(/^\uFEFF/, '').trim();
  if (json === '') throw errors.emptyBody();
  try {
    JSON.parse(json);
  } catch (error) {
    throw errors.malformedBody(`it is not valid JSON (${(error as Error).message}).`);
  }
  // Kept as sent, so that numbers beyond double precision come back unchanged.
  return json;
}

/** Maps body-parser's failures (by their documented `type`) to the catalog. */
function readError(
  error: { type?: string; length?: number; message?: string },
  limit: number,
  kind: BodyKind,
): RelayError {
  switch (error.type) {
    case 'entity.too.large':
      return kind === 'blob'
        ? errors.blobTooLarge(limit, error.length)
        : errors.bodyTooLarge(limit, error.length);
    case 'encoding.unsupported':
      return errors.unsupportedEncoding('This Content-Encoding is not accepted; send the body uncompressed.');
    case 'request.aborted':
      return errors.malformedBody('the client stopped sending it.');
    case 'request.size.invalid':
      return errors.malformedBody('its length does not match Content-Length.');
    default:
      return errors.malformedBody(error.message ?? 'unknown reason.');
  }
}

/** Body limits: JSON, form and text bodies (DEADROP_BODY_LIMIT); blobs where allowed (DEADROP_BLOB_LIMIT, 0: none). */
export interface BodyLimits {
  bodyLimit: number;
  blobLimit?: number;
}

/**
 * Middleware: sets `res.locals.item` to the body as JSON text (or, with a blob limit, to the bytes of an
 * application/octet-stream body), or fails with 400, 413 or 415. The size limit holds while the body is
 * read, whatever Content-Length says.
 */
export function readBody({ bodyLimit, blobLimit = 0 }: BodyLimits): RequestHandler {
  const readText = express.raw({ type: () => true, limit: bodyLimit, inflate: false });
  const readBlob = express.raw({ type: () => true, limit: Math.max(1, blobLimit), inflate: false });
  return (req, res, next) => {
    let kind: BodyKind;
    try {
      kind = bodyKind(req.headers['content-type'], blobLimit > 0);
    } catch (error) {
      next(error);
      return;
    }
    const limit = kind === 'blob' ? blobLimit : bodyLimit;
    (kind === 'blob' ? readBlob : readText)(req, res, (error?: unknown) => {
      if (error) {
        next(error instanceof RelayError ? error : readError(error as { type?: string }, limit, kind));
        return;
      }
      const bytes = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      try {
        res.locals.item = kind === 'blob' ? bytes : toJsonText(kind, bytes);
        next();
      } catch (failure) {
        next(failure);
      }
    });
  };
}
