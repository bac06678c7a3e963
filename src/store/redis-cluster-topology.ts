// Keeps a node-redis cluster client's slot map current after a failover, which node-redis 5.12.1 does not
// do by itself: it re-reads the map only on MOVED/ASK, and a crashed or hung primary never answers one.
// Verified on @redis/client 5.12.1 (test/redis-cluster.client.test.ts, test/redis-cluster-topology.test.ts);
// node-redis 6 refreshes on its own (`topologyRefreshOnReconnectionAttemptStrategy`).

/** The version the internals below were read and tested against; a test fails when another is installed. */
export const TOPOLOGY_WORKAROUND_VERIFIED_ON = '5.12.1';

/** How often the watchdog looks at the primaries, and how long a PING may take before it re-reads the map. */
const WATCH_INTERVAL_MS = 1000;

interface NodeClient {
  isReady: boolean;
  ping(): Promise<unknown>;
}

/** The part of a node-redis 5 cluster client (whatever its scripts) used here. */
export interface TopologyAware {
  readonly isOpen: boolean;
  readonly masters: ReadonlyArray<{ client?: NodeClient }>;
  readonly pubSubNode?: { client: NodeClient } | undefined;
  readonly slots: ReadonlyArray<unknown>;
  /** node-redis's own re-discovery (what it calls on MOVED); public in the typings, internal in spirit. */
  readonly _slots: { rediscover(startWith: never): Promise<void> };
  on(event: 'node-reconnecting', listener: () => void): unknown;
}

const refreshing = new WeakMap<object, Promise<void>>();

/**
 * Re-reads the slot map from a node that answers (else from the seeds), one refresh at a time per
 * client. Once a replica is promoted, the old primary drops out of the map: its connection is destroyed
 * (its pending commands fail, so requests get 503 rather than hang) and classic subscriptions on it are
 * moved to a live node. `silent` are nodes known not to answer: asking a frozen one for the map would
 * wait out a socket timeout first. Errors are reported by node-redis's own 'error' event.
 */
export function refreshTopology(
  client: TopologyAware,
  silent: ReadonlySet<NodeClient | undefined> = new Set(),
): Promise<void> {
  const running = refreshing.get(client);
  if (running) return running;
  const nodes = client.masters.map((node) => node.client).filter((node) => node !== undefined);
  const startWith =
    nodes.find((node) => node.isReady && !silent.has(node)) ?? nodes[0] ?? client.pubSubNode?.client;
  if (!startWith || !client.isOpen) return Promise.resolve();
  const refresh = client._slots
    .rediscover(startWith as never)
    .catch(() => {})
    .finally(() => refreshing.delete(client));
  refreshing.set(client, refresh);
  return refresh;
}

/** True when some slot has no primary in the client's map, which makes node-redis throw a TypeError. */
const hasSlotWithoutPrimary = (client: TopologyAware) => {
  for (const shard of client.slots) if (shard === undefined) return true;
  return false;
};

const answersWithin = (node: NodeClient | undefined, ms: number): Promise<boolean> => {
  if (!node?.isReady) return Promise.resolve(false);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const answered = node.ping().then(
    () => true,
    () => false,
  );
  return Promise.race([answered, late]).finally(() => clearTimeout(timer));
};

/** The watchdog of one cluster client. */
export interface TopologyWatch {
  /** False once a check found a primary not answering, until a later check finds every one answering. */
  healthy(): boolean;
  stop(): void;
}

/**
 * Re-reads the map whenever a node connection retries (a crashed primary: within one reconnect delay of
 * its replica's promotion), and once a second while a primary is not ready, does not answer a PING
 * within a second (a hung primary under load: its socket never goes idle, so the socket timeout alone
 * would not see it), or a slot has no primary. Calls `onHealthy` with the time each check that found
 * every primary answering began.
 */
export function keepTopologyCurrent(
  client: TopologyAware,
  onHealthy: (checkStartedAt: number) => void = () => {},
): TopologyWatch {
  client.on('node-reconnecting', () => void refreshTopology(client));
  let checking = false;
  let healthy = true;
  const check = async () => {
    if (checking || !client.isOpen) return;
    checking = true;
    const startedAt = Date.now();
    try {
      const nodes = [...client.masters.map((node) => node.client), client.pubSubNode?.client];
      const answers = await Promise.all(
        nodes.map((node, index) =>
          node === undefined && index === nodes.length - 1
            ? true // no subscription: no pub/sub connection to watch
            : answersWithin(node, WATCH_INTERVAL_MS),
        ),
      );
      healthy = client.masters.length > 0 && !answers.includes(false) && !hasSlotWithoutPrimary(client);
      if (!healthy) await refreshTopology(client, new Set(nodes.filter((_, index) => !answers[index])));
    } finally {
      checking = false;
    }
    if (healthy) onHealthy(startedAt);
  };
  const timer = setInterval(() => void check(), WATCH_INTERVAL_MS).unref();
  return { healthy: () => healthy, stop: () => clearInterval(timer) };
}
