// Access logs that never hold a key (DESIGN §4) and cost little: one line per request, written when the
// answer is done, with path segments cut to 4 characters and the query dropped.
import type { RequestHandler } from 'express';
import type { Logger } from 'pino';

/** Path segments that name routes, never data: only these are logged whole. */
const ROUTE_NAMES = new Set([
  'keys',
  'id',
  'public',
  'private',
  'pipe',
  'stream',
  'docs',
  'assets',
  'examples',
  'sdk',
  'openapi.json',
]);

/**
 * `/private/AbCdEf…` → `/private/AbCd…`: every segment that is not a route name is cut to 4 characters,
 * wherever it stands (a key may come first in a mistyped path), and the query (webhook URLs,
 * redirects) is dropped.
 */
export function maskPath(url: string): string {
  const path = url.split('?', 1)[0] ?? '';
  return path
    .split('/')
    .map((segment) => (segment.length > 4 && !ROUTE_NAMES.has(segment) ? `${segment.slice(0, 4)}…` : segment))
    .join('/');
}

/** Set on `res.locals` to leave a request out of the access log (it is counted elsewhere, e.g. by an outage). */
export const UNLOGGED = 'unlogged';

/**
 * One `info` line per answered request (`error` for a 500, `warn` for another 5xx such as a full store,
 * or for a client that left first): method, masked path, status and milliseconds. Nothing is built when
 * the level is off.
 */
export function accessLog(logger: Logger): RequestHandler {
  if (!logger.isLevelEnabled('info')) return (_req, _res, next) => next();
  return (req, res, next) => {
    const started = performance.now();
    res.once('close', () => {
      if (res.locals[UNLOGGED]) return;
      const statusCode = res.statusCode;
      const fields = {
        req: { method: req.method, url: maskPath(req.originalUrl) },
        res: { statusCode },
        responseTime: Math.round(performance.now() - started),
      };
      if (!res.writableFinished) logger.warn(fields, 'request aborted');
      else if (statusCode === 500) logger.error(fields, 'request failed');
      else if (statusCode > 500) logger.warn(fields, 'request refused');
      else logger.info(fields, 'request completed');
    });
    next();
  };
}
