// Security headers (helmet) for every response, with a CSP that lets the pages load over plain HTTP.
import type { RequestHandler } from 'express';
import helmet, { type HelmetOptions } from 'helmet';

// Pages are fetched cross-origin by other sites' scripts (SDK, API), so resources are not same-origin only.
const shared: HelmetOptions = { crossOriginResourcePolicy: { policy: 'cross-origin' } };

/**
 * Helmet's headers, choosing the CSP by how the request arrived. Helmet's default CSP carries
 * `upgrade-insecure-requests`, which makes a browser fetch a page's scripts and styles over https: on a
 * relay reached by plain HTTP under any name but localhost (a LAN address, a VPS before TLS) they fail
 * and the pages render as bare text. Over https (behind a trusted proxy, as it reports) it stays.
 */
export function securityHeaders(): RequestHandler {
  const overHttps = helmet(shared);
  const overHttp = helmet({
    ...shared,
    contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } },
  });
  return (req, res, next) => (req.secure ? overHttps : overHttp)(req, res, next);
}
