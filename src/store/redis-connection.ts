// The one Redis connection an instance shares between its store, pipe tokens, rate limits and live
// delivery, with every script of theirs defined on it (node-redis `defineScript`).
import { createClient } from '@redis/client';
import { PIPE_SCRIPTS } from '../pipe/redis-token-registry.js';
import { STORE_SCRIPTS } from './redis-scripts.js';

const SCRIPTS = { ...STORE_SCRIPTS, ...PIPE_SCRIPTS };

/** Gives up on a connection attempt after this long; reconnects back off up to 2 s. */
const CONNECT_TIMEOUT_MS = 2000;
const MAX_RECONNECT_DELAY_MS = 2000;

/** Opens a connection that fails fast while Redis is away (a 503) and reconnects in the background. */
export function createRedisConnection(url: string, onError: (error: Error) => void) {
  const client = createClient({
    url,
    scripts: SCRIPTS,
    // Without this, commands would wait in memory for Redis to come back and requests would hang.
    disableOfflineQueue: true,
    socket: {
      connectTimeout: CONNECT_TIMEOUT_MS,
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, MAX_RECONNECT_DELAY_MS),
    },
  });
  client.on('error', onError);
  client.connect().catch(onError);
  return client;
}

/** A connection with the relay's scripts. */
export type RedisConnection = ReturnType<typeof createRedisConnection>;
