// node-redis cluster client settings for the local test cluster, and the topology refresh that
// node-redis 5 lacks (it re-reads the slot map only on MOVED/ASK, never after a primary crashed), taken
// from the relay's own code.
import { refreshTopology, type TopologyAware } from '../../src/store/redis-cluster-topology.js';
import type { LocalRedisCluster } from './redis-cluster.js';

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
 * reconnect delay of its promotion: the reconnect half of the relay's own workaround
 * (`src/store/redis-cluster-topology.ts`), for test clients that should not run its watchdog timer.
 */
export function refreshTopologyOnReconnect<T extends TopologyAware>(client: T): T {
  client.on('node-reconnecting', () => void refreshTopology(client));
  return client;
}

export { refreshTopology };
