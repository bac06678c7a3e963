// Serverless entry (vercel.json): the app as a default export, on the Redis store (README: Serverless).
import { loadConfig } from './config.js';
import { createApp } from './http/app.js';
import { createLogger } from './server.js';
import { openBackend } from './store/open-store.js';

const config = loadConfig(process.env);
if (config.store !== 'redis' || config.secret === undefined) {
  throw new Error('Serverless deadrop needs the Redis store: set REDIS_URL and DEADROP_SECRET.');
}
const logger = createLogger(config.logLevel);
const backend = await openBackend(config, logger);

export default createApp({ config, ...backend, secret: config.secret, logger });
