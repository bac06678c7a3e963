// A throwaway Redis Cluster for tests: six real redis-server processes (3 primaries, 3 replicas) on free
// ports in a temp dir, with helpers to crash a primary, wait out its failover and bring it back.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createClient } from '@redis/client';

const HOST = '127.0.0.1';
const SLOTS = 16384;

/**
 * How a node is stopped: `kill` is a crash (SIGKILL); `shutdown` is `SHUTDOWN NOSAVE` (Redis 7 lets the
 * replicas catch up first); `pause` freezes the process (SIGSTOP) like a stalled VM or a partition, until
 * `resumeNode`.
 */
export type StopHow = 'kill' | 'shutdown' | 'pause';

export interface ClusterNode {
  port: number;
  /** The node's own view of itself, from `CLUSTER NODES`. */
  role: 'primary' | 'replica';
  /** For a replica, the port of the primary it follows. */
  primaryPort?: number;
  /** For a primary, its slot ranges as `[from, to]`. */
  slots: Array<[number, number]>;
}

export interface FailoverResult {
  /** The replica that now serves the stopped primary's slots. */
  promotedPort: number;
  /** From the stop until every live node routes those slots to the promoted replica and says `ok`. */
  recoveredAfterMs: number;
}

export interface StartOptions {
  /** `cluster-node-timeout`: how long a silent node goes before it is failed over. Small keeps tests fast. */
  nodeTimeoutMs?: number;
  /** Extra `redis-server` arguments for every node, e.g. `['--cluster-require-full-coverage', 'no']`. */
  serverArgs?: string[];
}

export interface LocalRedisCluster {
  /** `redis://127.0.0.1:<port>` of every node, as `REDIS_CLUSTER` would list them. */
  readonly seedUrls: string[];
  /** `{ url }` of every node: node-redis `createCluster({ rootNodes })`. */
  readonly rootNodes: Array<{ url: string }>;
  /** Every node's port, started or stopped. */
  readonly ports: number[];
  /** The temp dir holding every node's data dir; gone after `stop()`. */
  readonly dir: string;
  /** The roles and slots as the live nodes see them now. */
  topology(): Promise<ClusterNode[]>;
  /** The port of the primary that serves `key`'s slot now. */
  primaryPortOf(key: string): Promise<number>;
  /** One command on one node, on a fresh connection. */
  command(port: number, args: string[]): Promise<unknown>;
  /** Stops a node for real and resolves once its process has exited. */
  stopNode(port: number, how?: StopHow): Promise<void>;
  /** Stops a primary and waits until its replica serves its slots and every live node says `ok`. */
  failover(primaryPort: number, how?: StopHow): Promise<FailoverResult>;
  /** Starts a stopped node again on its port and data dir; it rejoins as a replica. Waits until healthy. */
  restartNode(port: number): Promise<void>;
  /** Lets a paused node run again (SIGCONT); it rejoins as a replica. Waits until healthy. */
  resumeNode(port: number): Promise<void>;
  /** Reshards one slot (with its keys) to another primary, as `redis-cli --cluster reshard` does. */
  moveSlot(slot: number, toPort: number): Promise<void>;
  /** The slot of a key (`CLUSTER KEYSLOT`). */
  slotOf(key: string): Promise<number>;
  /** Resolves once every live node says `ok`, covers all slots, agrees on the map, and replicas are in sync. */
  waitUntilHealthy(timeoutMs?: number): Promise<void>;
  /** Kills every process and deletes the temp dir; safe to call twice. */
  stop(): Promise<void>;
}

interface RunningNode {
  port: number;
  busPort: number;
  dir: string;
  /** The `sh` wrapper; it exits with redis-server. */
  wrapper?: ChildProcess;
  pid?: number;
  paused?: boolean;
  exited?: Promise<void>;
  log: string[];
}

// redis-server has no parent-death signal: this wrapper kills it when the test process's end of stdin
// closes, even if that process dies without running any cleanup. `$!` is echoed first so SIGKILL can
// reach redis-server itself rather than the shell.
const WRAPPER = `exec 3<&0
redis-server "$@" </dev/null &
child=$!
echo "redis-pid:$child"
( read -r _ <&3; kill -9 "$child" 2>/dev/null ) >/dev/null 2>&1 &
wait "$child"`;

const execFileAsync = promisify(execFile);

/**
 * Starts a 3-primary, 3-replica cluster from the `redis-server` binary. Call `stop()` in `afterAll`.
 * Retries on fresh ports if another process took one in the meantime.
 */
export async function startRedisCluster(options: StartOptions = {}): Promise<LocalRedisCluster> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const root = await mkdtemp(join(tmpdir(), 'deadrop-redis-cluster-'));
    const cluster = createLocalCluster(root, await freePorts(12), options);
    try {
      await cluster.create();
      return cluster.handle;
    } catch (error) {
      lastError = error;
      await cluster.handle.stop();
    }
  }
  throw lastError;
}

function createLocalCluster(root: string, freshPorts: number[], options: StartOptions) {
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 1000;
  const nodes = new Map<number, RunningNode>();
  for (let i = 0; i < 6; i++) {
    const port = freshPorts[i] as number;
    nodes.set(port, { port, busPort: freshPorts[i + 6] as number, dir: join(root, String(port)), log: [] });
  }
  const ports = [...nodes.keys()];
  let stopped = false;

  const killAllNow = () => {
    for (const node of nodes.values()) if (node.pid) tryKill(node.pid);
  };
  // A test process that ends without calling stop() (a crash, process.exit) still leaves nothing behind.
  const cleanUpAtExit = () => {
    killAllNow();
    rmSync(root, { recursive: true, force: true });
  };
  process.once('exit', cleanUpAtExit);

  const nodeOf = (port: number) => {
    const node = nodes.get(port);
    if (!node) throw new Error(`No node of this cluster listens on port ${port}`);
    return node;
  };
  const isLive = (node: RunningNode) => node.pid !== undefined && !node.paused;
  const livePorts = () => [...nodes.values()].filter(isLive).map((node) => node.port);

  async function startNode(node: RunningNode) {
    await mkdir(node.dir, { recursive: true });
    const args = [
      ...['--port', String(node.port), '--bind', HOST, '--dir', node.dir],
      ...['--cluster-enabled', 'yes', '--cluster-port', String(node.busPort)],
      ...['--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', String(nodeTimeoutMs)],
      // Any replica may take over, however stale: failover tests must not depend on timing luck.
      ...['--cluster-replica-validity-factor', '0'],
      ...['--save', '', '--appendonly', 'no', '--repl-diskless-sync-delay', '0'],
      ...(options.serverArgs ?? []),
    ];
    const wrapper = spawn('sh', ['-c', WRAPPER, 'redis-wrapper', ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    node.wrapper = wrapper;
    node.log = [];
    node.exited = new Promise((resolve) => wrapper.once('exit', () => resolve()));
    const ready = new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        for (const line of chunk.toString().split('\n')) {
          if (!line) continue;
          node.log.push(line);
          if (node.log.length > 200) node.log.shift();
          const pid = /^redis-pid:(\d+)$/.exec(line);
          if (pid) node.pid = Number(pid[1]);
          if (line.includes('Ready to accept connections')) resolve();
        }
      };
      wrapper.stdout?.on('data', onData);
      wrapper.stderr?.on('data', onData);
      wrapper.once('exit', (code) => {
        node.pid = undefined;
        reject(
          new Error(`redis-server on port ${node.port} exited (${code}): ${node.log.slice(-5).join(' | ')}`),
        );
      });
    });
    await withTimeout(ready, 10_000, `redis-server to start on port ${node.port}`);
  }

  async function stopNode(port: number, how: StopHow = 'kill') {
    const node = nodeOf(port);
    if (node.pid === undefined) return;
    if (node.paused && how !== 'kill') throw new Error(`Port ${port} is paused: only 'kill' can stop it`);
    if (how === 'pause') {
      process.kill(node.pid as number, 'SIGSTOP');
      node.paused = true;
      return;
    }
    if (how === 'kill') tryKill(node.pid as number);
    else await command(port, ['SHUTDOWN', 'NOSAVE']).catch(() => {}); // the connection drops as it exits
    await withTimeout(node.exited as Promise<void>, 15_000, `redis-server on port ${port} to exit`);
    node.pid = undefined;
    node.paused = false;
    node.wrapper?.stdin?.end();
  }

  async function command(port: number, args: string[]): Promise<unknown> {
    const client = createClient({
      socket: { host: HOST, port, reconnectStrategy: false, connectTimeout: 1000 },
    });
    client.on('error', () => {}); // the awaited command reports it
    try {
      await client.connect();
      return await withTimeout(client.sendCommand(args), 2000, `${args.join(' ')} on port ${port}`);
    } finally {
      client.destroy();
    }
  }

  async function topologyFrom(port: number): Promise<ClusterNode[]> {
    const text = String(await command(port, ['CLUSTER', 'NODES']));
    const lines = text
      .trim()
      .split('\n')
      .map((line) => line.split(' '));
    const portOfId = new Map(lines.map((f) => [f[0], Number(/:(\d+)@/.exec(f[1] as string)?.[1])]));
    return lines
      .filter((f) => !(f[2] as string).includes('fail') && !(f[2] as string).includes('noaddr'))
      .map((f) => {
        const primary = (f[2] as string).includes('master');
        return {
          port: portOfId.get(f[0]) as number,
          role: primary ? 'primary' : 'replica',
          ...(!primary && { primaryPort: portOfId.get(f[3]) as number }),
          slots: f
            .slice(8)
            .filter((range) => !range.startsWith('['))
            .map((range) => {
              const [from, to = from] = range.split('-').map(Number);
              return [from, to] as [number, number];
            }),
        } satisfies ClusterNode;
      });
  }

  async function topology() {
    const [first] = livePorts();
    if (first === undefined) throw new Error('No node of the cluster is running');
    return (await topologyFrom(first)).filter((node) => livePorts().includes(node.port));
  }

  /** Which primary port each live node routes the slot ranges to, as one comparable string per node. */
  async function slotMapOf(port: number) {
    const reply = (await command(port, ['CLUSTER', 'SLOTS'])) as Array<[number, number, [string, number]]>;
    return reply
      .map(([from, to, [, primaryPort]]) => `${from}-${to}@${primaryPort}`)
      .sort()
      .join(',');
  }

  async function health(): Promise<string | undefined> {
    const live = livePorts();
    const maps = new Set<string>();
    const views = new Set<string>();
    for (const port of live) {
      const info = parseInfo(String(await command(port, ['CLUSTER', 'INFO'])));
      if (info.cluster_state !== 'ok') return `port ${port} says cluster_state:${info.cluster_state}`;
      if (info.cluster_slots_ok !== String(SLOTS))
        return `port ${port} has ${info.cluster_slots_ok} slots ok`;
      const replication = parseInfo(String(await command(port, ['INFO', 'replication'])));
      if (replication.role === 'slave') {
        if (replication.master_link_status !== 'up')
          return `replica ${port} has its link to the primary down`;
        if (replication.master_sync_in_progress !== '0') return `replica ${port} is still syncing`;
      }
      const map = await slotMapOf(port);
      if (map.split(',').some((range) => !live.includes(Number(range.split('@')[1])))) {
        return `port ${port} still routes slots to a stopped node: ${map}`;
      }
      maps.add(map);
      // Roles spread by gossip after the slots do: a replica may still look like an empty primary.
      const view = (await topologyFrom(port)).filter((node) => live.includes(node.port));
      const empty = view.find((node) => node.role === 'primary' && node.slots.length === 0);
      if (empty) return `port ${port} sees ${empty.port} as a primary without slots`;
      views.add(
        view
          .map((node) => `${node.port}:${node.primaryPort ?? 'primary'}`)
          .sort()
          .join(','),
      );
    }
    if (maps.size > 1) return `the nodes disagree on the slot map: ${[...maps].join(' vs ')}`;
    if (views.size > 1) return `the nodes disagree on the roles: ${[...views].join(' vs ')}`;
    return undefined;
  }

  async function waitUntilHealthy(timeoutMs = 20_000) {
    const deadline = Date.now() + timeoutMs;
    let problem: string | undefined = 'not checked yet';
    while (Date.now() < deadline) {
      problem = await health().catch((error: Error) => `a node did not answer: ${error.message}`);
      if (!problem) return;
      await delay(50);
    }
    throw new Error(`The Redis cluster did not become healthy in ${timeoutMs} ms: ${problem}`);
  }

  async function failover(primaryPort: number, how: StopHow = 'kill'): Promise<FailoverResult> {
    const before = await topology();
    const replica = before.find((node) => node.role === 'replica' && node.primaryPort === primaryPort);
    if (!replica) throw new Error(`Port ${primaryPort} is not a primary with a live replica`);
    const startedAt = Date.now();
    await stopNode(primaryPort, how);
    await waitUntilHealthy();
    const after = await topology();
    if (after.find((node) => node.port === replica.port)?.role !== 'primary') {
      throw new Error(`Replica ${replica.port} was not promoted after ${primaryPort} stopped`);
    }
    return { promotedPort: replica.port, recoveredAfterMs: Date.now() - startedAt };
  }

  async function restartNode(port: number) {
    const node = nodeOf(port);
    if (node.pid !== undefined) throw new Error(`Port ${port} is still running`);
    await startNode(node);
    await waitUntilHealthy();
  }

  async function resumeNode(port: number) {
    const node = nodeOf(port);
    if (!node.paused) throw new Error(`Port ${port} is not paused`);
    process.kill(node.pid as number, 'SIGCONT');
    node.paused = false;
    await waitUntilHealthy();
  }

  async function slotOf(key: string) {
    return Number(await command(livePorts()[0] as number, ['CLUSTER', 'KEYSLOT', key]));
  }

  const nodeIdOf = async (port: number) => String(await command(port, ['CLUSTER', 'MYID']));

  // The steps of the cluster spec's "live resharding": mark, migrate the keys, then assign everywhere.
  async function moveSlot(slot: number, toPort: number) {
    const primaries = (await topology()).filter((node) => node.role === 'primary');
    const from = primaries.find((node) => node.slots.some(([a, b]) => slot >= a && slot <= b));
    if (!from) throw new Error(`No live primary serves slot ${slot}`);
    if (from.port === toPort) return;
    const [fromId, toId] = await Promise.all([nodeIdOf(from.port), nodeIdOf(toPort)]);
    await command(toPort, ['CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', fromId]);
    await command(from.port, ['CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', toId]);
    for (;;) {
      const keys = (await command(from.port, ['CLUSTER', 'GETKEYSINSLOT', String(slot), '100'])) as string[];
      if (keys.length === 0) break;
      await command(from.port, ['MIGRATE', HOST, String(toPort), '', '0', '5000', 'KEYS', ...keys]);
    }
    for (const port of [toPort, from.port, ...primaries.map((node) => node.port)]) {
      await command(port, ['CLUSTER', 'SETSLOT', String(slot), 'NODE', toId]);
    }
    await waitUntilHealthy();
  }

  async function create() {
    await Promise.all([...nodes.values()].map(startNode));
    const addresses = ports.map((port) => `${HOST}:${port}`);
    await execFileAsync(
      'redis-cli',
      ['--cluster', 'create', ...addresses, '--cluster-replicas', '1', '--cluster-yes'],
      { timeout: 30_000 },
    );
    await waitUntilHealthy();
    const roles = await topology();
    if (roles.filter((node) => node.role === 'primary').length !== 3 || roles.length !== 6) {
      throw new Error(`Expected 3 primaries and 3 replicas, got ${JSON.stringify(roles)}`);
    }
  }

  const handle: LocalRedisCluster = {
    seedUrls: ports.map((port) => `redis://${HOST}:${port}`),
    rootNodes: ports.map((port) => ({ url: `redis://${HOST}:${port}` })),
    ports,
    dir: root,
    topology,
    primaryPortOf: async (key) => {
      const slot = await slotOf(key);
      const owner = (await topology()).find(
        (node) => node.role === 'primary' && node.slots.some(([from, to]) => slot >= from && slot <= to),
      );
      if (!owner) throw new Error(`No live primary serves slot ${slot}`);
      return owner.port;
    },
    command,
    stopNode,
    failover,
    restartNode,
    resumeNode,
    moveSlot,
    slotOf,
    waitUntilHealthy,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      killAllNow();
      await Promise.all(
        [...nodes.values()].map(async (node) => {
          node.wrapper?.stdin?.end();
          if (node.pid !== undefined)
            await withTimeout(node.exited as Promise<void>, 5000, 'exit').catch(() => {});
          node.pid = undefined;
        }),
      );
      process.off('exit', cleanUpAtExit);
      await rm(root, { recursive: true, force: true });
    },
  };
  return { handle, create };
}

/** `n` distinct ports that were free a moment ago (all held open together so none repeats). */
async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < n; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, HOST, resolve);
      });
      const address = server.address();
      if (address && typeof address === 'object') ports.push(address.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}

/** `INFO` / `CLUSTER INFO` text → fields. */
export function parseInfo(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const sep = line.indexOf(':');
    if (sep > 0 && !line.startsWith('#')) fields[line.slice(0, sep)] = line.slice(sep + 1);
  }
  return fields;
}

function tryKill(pid: number) {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
