// Starting and stopping a relay from a checked configuration: the work of `deadrop serve`.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type DestinationStream, type Logger, pino } from 'pino';
import { openBackend } from './backend/open-backend.js';
import { composeRelay } from './compose.js';
import type { Config } from './config.js';
import { pipesOf } from './http/app.js';
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

/** Opens the store, builds the app and listens; `close` stops listening and closes the store. */
export async function startRelay(
  config: Config,
  logger = createLogger(config.logLevel),
): Promise<RunningRelay> {
  const secret = config.secret ?? (await loadOrCreateSecret(config.dataDir));
  const backend = await openBackend(config, logger);
  const { app } = composeRelay({ config, backend, secret, logger });
  const server = createServer(
    {
      headersTimeout: config.headersTimeoutMs,
      requestTimeout: config.requestTimeoutMs,
      keepAliveTimeout: config.keepAliveTimeoutMs,
      // Node checks the two timeouts above only this often (30 s by default).
      connectionsCheckingInterval: Math.min(1000, config.headersTimeoutMs),
    },
    app,
  );
  server.on('checkContinue', continueUnlessPipe(app));
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
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await backend.close();
    },
  };
}
