// CORS (DESIGN §4): `Access-Control-Allow-Origin: *` on every answer, errors included, and a 204 to every
// preflight.
import cors from 'cors';
import type { RequestHandler } from 'express';

/**
 * Middleware: a preflight (OPTIONS) is answered by the `cors` package with its defaults (any origin, the
 * usual methods, the requested headers, 204); any other request only needs its one header, set here
 * without the package's per-request option handling.
 */
export function allowAnyOrigin(): RequestHandler {
  const preflight = cors();
  return (req, res, next) => {
    if (req.method === 'OPTIONS') return preflight(req, res, next);
    res.setHeader('Access-Control-Allow-Origin', '*');
    next();
  };
}
