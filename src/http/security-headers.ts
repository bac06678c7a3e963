// Security headers (helmet) for every response, with a CSP that lets the pages load over plain HTTP.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import helmet, { type HelmetOptions } from 'helmet';

// Pages are fetched cross-origin by other sites' scripts (SDK, API), so resources are not same-origin only.
const shared: HelmetOptions = { crossOriginResourcePolicy: { policy: 'cross-origin' } };

/**
 * The headers one helmet configuration sets: they depend on nothing in the request, so they are worked
 * out once, and each answer only copies them.
 */
function headersOf(options: HelmetOptions): [string, string][] {
  const headers = new Map<string, string>();
  const res = {
    setHeader: (name: string, value: unknown) => headers.set(name, String(value)),
    removeHeader: (name: string) => headers.delete(name),
  } as unknown as ServerResponse;
  helmet(options)({} as IncomingMessage, res, () => {});
  return [...headers];
}

/**
 * Helmet's headers, choosing the CSP by how the request arrived. Helmet's default CSP carries
 * `upgrade-insecure-requests`, which makes a browser fetch a page's scripts and styles over https: on a
 * relay reached by plain HTTP under any name but localhost (a LAN address, a VPS before TLS) they fail
 * and the pages render as bare text. Over https (behind a trusted proxy, as it reports) it stays.
 */
export function securityHeaders(): RequestHandler {
  const overHttps = headersOf(shared);
  const overHttp = headersOf({
    ...shared,
    contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } },
  });
  return (req, res, next) => {
    for (const [name, value] of req.secure ? overHttps : overHttp) res.setHeader(name, value);
    next();
  };
}
