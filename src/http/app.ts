// The HTTP layer: routes of the relay (README, api-docs/openapi.yaml), CORS, logs and one error policy.
import cors from 'cors';
import express, { type ErrorRequestHandler, type RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { errors, RelayError } from '../errors.js';
import { createKeyring } from '../keys.js';
import { createLocalNotifier, type Notifier } from '../live/notifier.js';
import { createRelay } from '../relay.js';
import type { RedisClient } from '../store/redis-store.js';
import type { Store } from '../store/store.js';
import { createHookSealer } from '../webhooks/hook-record.js';
import { createWebhookSender, type WebhookSender } from '../webhooks/webhook-sender.js';
import { createBlobRouter } from './blob-routes.js';
import { readBody } from './body.js';
import { serveEventStream, wantsEventStream } from './event-stream.js';
import { accessLog } from './logging.js';
import { createPagesRouter } from './pages.js';
import { createPipeRouter, type PipeRouter } from './pipe-routes.js';
import { clientGone, singleQuery, waitMs } from './query.js';
import { createRateLimits } from './rate-limit.js';
import { failureRedirect, readRedirects, sendDone } from './redirects.js';
import { securityHeaders } from './security-headers.js';

export interface AppDeps {
  config: Config;
  store: Store;
  /** The server secret: signs keys, names the instance, keys the hashes of client IPs. */
  secret: string;
  logger: Logger;
  /** The shared Redis, when the store is Redis: rate limits, pipes and live delivery use it too. */
  redis?: RedisClient | undefined;
  /** Live-delivery wake-ups; in-process by default, Redis pub/sub with the Redis store. */
  notifier?: Notifier;
  /** Outgoing webhooks; built from the config by default. */
  webhooks?: WebhookSender;
}

/** What the app holds that a shutdown must close: pipes still waiting. */
export const pipesOf = (app: express.Express): PipeRouter => app.locals.pipes as PipeRouter;

/** Builds the Express app; it has no side effects until a server listens with it. */
export function createApp(deps: AppDeps): express.Express {
  const { config, store, secret, logger } = deps;
  const relay = createRelay({
    store,
    keyring: createKeyring(secret),
    limits: {
      ttlMs: config.ttlSeconds * 1000,
      maxQueue: config.maxQueue,
      maxFields: config.maxFields,
      hookTtlMs: config.hookTtlSeconds * 1000,
    },
    notifier: deps.notifier ?? createLocalNotifier(),
    webhooks:
      deps.webhooks ??
      createWebhookSender({
        timeoutMs: config.webhookTimeoutMs,
        allowPrivate: config.webhookAllowPrivate,
        logger,
      }),
    hooks: createHookSealer(secret),
  });
  const body = readBody(config.bodyLimit);
  const sendJsonText = (res: express.Response, text: string) => res.type('application/json').send(text);
  const notAllowed =
    (...allowed: string[]): RequestHandler =>
    (req, res) => {
      res.set('Allow', allowed.join(', '));
      throw errors.methodNotAllowed(req.method, allowed);
    };

  const { banGuard, limit } = createRateLimits({ config, secret, redis: deps.redis, logger });

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', config.trustProxy);
  app.use(accessLog(logger));
  app.use(securityHeaders());
  app.use(cors());
  app.use(readRedirects);
  app.use(banGuard);
  // Ahead of the JSON routes: takes only application/octet-stream one-to-one values, passes the rest on.
  app.use(createBlobRouter({ config, relay, store, secret, readLimit: limit.publicRead }));

  app
    .route('/keys')
    .get(limit.keys, (_req, res) => res.json(relay.issueKeys()))
    .all(notAllowed('GET'));
  app
    .route('/keys/:key')
    .get(limit.keys, (req, res) => res.json(relay.inspectKey(req.params.key)))
    .all(notAllowed('GET'));
  app
    .route('/id')
    .get((_req, res) => res.type('text/plain').send(relay.id))
    .all(notAllowed('GET'));

  app
    .route('/public/:key')
    .get(limit.publicRead, async (req, res) => sendJsonText(res, await relay.readValue(req.params.key)))
    .post(limit.publicWrite, body, async (req, res) => {
      sendDone(res, await relay.postToQueue(req.params.key, res.locals.item));
    })
    .all(notAllowed('GET', 'POST'));

  app
    .route('/private/:key')
    // A HEAD would drain the queue and show nothing: refused rather than routed to GET.
    .head(notAllowed('GET', 'POST', 'PATCH', 'DELETE'))
    .get(limit.privateRead, async (req, res) => {
      const { key } = req.params;
      // Every private GET re-registers its webhook or, without ?hook=, forgets it (Securelay). Forgetting
      // runs beside the read; a failure there must not lose what the read took.
      const hook = singleQuery(req.query, 'hook');
      if (hook !== undefined) await relay.registerHook(key, hook);
      const forgetting = hook === undefined ? relay.registerHook(key, undefined).catch(() => {}) : undefined;
      try {
        if ('stats' in req.query) {
          res.json(await relay.stats(key));
        } else if (wantsEventStream(req)) {
          await serveEventStream(req, res, relay, key, config.sseHeartbeatSeconds * 1000);
        } else {
          const items = await relay.drainQueue(key, { waitMs: waitMs(req.query), signal: clientGone(res) });
          sendJsonText(res, `[${items.join(',')}]`);
        }
      } finally {
        await forgetting;
      }
    })
    .post(body, async (req, res) => {
      await relay.publishValue(req.params.key, res.locals.item);
      sendDone(res);
    })
    .patch(async (req, res) => {
      await relay.renewValue(req.params.key);
      sendDone(res);
    })
    .delete(async (req, res) => {
      await relay.unpublishValue(req.params.key);
      res.status(204).end();
    })
    .all(notAllowed('GET', 'POST', 'PATCH', 'DELETE'));

  app
    .route('/public/:key/:uid')
    .head(notAllowed('GET'))
    .get(limit.publicRead, async (req, res) => {
      const wait = { waitMs: waitMs(req.query), signal: clientGone(res) };
      sendJsonText(res, await relay.takeField(req.params.key, req.params.uid, wait));
    })
    .all(notAllowed('GET'));

  app
    .route('/private/:key/:uid')
    .get(limit.privateRead, async (req, res) =>
      res.json({ ttl: await relay.fieldTtl(req.params.key, req.params.uid) }),
    )
    .post(body, async (req, res) => {
      await relay.putField(req.params.key, req.params.uid, res.locals.item);
      sendDone(res);
    })
    .delete(async (req, res) => {
      await relay.deleteField(req.params.key, req.params.uid);
      res.status(204).end();
    })
    .all(notAllowed('GET', 'POST', 'DELETE'));

  const pipes = createPipeRouter({ config, secret, redis: deps.redis, logger });
  app.locals.pipes = pipes;
  app.use(pipes);
  app.use(createPagesRouter({ config, id: relay.id }));

  app.use((req) => {
    throw errors.routeNotFound(req.method);
  });
  app.use(errorHandler(logger));
  return app;
}

/** The one error policy: catalogued errors render themselves, other 4xx keep their status, the rest is a bare 500. */
function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error, req, res, next) => {
    if (res.headersSent) {
      next(error);
      return;
    }
    const relayError = toRelayError(error);
    if (relayError.statusCode >= 500) {
      logger.error({ err: relayError.cause ?? error, code: relayError.code }, 'request failed');
    }
    const target = failureRedirect(req, res);
    if (target) {
      res.redirect(303, target);
      return;
    }
    res.status(relayError.statusCode).json(relayError.toJSON());
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
