// Access logs that never hold a key (DESIGN §4): path segments are cut to 4 characters, queries dropped.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { pinoHttp } from 'pino-http';

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

/** pino-http with serializers that keep only method, masked path and status. */
export function accessLog(logger: Logger) {
  return pinoHttp({
    logger,
    quietReqLogger: true,
    serializers: {
      req: (req: IncomingMessage & { originalUrl?: string }) => ({
        method: req.method,
        url: maskPath(req.originalUrl ?? req.url ?? ''),
      }),
      res: (res: ServerResponse) => ({ statusCode: res.statusCode }),
    },
    customLogLevel: (_req, res, error) => (error || res.statusCode >= 500 ? 'error' : 'info'),
  });
}
