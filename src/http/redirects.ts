// `?ok=<url>&err=<url>` on a POST: 303 to `ok` on success and to `err` on any failure (Securelay).
import type { Request, RequestHandler, Response } from 'express';
import { errors, type RelayError } from '../errors.js';

interface Redirects {
  ok?: string;
  err?: string;
}

function absoluteHttpUrl(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : undefined;
  } catch {
    return undefined;
  }
}

/** Middleware: remembers the POST's redirect targets; a bad one is a 400 (sent to `err` if that one is good). */
export const readRedirects: RequestHandler = (req, res, next) => {
  if (req.method !== 'POST') return next();
  const redirects: Redirects = {};
  let problem: RelayError | undefined;
  const query = req.query; // parsed anew at each read of req.query
  for (const name of ['err', 'ok'] as const) {
    const given = query[name];
    if (given === undefined) continue;
    const url = absoluteHttpUrl(given);
    if (url) redirects[name] = url;
    else problem ??= errors.badRedirect(name);
  }
  res.locals.redirects = redirects;
  next(problem);
};

const redirectsOf = (res: Response): Redirects => (res.locals.redirects as Redirects | undefined) ?? {};

/** The few bodies of a successful write, made once: every write answers one of them. */
const DONE_BODIES = new Map<string, string>();
const doneBody = (extra: Record<string, unknown>): string => {
  const key = JSON.stringify(extra);
  let body = DONE_BODIES.get(key);
  if (body === undefined) {
    body = JSON.stringify({ message: 'Done', error: 'Ok', statusCode: 200, ...extra });
    if (DONE_BODIES.size < 16) DONE_BODIES.set(key, body);
  }
  return body;
};

/** Answers a successful write: `{"message":"Done",…}`, or 303 to `ok`. */
export function sendDone(res: Response, extra: Record<string, unknown> = {}): void {
  const { ok } = redirectsOf(res);
  if (ok) res.redirect(303, ok);
  else sendJsonText(res, doneBody(extra));
}

/**
 * Answers 200 (or `statusCode`) with JSON text as it is (stored items are JSON already): written
 * directly, without Express's content negotiation and freshness checks, which an API answer never needs.
 */
export function sendJsonText(res: Response, text: string, statusCode = 200): void {
  res.writeHead(statusCode, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** Where a failed request goes instead of its error body, if anywhere. */
export const failureRedirect = (req: Request, res: Response): string | undefined =>
  req.method === 'POST' ? redirectsOf(res).err : undefined;
