// A primary of a local Redis Cluster stopped under a steady load of posts through relay instances (real
// processes), and what came of it: statuses over time, when the relay served again, and every
// acknowledged item looked for afterwards (lost, duplicated).
import type { LocalRedisCluster, StopHow } from './redis-cluster.js';

interface KeyPair {
  private: string;
  public: string;
}

export interface FailoverOptions {
  cluster: LocalRedisCluster;
  /** Base URLs of the relay instances (trusting one proxy: DEADROP_TRUST_PROXY=1); posts go to each in turn. */
  relays: readonly string[];
  how: StopHow;
  /** Posts in flight at once (each worker posts, waits for the answer, posts again). */
  concurrency?: number;
  /** Key pairs the posts go to, spread over every shard. */
  keyPairs?: number;
  /** Load before the stop, and after the relay serves the failed shard again. */
  steadyMs?: number;
}

export interface FailoverReport {
  how: StopHow;
  /** From the stop until the replica serves the slots and every live node says ok (the harness's view). */
  promotedAfterMs: number;
  /** From the stop until the first answer other than 200, and until the last one. */
  firstErrorAfterMs: number | undefined;
  lastErrorAfterMs: number | undefined;
  /** Answers by status (`error` for a request that got no HTTP answer). */
  statuses: Record<string, number>;
  /** Of the posts to key pairs on the stopped primary's shard, and on the others. */
  failedOnShard: number;
  failedElsewhere: number;
  acknowledged: number;
  /** Acknowledged (200) items not found when everything was read back. */
  lost: number;
  /** Items read back more than once. */
  duplicates: number;
  /** Items that got a 503 and were stored all the same (the write went through, its answer did not). */
  storedDespite503: number;
  /** The slowest answer of the whole run, in ms. */
  slowestMs: number;
  /** Posts per second over the whole run, all relays together. */
  postsPerSecond: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function fetchKeyPairs(relay: string, count: number): Promise<KeyPair[]> {
  return Promise.all(
    Array.from({ length: count }, async () => (await (await fetch(`${relay}/keys`)).json()) as KeyPair),
  );
}

/**
 * Posts `{seq}` items until told to stop, stops `how` the primary serving the first key pair once the
 * load is steady, waits for its replica, keeps posting until every relay has answered 200 on that shard
 * again (and `steadyMs` more), brings the stopped node back as a replica, then drains every key pair.
 */
export async function measureFailover(options: FailoverOptions): Promise<FailoverReport> {
  const { cluster, relays, how } = options;
  const concurrency = options.concurrency ?? 16;
  const steadyMs = options.steadyMs ?? 1000;
  const pairs = await fetchKeyPairs(relays[0] as string, options.keyPairs ?? 24);
  const victim = await cluster.primaryPortOf(`dr:{${(pairs[0] as KeyPair).public}}:q`);
  const onVictim = new Set<string>();
  for (const pair of pairs) {
    if ((await cluster.primaryPortOf(`dr:{${pair.public}}:q`)) === victim) onVictim.add(pair.public);
  }

  const acked = new Set<number>();
  const refused = new Set<number>();
  const statuses: Record<string, number> = {};
  const errorTimes: number[] = [];
  let failedOnShard = 0;
  let failedElsewhere = 0;
  let slowestMs = 0;
  let nextSeq = 0;
  let stopping = false;
  let stoppedAt: number | undefined;
  /** Per relay, the time of its last 200 on the failed shard. */
  const servedAgain = new Map<string, number>();

  // Each worker is a client address of its own (the relays trust one proxy): rate-limit counters are
  // per address, so they spread over the shards as real clients' do.
  const worker = async (index: number) => {
    const address = `198.51.100.${index + 1}`;
    while (!stopping) {
      const seq = nextSeq++;
      const pair = pairs[seq % pairs.length] as KeyPair;
      const relay = relays[seq % relays.length] as string;
      const started = Date.now();
      let status: string;
      try {
        const answer = await fetch(`${relay}/public/${pair.public}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-forwarded-for': address },
          body: JSON.stringify({ seq }),
          signal: AbortSignal.timeout(30_000),
        });
        await answer.arrayBuffer();
        status = String(answer.status);
      } catch {
        status = 'error';
      }
      const now = Date.now();
      slowestMs = Math.max(slowestMs, now - started);
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (status === '200') {
        acked.add(seq);
        if (stoppedAt !== undefined && onVictim.has(pair.public)) servedAgain.set(relay, now);
      } else {
        refused.add(seq);
        errorTimes.push(now);
        if (onVictim.has(pair.public)) failedOnShard++;
        else failedElsewhere++;
      }
    }
  };
  const runStarted = Date.now();
  const workers = Array.from({ length: concurrency }, (_, index) => worker(index));

  await sleep(steadyMs);
  stoppedAt = Date.now();
  const { recoveredAfterMs: promotedAfterMs } = await cluster.failover(victim, how);
  // Served again: every relay answered 200 on the failed shard after the last error, for steadyMs.
  const deadline = Date.now() + 20_000;
  for (;;) {
    const lastError = errorTimes.at(-1) ?? 0;
    const allServed = relays.every((relay) => (servedAgain.get(relay) ?? 0) > lastError);
    if (allServed && Date.now() - lastError >= steadyMs) break;
    if (Date.now() > deadline) break;
    await sleep(50);
  }
  stopping = true;
  await Promise.all(workers);
  const runMs = Date.now() - runStarted;

  if (how === 'pause') await cluster.resumeNode(victim);
  else await cluster.restartNode(victim);

  const found = new Map<number, number>();
  for (const pair of pairs) {
    const answer = await fetch(`${relays[0]}/private/${pair.private}`);
    if (answer.status === 404) {
      await answer.arrayBuffer();
      continue;
    }
    if (answer.status !== 200) throw new Error(`reading back answered ${answer.status}`);
    for (const item of (await answer.json()) as Array<{ seq: number }>) {
      found.set(item.seq, (found.get(item.seq) ?? 0) + 1);
    }
  }
  const since = (time: number | undefined) =>
    time === undefined || stoppedAt === undefined ? undefined : time - stoppedAt;
  return {
    how,
    promotedAfterMs,
    firstErrorAfterMs: since(errorTimes[0]),
    lastErrorAfterMs: since(errorTimes.at(-1)),
    statuses,
    failedOnShard,
    failedElsewhere,
    acknowledged: acked.size,
    lost: [...acked].filter((seq) => !found.has(seq)).length,
    duplicates: [...found.values()].filter((count) => count > 1).length,
    storedDespite503: [...refused].filter((seq) => found.has(seq)).length,
    slowestMs,
    postsPerSecond: Math.round(((acked.size + refused.size) * 1000) / runMs),
  };
}
