// Serverless entry (vercel.json): the relay's request listener (its fast lane, then the app) as a default
// export, on the Redis store (README: Serverless).
import { openBackend } from './backend/open-backend.js';
import { composeRelay } from './compose.js';
import { loadConfig } from './config.js';
import { listenerOf } from './http/app.js';
import { createLogger } from './server.js';

const config = loadConfig(process.env);
if (config.store !== 'redis' || config.secret === undefined) {
  throw new Error(
    'Serverless deadrop needs the Redis store: set REDIS_URL (or REDIS_CLUSTER) and DEADROP_SECRET.',
  );
}
const logger = createLogger(config.logLevel);
const backend = await openBackend(config, logger);

export default listenerOf(composeRelay({ config, backend, secret: config.secret, logger }).app);
