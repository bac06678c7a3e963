// bench/pipe.ts's relay under test: the pipe router alone on Express 5 (memory registry) on 127.0.0.1:$PORT.
import { createServer } from 'node:http';
import express, { type ErrorRequestHandler } from 'express';
import { pino } from 'pino';
import { openBackend } from '../src/backend/open-backend.js';
import { composeRelay } from '../src/compose.js';
import { loadConfig } from '../src/config.js';
import { createPipeRouter } from '../src/http/pipe-routes.js';

const config = loadConfig({ DEADROP_STORE: 'memory', DEADROP_SECRET: process.env.BENCH_SECRET });
const logger = pino({ level: 'silent' });
const { relay } = composeRelay({
  config,
  backend: await openBackend(config, logger),
  secret: config.secret as string,
  logger,
});
const router = createPipeRouter({ config, relay, logger });

const renderErrors: ErrorRequestHandler = (error, _req, res, next) => {
  if (res.headersSent) {
    next(error);
    return;
  }
  res.status(error.statusCode ?? 500).json(error.toJSON?.() ?? {});
};

const app = express();
app.set('etag', false);
app.get('/rss', (_req, res) => {
  res.json({ rss: process.memoryUsage.rss() });
});
app.use(router);
app.use(renderErrors);
// As `deadrop serve` by default: no whole-request timeout, so a long stream is not cut.
createServer({ requestTimeout: 0 }, app).listen(Number(process.env.PORT), '127.0.0.1');
