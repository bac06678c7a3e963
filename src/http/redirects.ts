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
  for (const name of ['err', 'ok'] as const) {
    const given = req.query[name];
    if (given === undefined) continue;
    const url = absoluteHttpUrl(given);
    if (url) redirects[name] = url;
    else problem ??= errors.badRedirect(name);
  }
  res.locals.redirects = redirects;
  next(problem);
};

const redirectsOf = (res: Response): Redirects => (res.locals.redirects as Redirects | undefined) ?? {};

/** Answers a successful write: `{"message":"Done",…}`, or 303 to `ok`. */
export function sendDone(res: Response, extra: Record<string, unknown> = {}): void {
  const { ok } = redirectsOf(res);
  if (ok) res.redirect(303, ok);
  else res.json({ message: 'Done', error: 'Ok', statusCode: 200, ...extra });
}

/** Where a failed request goes instead of its error body, if anywhere. */
export const failureRedirect = (req: Request, res: Response): string | undefined =>
  req.method === 'POST' ? redirectsOf(res).err : undefined;
