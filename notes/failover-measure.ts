// The relay failover test's measurement, repeated: two `deadrop serve` processes on a local Redis Cluster
// under a steady load of posts while a primary is killed, shut down or frozen, on a fresh cluster per
// setting. Run: npx tsx notes/failover-measure.ts [runs] [--full-coverage-no]
import { randomBytes } from 'node:crypto';
import { type FailoverReport, measureFailover } from '../test/support/failover-load.js';
import { type StopHow, startRedisCluster } from '../test/support/redis-cluster.js';
import { startRelayProcess } from '../test/support/relay-process.js';

const RUNS = Number(process.argv[2] ?? 3);
const fullCoverageNo = process.argv.includes('--full-coverage-no');

const cluster = await startRedisCluster({
  serverArgs: fullCoverageNo ? ['--cluster-require-full-coverage', 'no'] : [],
});
const env = {
  REDIS_CLUSTER: cluster.seedUrls.join(','),
  DEADROP_SECRET: randomBytes(24).toString('base64url'),
  LOG_LEVEL: 'warn',
  DEADROP_MAX_QUEUE: '1000000',
  DEADROP_RATE_LIMIT: '1000000000',
  DEADROP_WRITE_BUDGET: '1099511627776',
  DEADROP_TRUST_PROXY: '1',
};
const relays = await Promise.all([startRelayProcess(env), startRelayProcess(env)]);
const results: FailoverReport[] = [];
try {
  for (let run = 0; run < RUNS; run++) {
    for (const how of ['kill', 'shutdown', 'pause'] as StopHow[]) {
      const result = await measureFailover({ cluster, relays: relays.map((relay) => relay.url), how });
      results.push(result);
      console.log(JSON.stringify(result));
    }
  }
} finally {
  await Promise.all(relays.map((relay) => relay.stop()));
  await cluster.stop();
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
};
const spread = (values: number[]) => `${median(values)} (${Math.min(...values)}–${Math.max(...values)})`;
console.log(
  `\ncluster-require-full-coverage ${fullCoverageNo ? 'no' : 'yes'}, ${RUNS} runs each, median (min–max)\n`,
);
console.log(
  '| stop | promoted (ms) | last 503 (ms after the stop) | 503s elsewhere | acknowledged | lost | duplicated | slowest answer (ms) |',
);
console.log('|---|---|---|---|---|---|---|---|');
for (const how of ['kill', 'shutdown', 'pause'] as StopHow[]) {
  const of = results.filter((result) => result.how === how);
  console.log(
    `| ${how} | ${spread(of.map((r) => r.promotedAfterMs))} | ${spread(of.map((r) => r.lastErrorAfterMs ?? 0))} | ${spread(of.map((r) => r.failedElsewhere))} | ${of.reduce((sum, r) => sum + r.acknowledged, 0)} | ${of.reduce((sum, r) => sum + r.lost, 0)} | ${of.reduce((sum, r) => sum + r.duplicates, 0)} | ${spread(of.map((r) => r.slowestMs))} |`,
  );
}
