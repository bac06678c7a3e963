// The HTTP layer: routes of the relay (README, api-docs/openapi.yaml), CORS, logs and one error policy.
import type { RequestListener } from 'node:http';
import express, { type ErrorRequestHandler, type Request, type RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { LimiterFactory } from '../backend/limiters.js';
import type { OutageWatch } from '../backend/outage.js';
import type { Config } from '../config.js';
import { errors, RelayError } from '../errors.js';
import type { Relay, WaitOptions } from '../relay.js';
import type { FieldValue } from '../store/store.js';
import { refuseDeclaredOversize } from './admission.js';
import { readBody } from './body.js';
import { allowAnyOrigin } from './cors.js';
import { serveEventStream, wantsEventStream } from './event-stream.js';
import { fastLane, type LaneRoute } from './fast-lane.js';
import { type HealthReport, serveHealth } from './health.js';
import { accessLog, UNLOGGED } from './logging.js';
import type { RelayMetrics } from './metrics.js';
import { createPagesRouter } from './pages.js';
import { createPipeRouter, type PipeRouter } from './pipe-routes.js';
import { singleQuery, waitMs } from './query.js';
import { createRateLimits } from './rate-limit.js';
import { failureRedirect, readRedirects, sendDone, sendJsonText } from './redirects.js';
import { securityHeaders } from './security-headers.js';
import type { StopSignal } from './stop-signal.js';

export interface AppDeps {
  config: Config;
  /** The relay core: every key-pair rule and the backend behind it. */
  relay: Relay;
  /** The backend's counters, for rate limits and bans. */
  limiters: LimiterFactory;
  /** The backend's outage watch: counter failures count there, not in a log line each. */
  outage?: OutageWatch;
  /** The client a request counts against (a keyed hash of its address). */
  clientOf: (req: Request) => string;
  logger: Logger;
  operations: AppOperations;
}

/** What operators see of the app (health, metrics) and how it stops. */
export interface AppOperations {
  /** GET /healthz's check. */
  health: () => Promise<HealthReport>;
  /** Tells the requests held open (long-polls, event streams) to end when the relay stops. */
  stopping: StopSignal;
  /** Counts what happens, served at /metrics when `config.metrics` is `on`; undefined when it is `off`. */
  metrics?: RelayMetrics | undefined;
}

/** What the app holds that a shutdown must close: pipes still waiting. */
export const pipesOf = (app: express.Express): PipeRouter => app.locals.pipes as PipeRouter;

/** The server's request listener: the fast lane for the hot routes, the app for the rest. */
export const listenerOf = (app: express.Express): RequestListener => app.locals.listener as RequestListener;

/** A one-to-one value as it was stored: JSON text, or blob bytes as application/octet-stream. */
function sendField(res: express.Response, value: FieldValue): void {
  if (typeof value === 'string') {
    sendJsonText(res, value);
    return;
  }
  res.status(200).set({ 'content-type': 'application/octet-stream', 'content-length': value.byteLength });
  res.end(value);
}

const notAllowed =
  (...allowed: string[]): RequestHandler =>
  (req, res) => {
    res.set('Allow', allowed.join(', '));
    throw errors.methodNotAllowed(req.method, allowed);
  };

/** Builds the Express app; it has no side effects until a server listens with it. */
export function createApp({
  config,
  relay,
  limiters,
  outage,
  clientOf,
  logger,
  operations: { health, stopping, metrics },
}: AppDeps): express.Express {
  const body = readBody({ bodyLimit: config.bodyLimit });
  const fieldBody = readBody({ bodyLimit: config.bodyLimit, blobLimit: config.blobLimit });
  const { banGuard, limit, spendWriteBudget } = createRateLimits({ config, limiters, clientOf, outage });
  /** A blob's key and uid are checked before its upload is read (JSON bodies are small: read first). */
  const checkBlobWrite: RequestHandler = (req, _res, next) => {
    if (req.is('application/octet-stream'))
      relay.checkFieldWrite(String(req.params.key), String(req.params.uid));
    next();
  };

  /**
   * `?wait=`, and only for a read that may wait, a signal for its client leaving or the relay stopping
   * (one per request otherwise: a controller, listeners, and an abort when the answer closes).
   */
  const waitOf = (req: Request, res: express.Response): WaitOptions | undefined => {
    const ms = waitMs(req.query);
    return ms > 0 ? { waitMs: ms, signal: stopping.untilGoneOrStopping(res) } : undefined;
  };

  /** GET /limits: the bounds a client plans with (a drop's sender sizes what it leaves for an offline receiver). */
  const publicLimits = {
    ttl: config.ttlSeconds,
    bodyLimit: config.bodyLimit,
    blobLimit: config.blobLimit,
    keyQuota: config.keyQuota,
    maxFields: config.maxFields,
    maxQueue: config.maxQueue,
  };

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', config.trustProxy);
  // Every request meets these first, in this order (the fast lane too).
  const first: RequestHandler[] = [
    ...(metrics ? [metrics.countRequests] : []),
    accessLog(logger),
    securityHeaders(),
    allowAnyOrigin(),
  ];
  const guards: RequestHandler[] = [readRedirects, refuseDeclaredOversize(config), banGuard];
  app.use(first);
  // Before the rate limits: load balancers and scrapers are never limited or banned.
  app.route('/healthz').get(serveHealth(health)).all(notAllowed('GET'));
  if (metrics && config.metrics === 'on') app.route('/metrics').get(metrics.route).all(notAllowed('GET'));
  app.use(guards);

  app
    .route('/keys')
    .get(limit.keys, (_req, res) => res.json(relay.issueKeys()))
    .all(notAllowed('GET'));
  app
    .route('/keys/:key')
    .get(limit.keys, (req, res) => res.json(relay.inspectKey(req.params.key)))
    .all(notAllowed('GET'));
  app
    .route('/limits')
    .get(limit.keys, (_req, res) => res.json(publicLimits))
    .all(notAllowed('GET'));
  app
    .route('/id')
    .get((_req, res) => res.type('text/plain').send(relay.id))
    .all(notAllowed('GET'));

  const publicKey: Omit<LaneRoute, 'path'> = {
    GET: [
      limit.publicRead,
      async (req, res) => sendJsonText(res, await relay.readValue(String(req.params.key))),
    ],
    POST: [
      limit.write,
      body,
      spendWriteBudget,
      async (req, res) => sendDone(res, await relay.postToQueue(String(req.params.key), res.locals.item)),
    ],
  };
  app.route('/public/:key').get(publicKey.GET).post(publicKey.POST).all(notAllowed('GET', 'POST'));

  const privateKey: Omit<LaneRoute, 'path'> = {
    GET: [
      limit.privateRead,
      async (req, res) => {
        const key = String(req.params.key);
        const query = req.query; // parsed anew at each read of req.query
        const hook = singleQuery(query, 'hook');
        if ('stats' in query) {
          res.json(await relay.stats(key, { hook }));
        } else if (wantsEventStream(req)) {
          await serveEventStream(req, res, relay, key, hook, config.sseHeartbeatSeconds * 1000, {
            signal: stopping.untilGoneOrStopping(res),
            metrics,
          });
        } else {
          const items = await relay.drainQueue(key, { hook }, waitOf(req, res));
          sendJsonText(res, `[${items.join(',')}]`);
        }
      },
    ],
    POST: [
      limit.write,
      body,
      spendWriteBudget,
      async (req, res) => {
        await relay.publishValue(String(req.params.key), res.locals.item);
        sendDone(res);
      },
    ],
  };
  app
    .route('/private/:key')
    // A HEAD would drain the queue and show nothing: refused rather than routed to GET.
    .head(notAllowed('GET', 'POST', 'PATCH', 'DELETE'))
    .get(privateKey.GET)
    .post(privateKey.POST)
    .patch(limit.write, async (req, res) => {
      await relay.renewValue(req.params.key);
      sendDone(res);
    })
    .delete(limit.write, async (req, res) => {
      await relay.unpublishValue(req.params.key);
      res.status(204).end();
    })
    .all(notAllowed('GET', 'POST', 'PATCH', 'DELETE'));

  app
    .route('/public/:key/:uid')
    .head(notAllowed('GET'))
    .get(limit.publicRead, async (req, res) => {
      sendField(res, await relay.takeField(req.params.key, req.params.uid, waitOf(req, res)));
    })
    .all(notAllowed('GET'));

  app
    .route('/private/:key/:uid')
    .get(limit.privateRead, async (req, res) => {
      const { key, uid } = req.params;
      if ('peek' in req.query) {
        sendField(res, await relay.readField(key, uid, waitOf(req, res)));
      } else {
        res.json({ ttl: await relay.fieldTtl(key, uid) });
      }
    })
    .post(limit.write, checkBlobWrite, fieldBody, spendWriteBudget, async (req, res) => {
      await relay.putField(req.params.key, req.params.uid, res.locals.item);
      sendDone(res);
    })
    .delete(limit.write, async (req, res) => {
      await relay.deleteField(req.params.key, req.params.uid);
      res.status(204).end();
    })
    .all(notAllowed('GET', 'POST', 'DELETE'));

  const pipes = createPipeRouter({ config, relay, logger, metrics, limit: limit.write });
  app.locals.pipes = pipes;
  app.use(pipes);
  app.use(createPagesRouter({ config, id: relay.id }));

  app.use((req) => {
    throw errors.routeNotFound(req.method);
  });
  const answerError = errorAnswer(logger, outage, metrics);
  app.use(((error, req, res, _next) => answerError(error, req, res)) as ErrorRequestHandler);
  // In the lane, each route's handlers come after everything the app runs before its routes.
  const inLane = ({ GET, POST }: Omit<LaneRoute, 'path'>) => ({
    GET: [...first, ...guards, ...GET],
    POST: [...first, ...guards, ...POST],
  });
  app.locals.listener = fastLane({
    routes: {
      public: { path: '/public/:key', ...inLane(publicKey) },
      private: { path: '/private/:key', ...inLane(privateKey) },
    },
    answerError,
    trust: app.get('trust proxy fn'),
    otherwise: app,
  });
  return app;
}

/**
 * The one error policy: catalogued errors render themselves, other 4xx keep their status, the rest is a
 * bare 500. A store outage is logged by the outage watch, once, not here per request. Written on Node's
 * response API, the only one the fast lane's requests have.
 */
function errorAnswer(
  logger: Logger,
  outage: OutageWatch | undefined,
  metrics: Pick<RelayMetrics, 'errorAnswered'> | undefined,
): (error: unknown, req: Request, res: express.Response) => void {
  return (error, req, res) => {
    const relayError = toRelayError(error);
    metrics?.errorAnswered(relayError);
    if (relayError.code === 'store_unavailable' && outage) {
      res.locals[UNLOGGED] = true;
    } else if (relayError.code === 'internal') {
      // A bug: the only answer logged with its cause. Catalogued 5xx (a full store, a bound) are expected.
      logger.error({ err: relayError.cause ?? error }, 'request failed');
    }
    if (res.headersSent) {
      // The answer has begun (an event stream, a pipe): it is cut, so the client sees a failure, not an end.
      res.destroy();
      return;
    }
    if (relayError.retryAfterSeconds !== undefined)
      res.setHeader('Retry-After', String(relayError.retryAfterSeconds));
    // Only a request with a query has a redirect target, and only Express serves those.
    const target = failureRedirect(req, res);
    if (target) {
      res.redirect(303, target);
      return;
    }
    sendJsonText(res, JSON.stringify(relayError.toJSON()), relayError.statusCode);
  };
}

function toRelayError(error: unknown): RelayError {
  if (error instanceof RelayError) return error;
  const status = (error as { status?: unknown })?.status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    // Express's own 4xx, such as a path that is not valid percent-encoding.
    return new RelayError(status, 'bad_request', 'The request could not be understood; check its URL.');
  }
  return new RelayError(500, 'internal', 'Something went wrong on the relay.', { cause: error });
}
