// Starting and stopping a relay from a checked configuration: the work of `deadrop serve`.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type express from 'express';
import { type DestinationStream, type Logger, pino } from 'pino';
import { openBackend } from './backend/open-backend.js';
import { composeRelay } from './compose.js';
import type { Config } from './config.js';
import { errors } from './errors.js';
import { admitRequests, withholdContinueFromOversize } from './http/admission.js';
import { listenerOf, pipesOf } from './http/app.js';
import {
  type ConnectionCaps,
  capConnections,
  connectionCapFor,
  readOpenFileLimit,
} from './http/connection-caps.js';
import { type GracefulClose, trackForGracefulClose } from './http/graceful-close.js';
import type { RelayMetrics } from './http/metrics.js';
import { continueUnlessPipe } from './http/pipe-routes.js';
import { loadOrCreateSecret } from './secret.js';

export interface RunningRelay {
  url: string;
  /** Where /metrics is served when DEADROP_METRICS names a port of its own. */
  metricsUrl: string | undefined;
  logger: Logger;
  /**
   * Stops gracefully: no new connection is accepted, idle ones close at once, long-polls answer and event
   * streams end, pipe transfers may finish within `graceMs` (DEADROP_SHUTDOWN_GRACE) and are cut after it;
   * then the store is closed. A second call cuts at once and resolves when the first is done.
   */
  shutdown(graceMs?: number): Promise<void>;
  /** Stops at once: every connection is cut, then the store is closed. */
  close(): Promise<void>;
}

/** Log lines are written to stdout in chunks of at least this many bytes… */
const LOG_CHUNK_BYTES = 4096;
/**
 * …or at least this often, so that a quiet relay's lines (a warning, an outage's end) reach whoever
 * watches the log at once.
 */
const LOG_FLUSH_MS = 100;

/**
 * The relay's logger: JSON lines at the configured level, on stdout written asynchronously and in
 * chunks (a request never waits for its log line, and a busy relay makes one write for many lines; what
 * is buffered is flushed every LOG_FLUSH_MS and when the process exits), or on `destination`.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    { level },
    destination ??
      pino.destination({ dest: 1, sync: false, minLength: LOG_CHUNK_BYTES, periodicFlush: LOG_FLUSH_MS }),
  );
}

/**
 * The relay's HTTP server around `app`, not yet listening: Node's timeouts, `100 Continue` only where a
 * body is wanted, and admission control (body deadline, early answers that close, connection caps).
 */
export function createRelayServer(
  app: express.Express,
  config: Config,
  logger: Logger,
): { server: Server; connections: ConnectionCaps; graceful: GracefulClose } {
  const handle = admitRequests(listenerOf(app), config);
  const server = createServer(
    {
      headersTimeout: config.headersTimeoutMs,
      requestTimeout: config.requestTimeoutMs,
      keepAliveTimeout: config.keepAliveTimeoutMs,
      // Node checks the two timeouts above only this often (30 s by default).
      connectionsCheckingInterval: Math.min(1000, config.headersTimeoutMs),
    },
    handle,
  );
  server.on('checkContinue', withholdContinueFromOversize(config, handle, continueUnlessPipe(handle)));
  const graceful = trackForGracefulClose(server);
  const openFileLimit = readOpenFileLimit();
  const maxConnections = config.maxConnections ?? connectionCapFor(openFileLimit);
  if (openFileLimit !== undefined && maxConnections > openFileLimit) {
    logger.warn(
      { maxConnections, openFileLimit },
      'DEADROP_MAX_CONNECTIONS is above the open-file limit (ulimit -n): raise the limit or lower the cap, or clients will fail before the cap refuses them.',
    );
  }
  const connections = capConnections(
    server,
    { maxConnections, maxConnectionsPerIp: config.maxConnectionsPerIp, trustProxy: config.trustProxy },
    logger,
  );
  return { server, connections, graceful };
}

/** Opens the store, builds the app and listens (and serves /metrics on its own port if so set). */
export async function startRelay(
  config: Config,
  logger = createLogger(config.logLevel),
): Promise<RunningRelay> {
  const secret = config.secret ?? (await loadOrCreateSecret(config.dataDir));
  const backend = await openBackend(config, logger);
  const { app, metrics, stopping } = composeRelay({ config, backend, secret, logger });
  metrics?.collectProcessMetrics();
  const { server, connections, graceful } = createRelayServer(app, config, logger);
  const url = urlOf(await listen(server, config.port, config.host), config.host);
  const metricsServer =
    metrics && typeof config.metrics === 'number' ? createMetricsServer(metrics) : undefined;
  const metricsUrl = metricsServer
    ? `${urlOf(await listen(metricsServer, config.metrics as number, config.host), config.host)}/metrics`
    : undefined;

  let stopped: Promise<void> | undefined;
  const shutdown = (graceMs = config.shutdownGraceMs): Promise<void> => {
    if (stopped) {
      graceful.cut();
      return stopped;
    }
    stopped = (async () => {
      // Closing the listener comes first, so that nothing new arrives while the rest ends.
      const closing = graceful.close(graceMs);
      stopping.stop();
      pipesOf(app).close();
      const cut = await closing;
      if (cut > 0) logger.warn({ cut }, 'shutdown grace period over: connections still open were cut');
      connections.close();
      if (metricsServer) {
        metricsServer.closeAllConnections();
        await new Promise((resolve) => metricsServer.close(resolve));
      }
      await backend.close();
    })();
    return stopped;
  };
  return {
    url,
    metricsUrl,
    logger,
    shutdown,
    close: () => shutdown(0),
  };
}

/** Listens on `port` and `host`; resolves with the port bound. */
async function listen(server: Server, port: number, host: string | undefined): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

const urlOf = (port: number, host: string | undefined): string => {
  const name = !host || host === '0.0.0.0' || host === '::' ? 'localhost' : host;
  return `http://${name.includes(':') ? `[${name}]` : name}:${port}`;
};

/** A server of its own for /metrics (DEADROP_METRICS=<port>), so that it need not be public. */
function createMetricsServer(metrics: Pick<RelayMetrics, 'serve'>): Server {
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '').split('?', 1)[0];
    if (path === '/metrics' && (req.method === 'GET' || req.method === 'HEAD')) {
      metrics.serve(req, res).catch(() => res.destroy());
      return;
    }
    const error =
      path === '/metrics'
        ? errors.methodNotAllowed(req.method ?? '', ['GET'])
        : errors.routeNotFound(req.method ?? '');
    res.writeHead(error.statusCode, {
      'Content-Type': 'application/json; charset=utf-8',
      ...(error.code === 'method_not_allowed' && { Allow: 'GET' }),
    });
    res.end(JSON.stringify(error.toJSON()));
  });
}
