// Starting and stopping a relay from a checked configuration: the work of `deadrop serve`.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type express from 'express';
import { type DestinationStream, type Logger, pino } from 'pino';
import { openBackend } from './backend/open-backend.js';
import { composeRelay } from './compose.js';
import type { Config } from './config.js';
import { admitRequests, withholdContinueFromOversize } from './http/admission.js';
import { pipesOf } from './http/app.js';
import {
  type ConnectionCaps,
  capConnections,
  connectionCapFor,
  readOpenFileLimit,
} from './http/connection-caps.js';
import { continueUnlessPipe } from './http/pipe-routes.js';
import { loadOrCreateSecret } from './secret.js';

export interface RunningRelay {
  url: string;
  logger: Logger;
  close(): Promise<void>;
}

/**
 * The relay's logger: JSON lines at the configured level, on stdout written asynchronously (a request
 * never waits for its log line; what is buffered is flushed when the process exits), or on `destination`.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino({ level }, destination ?? pino.destination({ dest: 1, sync: false }));
}

/**
 * The relay's HTTP server around `app`, not yet listening: Node's timeouts, `100 Continue` only where a
 * body is wanted, and admission control (body deadline, early answers that close, connection caps).
 */
export function createRelayServer(
  app: express.Express,
  config: Config,
  logger: Logger,
): { server: Server; connections: ConnectionCaps } {
  const handle = admitRequests(app, config);
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
  return { server, connections };
}

/** Opens the store, builds the app and listens; `close` stops listening and closes the store. */
export async function startRelay(
  config: Config,
  logger = createLogger(config.logLevel),
): Promise<RunningRelay> {
  const secret = config.secret ?? (await loadOrCreateSecret(config.dataDir));
  const backend = await openBackend(config, logger);
  const { app } = composeRelay({ config, backend, secret, logger });
  const { server, connections } = createRelayServer(app, config, logger);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: config.port, host: config.host }, resolve);
  });
  const { port } = server.address() as AddressInfo;
  const host = !config.host || config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return {
    url,
    logger,
    async close() {
      pipesOf(app).close();
      connections.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await backend.close();
    },
  };
}
