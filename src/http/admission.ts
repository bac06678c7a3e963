// Admission of requests (issue 11): a deadline for bodies, Connection: close for answers that come before the body, and a 413 at once for a declared size over the route's limit.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { parse as parseContentType } from 'content-type';
import type { RequestHandler } from 'express';
import onHeaders from 'on-headers';
import parseUrl from 'parseurl';
import type { Config } from '../config.js';
import { errors, type RelayError } from '../errors.js';

/** The settings admission reads: the body deadline and the body limits of the routes. */
export type AdmissionConfig = Pick<Config, 'bodyTimeoutMs' | 'bodyLimit' | 'blobLimit'>;

type Listener = (req: IncomingMessage, res: ServerResponse) => void;

// Matched like Express matches routes: on the undecoded path, ignoring case and one trailing slash.
const PIPE_STREAM = /^\/stream\/[^/]+\/?$/i;
const PIPE_ROUTES = /^\/(?:pipe|stream)\/[^/]+\/?$/i;
const ONE_TO_ONE = /^\/private\/[^/]+\/[^/]+\/?$/i;

/**
 * How long a connection answered before its body arrived goes on reading (and dropping) that body after
 * the answer, so that a client still sending reads the answer instead of a reset (a "lingering close").
 */
const LINGER_MS = 2000;

/** Sockets in their lingering close: a request that still arrives on one is not served. */
const lingering = new WeakSet<Socket>();

const pathOf = (req: IncomingMessage): string => parseUrl(req)?.pathname ?? '';

/** A `/stream/<token>` side: it may run for hours, bounded by the pipe's own rules, not by the body deadline. */
const isPipeStream = (req: IncomingMessage): boolean => PIPE_STREAM.test(pathOf(req));

/** The request says it has a body: a Content-Length above 0, or a Transfer-Encoding. */
const hasBody = (req: IncomingMessage): boolean =>
  req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;

/** The body has not fully arrived yet (read or not: `complete` is set when the parser has seen its end). */
const bodyStillArriving = (req: IncomingMessage): boolean => hasBody(req) && !req.complete;

const isOctetStream = (req: IncomingMessage): boolean => {
  const header = req.headers['content-type'];
  if (!header) return false;
  try {
    return parseContentType(header).type === 'application/octet-stream';
  } catch {
    return false;
  }
};

/** The largest body the request's route takes and the error beyond it; undefined for the pipe routes, which take any. */
function bodyLimitOf(
  req: IncomingMessage,
  config: AdmissionConfig,
): { limit: number; tooLarge: (length: number) => RelayError } | undefined {
  const path = pathOf(req);
  if (PIPE_ROUTES.test(path)) return undefined;
  if (config.blobLimit > 0 && req.method === 'POST' && ONE_TO_ONE.test(path) && isOctetStream(req)) {
    return { limit: config.blobLimit, tooLarge: (length) => errors.blobTooLarge(config.blobLimit, length) };
  }
  return { limit: config.bodyLimit, tooLarge: (length) => errors.bodyTooLarge(config.bodyLimit, length) };
}

/** The error for a Content-Length over the route's limit, if the request declares one. */
function declaredTooLarge(req: IncomingMessage, config: AdmissionConfig): RelayError | undefined {
  const header = req.headers['content-length'];
  if (header === undefined) return undefined;
  const length = Number(header);
  const bound = bodyLimitOf(req, config);
  return bound && length > bound.limit ? bound.tooLarge(length) : undefined;
}

/**
 * Middleware: a declared Content-Length over the route's limit is a 413 at once, before any byte of the
 * body is read (the readers would only find out after reading up to the limit). Mount it before the
 * routes and after `readRedirects`, so the error goes the way of every other (JSON, or 303 to `err`).
 */
export function refuseDeclaredOversize(config: AdmissionConfig): RequestHandler {
  return (req, _res, next) => next(declaredTooLarge(req, config));
}

/**
 * The server's `checkContinue` listener: a request whose declared body is over its limit gets its 413
 * without a `100 Continue`, so the client never sends the body; the others go to `otherwise`.
 */
export function withholdContinueFromOversize(
  config: AdmissionConfig,
  handle: Listener,
  otherwise: Listener,
): Listener {
  return (req, res) => (declaredTooLarge(req, config) ? handle(req, res) : otherwise(req, res));
}

/**
 * Wraps the server's request listener with the two rules every request meets before any route:
 *
 * - A body must arrive within `bodyTimeoutMs` of the headers, else 408 and the connection closes. Pipe
 *   streams are spared; a request with no body (a long-poll, an event stream) has nothing to wait for,
 *   so however long its answer runs, this deadline never cuts it. Node's own `requestTimeout` measures
 *   the same span but for every request of the server, pipe uploads included, so it cannot serve here.
 * - An answer whose head goes out while the body is still arriving carries `Connection: close`: the
 *   socket closes after it (see lingerOnClose), rather than stay open while Node drains a body nobody
 *   will read. A pipe sender's 200, which starts before its body by design, is the one exception.
 */
export function admitRequests(handle: Listener, config: AdmissionConfig): Listener {
  return (req, res) => {
    if (lingering.has(req.socket)) {
      req.socket.destroy();
      return;
    }
    // A request without a body (most reads) has nothing left arriving when its answer starts.
    if (!hasBody(req)) {
      handle(req, res);
      return;
    }
    const pipeStream = isPipeStream(req);
    onHeaders(res, () => {
      if (bodyStillArriving(req) && !(pipeStream && res.statusCode < 300)) {
        res.setHeader('Connection', 'close');
        lingerOnClose(req.socket);
      }
    });
    if (!pipeStream) {
      const deadline = setTimeout(() => refuseLateBody(req, res, config.bodyTimeoutMs), config.bodyTimeoutMs);
      res.once('close', () => clearTimeout(deadline));
    }
    handle(req, res);
  };
}

/**
 * Node ends a `Connection: close` answer with `socket.destroySoon()`: FIN, then destroy as soon as the
 * answer is written, which resets a client still sending its body, and a reset may discard the answer
 * before the client reads it. Instead: FIN, then let the parser drop what still arrives until the client
 * closes its side, for at most LINGER_MS.
 */
function lingerOnClose(socket: Socket) {
  if (lingering.has(socket)) return;
  lingering.add(socket);
  Object.assign(socket, {
    destroySoon() {
      socket.end();
      setTimeout(() => socket.destroy(), LINGER_MS).unref();
    },
  });
}

/** At the deadline: nothing if the body is in; a 408 if nothing was answered yet; else the connection ends. */
function refuseLateBody(req: IncomingMessage, res: ServerResponse, timeoutMs: number) {
  if (req.complete || res.destroyed) return;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  // Whatever still arrives must not reach a reader: the request was refused, so nothing may be stored.
  req.pause();
  res.statusCode = 408;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Connection', 'close');
  res.end(JSON.stringify(errors.bodyTimeout(timeoutMs).toJSON()));
}
