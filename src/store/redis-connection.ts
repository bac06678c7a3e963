// The one Redis connection an instance shares between its store, pipe tokens, rate limits and live
// delivery, with every script of theirs defined on it (node-redis `defineScript`): to one server
// (REDIS_URL) or to a Redis Cluster (REDIS_CLUSTER), where each command goes to its first key's primary.
import { createClient, createCluster } from '@redis/client';
import { PIPE_SCRIPTS } from '../pipe/redis-token-registry.js';
import { keepTopologyCurrent } from './redis-cluster-topology.js';
import { STORE_SCRIPTS } from './redis-scripts.js';

const SCRIPTS = { ...STORE_SCRIPTS, ...PIPE_SCRIPTS };

/** Gives up on a connection attempt after this long; reconnects back off up to 2 s. */
const CONNECT_TIMEOUT_MS = 2000;
const MAX_RECONNECT_DELAY_MS = 2000;
/** A cluster retries sooner: a promoted replica is found on a reconnect attempt (redis-cluster-topology.ts). */
const MAX_CLUSTER_RECONNECT_DELAY_MS = 500;
/**
 * A hung Redis (a stalled VM, a partition) is dropped after 3 s without a byte from it, and answers 503
 * from then on; without it a command once written waits for ever (node-redis's per-command timeout ends
 * when the command is written). A PING every second keeps a quiet connection from looking hung; three
 * of them fit in the timeout, so a briefly busy event loop does not drop a healthy connection.
 */
const PING_INTERVAL_MS = 1000;
const SOCKET_TIMEOUT_MS = 3000;

const socketOptions = (maxReconnectDelayMs: number) => ({
  connectTimeout: CONNECT_TIMEOUT_MS,
  socketTimeout: SOCKET_TIMEOUT_MS,
  reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, maxReconnectDelayMs),
});

/** Opens a connection that fails fast while Redis is away (a 503) and reconnects in the background. */
export function createRedisConnection(url: string, onError: (error: Error) => void) {
  const client = createClient({
    url,
    scripts: SCRIPTS,
    // Without this, commands would wait in memory for Redis to come back and requests would hang.
    disableOfflineQueue: true,
    pingInterval: PING_INTERVAL_MS,
    socket: socketOptions(MAX_RECONNECT_DELAY_MS),
  });
  client.on('error', onError);
  client.connect().catch(onError);
  return client;
}

/**
 * node-redis applies a seed URL's user, password and TLS to that seed only: the nodes it discovers get
 * `defaults`, so the first seed's are copied there (every node of a cluster shares them).
 */
function credentialsOf(seedUrl: string | undefined): { username?: string; password?: string } {
  if (seedUrl === undefined) return {};
  const url = new URL(seedUrl);
  return {
    ...(url.username && { username: decodeURIComponent(url.username) }),
    ...(url.password && { password: decodeURIComponent(url.password) }),
  };
}

/**
 * Opens a cluster client from seed URLs (any one that answers gives the whole map), with the same
 * scripts and the same fail-fast, reconnecting connections to each primary. Reads go to primaries only:
 * a drain must see the append just made. Keeps the slot map current after failovers, and keeps trying
 * to reach the cluster if no seed answers at start.
 */
export function createRedisClusterConnection(
  seedUrls: readonly string[],
  onError: (error: Error) => void,
  onHealthy?: (checkStartedAt: number) => void,
) {
  const client = createCluster({
    rootNodes: seedUrls.map((url) => ({ url })),
    defaults: {
      ...credentialsOf(seedUrls[0]),
      disableOfflineQueue: true,
      pingInterval: PING_INTERVAL_MS,
      socket: {
        ...socketOptions(MAX_CLUSTER_RECONNECT_DELAY_MS),
        ...(seedUrls[0]?.startsWith('rediss:') && { tls: true as const }),
      },
    },
    scripts: SCRIPTS,
  });
  client.on('error', onError);
  client.on('node-error', onError);
  const watch = keepTopologyCurrent(client, onHealthy);
  let closing = false;
  const connectUntilDone = async (attempt: number): Promise<void> => {
    try {
      await client.connect();
    } catch (error) {
      if (closing) return;
      onError(error as Error);
      await new Promise((resolve) =>
        setTimeout(resolve, Math.min(100 * 2 ** attempt, MAX_RECONNECT_DELAY_MS)),
      );
      if (!closing) return connectUntilDone(attempt + 1);
    }
  };
  const connected = connectUntilDone(0);
  clusterStates.set(client, {
    connected,
    healthy: watch.healthy,
    stop: () => {
      closing = true;
      watch.stop();
    },
  });
  return client;
}

/** A connection to one Redis server, with the relay's scripts. */
export type SingleRedisConnection = ReturnType<typeof createRedisConnection>;
/** A connection to a Redis Cluster, with the relay's scripts. */
export type ClusterRedisConnection = ReturnType<typeof createRedisClusterConnection>;
/** A connection with the relay's scripts: what the store, pipe tokens, limiters and notifier use. */
export type RedisConnection = SingleRedisConnection | ClusterRedisConnection;

const clusterStates = new WeakMap<
  object,
  { connected: Promise<void>; healthy: () => boolean; stop: () => void }
>();

/** True for a Redis Cluster connection. */
export const isCluster = (client: RedisConnection): client is ClusterRedisConnection => 'masters' in client;

/**
 * True when every primary (the one server, or each primary of the cluster) is connected, and on a
 * cluster when the watchdog's last look found each one answering.
 */
export function isConnectionReady(client: RedisConnection): boolean {
  if (!isCluster(client)) return client.isReady;
  const primaries = client.masters;
  return (
    client.isOpen &&
    (clusterStates.get(client)?.healthy() ?? true) &&
    primaries.length > 0 &&
    primaries.every((node) => node.client?.isReady === true)
  );
}

/** Resolves once the connection is first ready (or never, if Redis never answers: race it). */
export function whenConnected(client: RedisConnection): Promise<void> {
  if (!isCluster(client)) {
    return client.isReady ? Promise.resolve() : new Promise((resolve) => client.once('ready', resolve));
  }
  return clusterStates.get(client)?.connected ?? Promise.resolve();
}

/** One client per primary, for what must be asked of each (INFO memory). */
export async function primaryClientsOf(client: RedisConnection) {
  if (!isCluster(client)) return [client];
  return Promise.all(client.masters.map((node) => client.nodeClient(node)));
}

/**
 * PUBLISH to `channel`. On a cluster it is sent to the primary of the channel's slot: the one that just
 * stored what the message announces, so it is up whenever the write went through (any node broadcasts
 * a classic PUBLISH to the whole cluster).
 */
export function publishTo(client: RedisConnection, channel: string, message: string): Promise<unknown> {
  if (isCluster(client)) return client.sendCommand(channel, false, ['PUBLISH', channel, message]);
  return client.publish(channel, message);
}

/** Closes the connection: waits for replies in flight, or drops it at once while it is not connected. */
export async function closeConnection(client: RedisConnection): Promise<void> {
  if (isCluster(client)) {
    const state = clusterStates.get(client);
    state?.stop();
    if (isConnectionReady(client)) await client.close().catch(() => client.destroy());
    else client.destroy();
    return;
  }
  // A connection still reconnecting has nothing to flush: it is dropped, not closed.
  if (client.isReady) await client.close().catch(() => client.destroy());
  else if (client.isOpen) client.destroy();
}
