// The few routes nearly every request takes (a public POST or read, a private publish or drain), served
// without Express: its per-request setup (new prototypes for req and res, the router's walk over every
// layer) costs more than the relay's own work. The handlers are the app's own, in the app's order; a
// request the lane does not take exactly as Express would route it goes to Express.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Request, RequestHandler, Response } from 'express';
import proxyAddr from 'proxy-addr';
import { errors } from '../errors.js';

type Listener = (req: IncomingMessage, res: ServerResponse) => void;

/** The handlers of one route path, by method, from the first middleware to the answer. */
export interface LaneRoute {
  /** The route as the app declares it (`/public/:key`): what metrics label the request with. */
  path: string;
  GET: RequestHandler[];
  POST: RequestHandler[];
}

export interface FastLaneOptions {
  /** `/public/:key` and `/private/:key`, by their first segment. */
  routes: { public: LaneRoute; private: LaneRoute };
  /** What answers an error, as the app's error handler would. */
  answerError: (error: unknown, req: Request, res: Response) => void;
  /** Express's compiled `trust proxy` setting, so that `req.ip` is the one Express would give. */
  trust: (address: string, hop: number) => boolean;
  /** The app, for every other request. */
  otherwise: Listener;
}

/**
 * `/public/<key>` or `/private/<key>` exactly: no query, no percent-encoding, no trailing slash, route
 * names in lower case. Express routes these to the same handlers with the same `key`; anything else
 * (which Express would also decode, fold or refuse) is left to it.
 */
const HOT_PATH = /^\/(public|private)\/([^/?#%]+)$/;

/** The query of a request without one, as Express would parse it. */
const NO_QUERY = Object.freeze({});

/** Runs `handlers` in turn as Express would: `next(error)`, a throw or a rejection goes to `fail`. */
function run(handlers: RequestHandler[], req: Request, res: Response, fail: (error: unknown) => void) {
  let at = 0;
  const next = (error?: unknown) => {
    if (error !== undefined && error !== null) return fail(error);
    const handler = handlers[at++];
    // The last handler of each route answers; past it, Express too would find no route.
    if (!handler) return fail(errors.routeNotFound(req.method));
    try {
      const result = handler(req, res, next) as unknown;
      if (result instanceof Promise)
        result.then(undefined, (failure) => fail(failure ?? new Error('rejected')));
    } catch (failure) {
      fail(failure);
    }
  };
  next();
}

/** The server's request listener: the hot routes here, the rest to the app. */
export function fastLane({ routes, answerError, trust, otherwise }: FastLaneOptions): Listener {
  return (incoming, outgoing) => {
    const method = incoming.method;
    const match = method === 'GET' || method === 'POST' ? HOT_PATH.exec(incoming.url ?? '') : null;
    // An event stream stays open for hours: what it costs to set up does not matter, Express serves it.
    if (!match || (method === 'GET' && incoming.headers.accept?.includes('text/event-stream'))) {
      otherwise(incoming, outgoing);
      return;
    }
    const route = routes[match[1] as 'public' | 'private'];
    // What the handlers read of Express's request and response; they use nothing else.
    const req = Object.assign(incoming, {
      params: { key: match[2] as string },
      query: NO_QUERY,
      originalUrl: incoming.url,
      baseUrl: '',
      route: { path: route.path },
      ip: proxyAddr(incoming, trust),
    }) as unknown as Request;
    const res = Object.assign(outgoing, { locals: {} }) as unknown as Response;
    run(route[method as 'GET' | 'POST'], req, res, (error) => {
      try {
        answerError(error, req, res);
      } catch {
        // Where Express's final handler would answer a failing error handler: cut rather than crash.
        res.destroy();
      }
    });
  };
}
