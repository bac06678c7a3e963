// node-redis cluster client settings for the local test cluster, and the topology refresh that
// node-redis 5 lacks: it re-reads the slot map only on MOVED/ASK, never after a primary crashed.
import type { LocalRedisCluster } from './redis-cluster.js';

/** The part of a node-redis cluster client (whatever its scripts and RESP version) used here. */
interface TopologyAware<C extends { isReady: boolean }> {
  masters: ReadonlyArray<{ client?: C }>;
  _slots: { rediscover(startWith: C): Promise<void> };
  on(event: 'node-reconnecting', listener: () => void): unknown;
}

/**
 * `createCluster` options for `cluster`: every node as a seed, and like the relay's single-node client,
 * fail fast while a node is away (`disableOfflineQueue`) and reconnect in the background.
 */
export function clusterOptionsFor(cluster: LocalRedisCluster) {
  return {
    rootNodes: cluster.rootNodes,
    defaults: {
      disableOfflineQueue: true,
      socket: {
        connectTimeout: 1000,
        reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 500),
      },
    },
  };
}

/**
 * Re-reads the slot map whenever a node connection retries, so a promoted replica is found within one
 * reconnect delay of its promotion. Returns the client; errors are swallowed here and reported by
 * node-redis's own 'error' event.
 */
export function refreshTopologyOnReconnect<C extends { isReady: boolean }, T extends TopologyAware<C>>(
  client: T & TopologyAware<C>,
): T {
  client.on('node-reconnecting', () => void refreshTopology(client));
  return client;
}

const refreshing = new WeakMap<object, Promise<void>>();

/**
 * Re-reads the slot map from a node that answers, one refresh at a time per client. node-redis has no
 * public call for it; `_slots.rediscover` is what its own MOVED handling calls.
 */
export function refreshTopology<C extends { isReady: boolean }>(client: TopologyAware<C>): Promise<void> {
  const running = refreshing.get(client);
  if (running) return running;
  const clients = client.masters.map((node) => node.client);
  const startWith = clients.find((node) => node?.isReady) ?? clients[0];
  if (!startWith) return Promise.resolve();
  const refresh = client._slots
    .rediscover(startWith)
    .catch(() => {})
    .finally(() => refreshing.delete(client));
  refreshing.set(client, refresh);
  return refresh;
}
