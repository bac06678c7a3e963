// Security headers for every response: helmet's for the pages, with a CSP that lets them load over plain
// HTTP; a short strict set for the API, whose answers are data that no browser should render.
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
 * The API's answers (JSON, blobs, event streams, pipe streams): nothing in them may run, frame or be
 * sniffed as another type, and other sites' scripts may read them (CORS). Four headers instead of
 * helmet's thirteen on the routes every client calls most.
 */
const API_HEADERS: [string, string][] = [
  ['Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'"],
  ['X-Content-Type-Options', 'nosniff'],
  ['Cross-Origin-Resource-Policy', 'cross-origin'],
  ['Referrer-Policy', 'no-referrer'],
];

/** The first path segments of the API; every other path is a page or a page's asset. */
const API_ROUTES = new Set(['public', 'private', 'keys', 'id', 'pipe', 'stream', 'healthz', 'metrics']);

const firstSegment = (url: string) => {
  const end = url.slice(1).search(/[/?]/);
  return end < 0 ? url.slice(1) : url.slice(1, end + 1);
};

/**
 * Chooses the headers by route, and for pages the CSP by how the request arrived. Helmet's default CSP
 * carries `upgrade-insecure-requests`, which makes a browser fetch a page's scripts and styles over
 * https: on a relay reached by plain HTTP under any name but localhost (a LAN address, a VPS before TLS)
 * they fail and the pages render as bare text. Over https (behind a trusted proxy, as it reports) it stays.
 */
export function securityHeaders(): RequestHandler {
  const overHttps = headersOf(shared);
  const overHttp = headersOf({
    ...shared,
    contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } },
  });
  return (req, res, next) => {
    const headers = API_ROUTES.has(firstSegment(req.url)) ? API_HEADERS : req.secure ? overHttps : overHttp;
    for (const [name, value] of headers) res.setHeader(name, value);
    next();
  };
}
