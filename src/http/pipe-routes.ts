// The built-in pipe (DESIGN §6): /pipe/<key> pairs two sides on a token, /stream/<token> relays one to the other.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream';
import express, { type Request, type RequestHandler, type Response } from 'express';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { errors } from '../errors.js';
import { PIPE_METHODS, type PipeMethod } from '../pipe/sides.js';
import { createStreamMatcher, type StreamParty } from '../pipe/stream-matcher.js';
import { PIPE_TOKEN_PATTERN } from '../pipe/token-registry.js';
import type { Relay } from '../relay.js';
import type { RelayMetrics } from './metrics.js';

export interface PipeRouterDeps {
  config: Pick<Config, 'pipeTtlSeconds' | 'publicUrl' | 'pipingUrl'>;
  /** Pairs arrivals at /pipe/ (the key rules are the relay's). */
  relay: Pick<Relay, 'arriveAtPipe' | 'waitingPipes'>;
  logger: Logger;
  /** The rate limit pipe requests count against (the app's write class); none by default. */
  limit?: RequestHandler;
  /** Counts transfers and the bytes they carry. */
  metrics?: Pick<RelayMetrics, 'pipeStarted' | 'pipeBytes' | 'pipeEnded'> | undefined;
}

/** The router, plus what a health check, a test or a shutdown needs. */
export interface PipeRouter extends express.Router {
  /** Tokens this instance holds for /stream/ (waiting or streaming), and the sides waiting on them. */
  streams(): { held: number; waiting: number };
  /** Tokens of a key pair still waiting at /pipe/ for their other side, both directions together. */
  waitingTokens(pub: string): Promise<number>;
  /** Ends the sides still waiting and clears every timer; streams already running go on. */
  close(): void;
}

interface Side extends StreamParty {
  req: Request;
  res: Response;
}

/** A grace period for a cut-short answer to reach the client before its socket, with an unread upload, is reset. */
const TRUNCATE_GRACE_MS = 1000;

/** Builds the router for `/pipe/:key` and `/stream/:token`; mount it before the 404 handler. */
export function createPipeRouter({
  config,
  relay: pipes,
  logger,
  metrics,
  limit = (_req, _res, next) => next(),
}: PipeRouterDeps): PipeRouter {
  const ttlMs = config.pipeTtlSeconds * 1000;
  const matcher = createStreamMatcher<Side, Side>({ ttlMs });
  const allowed = PIPE_METHODS.join(', ');

  const notAllowed: RequestHandler = (req, res) => {
    res.set('Allow', allowed);
    throw errors.methodNotAllowed(req.method, PIPE_METHODS);
  };

  const toStream: RequestHandler = async (req, res) => {
    const { ticket, withdraw } = await pipes.arriveAtPipe(
      String(req.params.key),
      req.method as PipeMethod,
      config.publicUrl,
    );
    if (ticket.created && config.pipingUrl === undefined) {
      // Withdrawn in every case, so that no later arrival pairs with a token that can no longer stream.
      matcher.hold(ticket.token, () => {
        withdraw().catch((error: unknown) => {
          logger.warn({ err: error }, 'could not withdraw a pipe token');
        });
      });
    }
    // Without DEADROP_PUBLIC_URL the location is relative: the client's Host header never makes it.
    const location =
      config.pipingUrl !== undefined
        ? `${config.pipingUrl}/${ticket.token}`
        : `${ticket.baseUrl ?? ''}/stream/${ticket.token}`;
    // Written by hand rather than with res.redirect: this answer is half of every transfer's overhead.
    res.writeHead(307, {
      Location: location,
      'Cache-Control': 'no-store',
      'Content-Type': 'text/plain; charset=utf-8',
    });
    res.end(`Temporary Redirect. Redirecting to ${location}\n`);
  };

  const tokenOf = (req: Request): string => {
    const token = String(req.params.token);
    if (!PIPE_TOKEN_PATTERN.test(token)) throw errors.pipeNotFound();
    return token;
  };

  const stream = (token: string, sender: Side, receiver: Side) => {
    const { headers } = sender.req;
    receiver.res.writeHead(200, {
      'Content-Type': headers['content-type'] ?? 'application/octet-stream',
      ...(headers['content-disposition'] && { 'Content-Disposition': headers['content-disposition'] }),
      ...(headers['content-length'] && { 'Content-Length': headers['content-length'] }),
      'Cache-Control': 'no-store',
      'X-Accel-Buffering': 'no',
      // Whoever holds the token chooses what the receiver gets, under the relay's own origin.
      'Content-Security-Policy': 'sandbox',
      'X-Content-Type-Options': 'nosniff',
    });
    sender.res.write('The receiver is here; streaming.\n');
    let bytes = 0;
    metrics?.pipeStarted();
    pipeline(sender.req, receiver.res, (error) => {
      metrics?.pipeEnded(Boolean(error));
      matcher.finish(token);
      logger.debug({ token: `${token.slice(0, 4)}…`, bytes, error: error?.message }, 'pipe stream ended');
      if (error) {
        // Either side left: the other one must see a cut-short transfer, never a clean end.
        sender.res.destroy();
        receiver.res.destroy();
        return;
      }
      sender.res.end(`Done: ${bytes} bytes sent.\n`);
    });
    sender.req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      metrics?.pipeBytes(chunk.length);
    });
    // The headers leave with the first bytes when these are already there, else on their own right after.
    setImmediate(() => {
      if (bytes === 0 && !receiver.res.writableEnded && !receiver.res.destroyed) receiver.res.flushHeaders();
    });
  };

  const send: RequestHandler = (req, res) => {
    const token = tokenOf(req);
    const sender: Side = {
      req,
      res,
      end: (reason) =>
        truncate(
          res,
          reason === 'expired' ? errors.pipeExpired(config.pipeTtlSeconds, 'receiver') : undefined,
        ),
    };
    const receiver = matcher.joinAsSender(token, sender);
    // The sender's answer starts at once, so that proxies keep a waiting upload open.
    res.writeHead(200, {
      'Content-Type': 'text/plain; charset=utf-8',
      'Cache-Control': 'no-store',
      'X-Accel-Buffering': 'no',
    });
    if (receiver) {
      stream(token, sender, receiver);
      return;
    }
    res.write(`Waiting for the receiver (up to ${config.pipeTtlSeconds} s).\n`);
    res.once('close', () => matcher.leave(token, sender));
  };

  const receive: RequestHandler = (req, res) => {
    const token = tokenOf(req);
    const receiver: Side = {
      req,
      res,
      end: (reason) => {
        if (reason === 'closed') res.destroy();
        else res.status(408).json(errors.pipeExpired(config.pipeTtlSeconds, 'sender').toJSON());
      },
    };
    const sender = matcher.joinAsReceiver(token, receiver);
    // The receiver's headers wait for the sender: its Content-Type is not known before.
    if (sender) stream(token, sender, receiver);
    else res.once('close', () => matcher.leave(token, receiver));
  };

  const router = express.Router();
  router
    .route('/pipe/:key')
    .head(notAllowed)
    .get(limit, toStream)
    .post(limit, toStream)
    .put(limit, toStream)
    .all(notAllowed);
  router
    .route('/stream/:token')
    .head(notAllowed)
    .get(limit, receive)
    .post(limit, send)
    .put(limit, send)
    .all(notAllowed);

  return Object.assign(router, {
    streams: () => matcher.stats(),
    waitingTokens: (pub: string) => pipes.waitingPipes(pub),
    close: () => matcher.close(),
  });
}

/**
 * The server's `checkContinue` listener: `Expect: 100-continue` is granted everywhere but /pipe/, whose 307
 * then comes before any body, so that a client streaming from stdin (`curl -L -T -`), which cannot rewind,
 * sends its body once, to /stream/. Without it Node grants every Expect and such a client fails the redirect.
 */
export function continueUnlessPipe(
  handle: (req: IncomingMessage, res: ServerResponse) => void,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (!req.url?.startsWith('/pipe/')) res.writeContinue();
    handle(req, res);
  };
}

/**
 * Ends an answer whose 200 is already out so that the client sees a failure, not a clean end: the last
 * line (a JSON error), then FIN without the closing chunk. The unread upload would keep the socket open,
 * so it is destroyed after a grace period.
 */
function truncate(res: Response, error?: { toJSON(): object }) {
  const socket = res.socket;
  if (!socket || socket.destroyed) return;
  const cut = () => {
    socket.end();
    setTimeout(() => socket.destroy(), TRUNCATE_GRACE_MS).unref();
  };
  if (error) res.write(`${JSON.stringify(error.toJSON())}\n`, cut);
  else cut();
}
