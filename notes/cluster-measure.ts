// Measures, on a real local Redis Cluster, what a primary failover costs a node-redis client: the gap of
// errors, the acknowledged writes lost, and what WAIT adds. Run: npx tsx notes/cluster-measure.ts [runs]
import { createCluster, type RedisClusterType } from '@redis/client';
import { clusterOptionsFor, refreshTopologyOnReconnect } from '../test/support/cluster-client.js';
import { type LocalRedisCluster, type StopHow, startRedisCluster } from '../test/support/redis-cluster.js';

const RUNS = Number(process.argv[2] ?? 3);
const WRITERS = 32; // concurrent writers on the shard that fails
const AFTER_MS = 1500; // load kept up after the cluster is healthy again

interface Scenario {
  name: string;
  how: StopHow;
  /** Detect a hung node: PING every 500 ms, close a socket silent for 1500 ms. */
  hangDetection: boolean;
  /** Count a write as acknowledged only once `WAIT 1 <ms>` says a replica has it. */
  waitMs?: number;
  serverArgs?: string[];
}

const scenarios: Scenario[] = [
  { name: 'kill (SIGKILL)', how: 'kill', hangDetection: true },
  { name: 'SHUTDOWN NOSAVE', how: 'shutdown', hangDetection: true },
  { name: 'pause (SIGSTOP), no hang detection', how: 'pause', hangDetection: false },
  { name: 'pause (SIGSTOP), hang detection', how: 'pause', hangDetection: true },
  { name: 'pause, hang detection, WAIT 1 100', how: 'pause', hangDetection: true, waitMs: 100 },
  { name: 'kill, require-full-coverage no', how: 'kill', hangDetection: true, serverArgs: fullCoverageOff() },
];

function fullCoverageOff() {
  return ['--cluster-require-full-coverage', 'no'];
}

interface Outcome {
  promotedMs: number;
  acked: number;
  lost: number;
  /** From the stop to the last error on the failed shard (ms). */
  failedShardGapMs: number;
  /** Errors on the other shards, and over how long. */
  otherShardErrors: number;
  otherShardGapMs: number;
  /** The longest a write on the failed shard took to be acknowledged (ms): a hang, not an error. */
  slowestAckMs: number;
  errorKinds: Set<string>;
}

async function runScenario(scenario: Scenario): Promise<Outcome> {
  const cluster = await startRedisCluster({ serverArgs: scenario.serverArgs ?? [] });
  const base = clusterOptionsFor(cluster);
  const client = refreshTopologyOnReconnect(
    createCluster({
      ...base,
      defaults: {
        ...base.defaults,
        ...(scenario.hangDetection && { pingInterval: 500 }),
        socket: { ...base.defaults.socket, ...(scenario.hangDetection && { socketTimeout: 1500 }) },
      },
    }),
  );
  client.on('error', () => {});
  client.on('node-error', () => {});
  await client.connect();
  try {
    const victimKey = '{victim}:list';
    const victim = await cluster.primaryPortOf(victimKey);
    const otherKey = await keyOnAnotherShard(cluster, victim);
    const acked: string[] = [];
    const errorKinds = new Set<string>();
    let stoppedAt = 0;
    let lastVictimError = 0;
    let otherErrors = 0;
    let firstOtherError = 0;
    let lastOtherError = 0;
    let running = true;
    let slowestAckMs = 0;

    const write = async (key: string, value: string) => {
      if (scenario.waitMs === undefined) return void (await client.rPush(key, value));
      const [, replicas] = await Promise.all([
        client.rPush(key, value),
        client.sendCommand(key, false, ['WAIT', '1', String(scenario.waitMs)]),
      ]);
      if (Number(replicas) < 1) throw new Error('WAIT: no replica has it');
    };
    const writer = async (id: number, key: string) => {
      for (let seq = 0; running; seq++) {
        const value = `${id}:${seq}`;
        const started = Date.now();
        try {
          await write(key, value);
          if (key === victimKey) {
            acked.push(value);
            slowestAckMs = Math.max(slowestAckMs, Date.now() - started);
          }
        } catch (error) {
          errorKinds.add(`${(error as Error).constructor.name}: ${(error as Error).message.slice(0, 60)}`);
          if (stoppedAt === 0) continue;
          if (key === victimKey) lastVictimError = Date.now();
          else {
            otherErrors++;
            firstOtherError ||= Date.now();
            lastOtherError = Date.now();
          }
          await delay(5);
        }
      }
    };
    const writers = [
      ...Array.from({ length: WRITERS }, (_, id) => writer(id, victimKey)),
      writer(WRITERS, otherKey),
    ];
    await delay(300);
    stoppedAt = Date.now();
    const { recoveredAfterMs } = await cluster.failover(victim, scenario.how);
    if (scenario.how === 'pause') await cluster.resumeNode(victim);
    await delay(AFTER_MS);
    running = false;
    await Promise.all(writers);

    const stored = new Set(await client.lRange(victimKey, 0, -1));
    return {
      promotedMs: recoveredAfterMs,
      acked: acked.length,
      lost: acked.filter((value) => !stored.has(value)).length,
      failedShardGapMs: lastVictimError ? lastVictimError - stoppedAt : 0,
      otherShardErrors: otherErrors,
      otherShardGapMs: lastOtherError - firstOtherError,
      slowestAckMs,
      errorKinds,
    };
  } finally {
    client.destroy();
    await cluster.stop();
  }
}

async function keyOnAnotherShard(cluster: LocalRedisCluster, port: number) {
  for (let i = 0; ; i++) {
    const key = `{other${i}}:list`;
    if ((await cluster.primaryPortOf(key)) !== port) return key;
  }
}

/** Round trip of SET alone, SET then WAIT, and SET with WAIT pipelined, on a healthy cluster. */
async function measureWait() {
  const cluster = await startRedisCluster();
  const client = createCluster(clusterOptionsFor(cluster));
  client.on('error', () => {});
  await client.connect();
  const n = 2000;
  const key = '{wait}:k';
  const time = async (op: (i: number) => Promise<unknown>) => {
    const started = performance.now();
    for (let i = 0; i < n; i++) await op(i);
    return ((performance.now() - started) / n) * 1000;
  };
  try {
    const rows = [];
    for (let run = 0; run < RUNS; run++) {
      const set = await time((i) => client.set(key, String(i)));
      const sequential = await time(async (i) => {
        await client.set(key, String(i));
        await client.sendCommand(key, false, ['WAIT', '1', '100']);
      });
      const pipelined = await time((i) =>
        Promise.all([client.set(key, String(i)), client.sendCommand(key, false, ['WAIT', '1', '100'])]),
      );
      const [alone, waited] = [await writesPerSecond(client, false), await writesPerSecond(client, true)];
      rows.push({ set, sequential, pipelined, alone, waited });
    }
    return rows;
  } finally {
    client.destroy();
    await cluster.stop();
  }
}

/** Writes per second from WRITERS concurrent writers on one node-redis cluster client, for one second. */
async function writesPerSecond(client: RedisClusterType, wait: boolean) {
  const until = Date.now() + 1000;
  let count = 0;
  await Promise.all(
    Array.from({ length: WRITERS }, async (_, id) => {
      const key = `{wait}:${id}`;
      while (Date.now() < until) {
        await Promise.all([
          client.set(key, 'v'),
          ...(wait ? [client.sendCommand(key, false, ['WAIT', '1', '100'])] : []),
        ]);
        count++;
      }
    }),
  );
  return count;
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const spread = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return `${sorted[Math.floor(sorted.length / 2)]} (${sorted[0]}–${sorted[sorted.length - 1]})`;
};

console.log(
  `Failover on a local 3+3 cluster, cluster-node-timeout 1000 ms, ${WRITERS} writers, ${RUNS} runs`,
);
console.log('median (min–max) per scenario\n');
for (const scenario of scenarios) {
  const outcomes: Outcome[] = [];
  for (let run = 0; run < RUNS; run++) outcomes.push(await runScenario(scenario));
  const kinds = new Set(outcomes.flatMap((outcome) => [...outcome.errorKinds]));
  console.log(`## ${scenario.name}`);
  console.log(`  replica promoted, cluster ok after ms: ${spread(outcomes.map((o) => o.promotedMs))}`);
  console.log(`  failed shard: last error after ms:     ${spread(outcomes.map((o) => o.failedShardGapMs))}`);
  console.log(`  acknowledged writes:                   ${spread(outcomes.map((o) => o.acked))}`);
  console.log(`  acknowledged writes lost:              ${spread(outcomes.map((o) => o.lost))}`);
  console.log(`  slowest acknowledged write, ms:        ${spread(outcomes.map((o) => o.slowestAckMs))}`);
  console.log(
    `  other shards: errors / over ms:        ${spread(outcomes.map((o) => o.otherShardErrors))} / ${spread(outcomes.map((o) => o.otherShardGapMs))}`,
  );
  console.log(`  errors seen: ${[...kinds].join(' | ')}\n`);
}

const waits = await measureWait();
console.log('## WAIT 1 100 after a write (µs per write, sequential loop on one connection)');
console.log(`  SET alone:             ${spread(waits.map((w) => Math.round(w.set)))}`);
console.log(`  SET, then WAIT:        ${spread(waits.map((w) => Math.round(w.sequential)))}`);
console.log(`  SET + WAIT pipelined:  ${spread(waits.map((w) => Math.round(w.pipelined)))}`);
console.log(`## The same, ${WRITERS} concurrent writers on one client (writes per second)`);
console.log(`  SET alone:             ${spread(waits.map((w) => w.alone))}`);
console.log(`  SET + WAIT pipelined:  ${spread(waits.map((w) => w.waited))}`);
