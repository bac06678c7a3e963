// The store on a real local Redis Cluster (3 primaries, 3 replicas): the whole store contract, every key of
// a key pair in one slot, and the node-redis version the topology workaround was verified on.
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pipeKeys } from '../src/pipe/redis-token-registry.js';
import { TOPOLOGY_WORKAROUND_VERIFIED_ON } from '../src/store/redis-cluster-topology.js';
import {
  closeConnection,
  createRedisClusterConnection,
  isConnectionReady,
  type RedisConnection,
} from '../src/store/redis-connection.js';
import { createRedisStore } from '../src/store/redis-store.js';
import { storeKeys } from '../src/store/store.js';
import { openTestBackend, waitFor } from './helpers.js';
import { type ContractFixture, storeContract } from './store.contract.js';
import { type LocalRedisCluster, startRedisCluster } from './support/redis-cluster.js';

let cluster: LocalRedisCluster;
const connections: RedisConnection[] = [];

beforeAll(async () => {
  cluster = await startRedisCluster();
});

afterAll(async () => {
  await Promise.all(connections.map(closeConnection));
  await cluster?.stop();
});

async function connect(): Promise<RedisConnection> {
  const client = createRedisClusterConnection(cluster.seedUrls, () => {});
  connections.push(client);
  await waitFor(() => isConnectionReady(client), 'the cluster client to reach every primary');
  return client;
}

/** Redis's clock in ms (the node the command lands on; every node of the local cluster shares one clock). */
async function clusterNow(client: RedisConnection): Promise<number> {
  const [seconds, micros] = await client.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

storeContract('redis cluster', async (): Promise<ContractFixture> => {
  const client = await connect();
  return {
    store: createRedisStore(client),
    // The cluster's clock cannot be moved: wait until it has moved past the given time.
    elapse: async (ms) => {
      const until = (await clusterNow(client)) + ms;
      await waitFor(async () => (await clusterNow(client)) > until, `the cluster's clock to pass ${ms} ms`);
    },
    dispose: async () => {},
  };
});

const pub = () => randomBytes(24).toString('base64url');

describe('key placement on the cluster', () => {
  it('puts every key a key pair can have, store and pipes, in the slot of its hash tag', async () => {
    const key = pub();
    const keys = storeKeys(key);
    const named = [
      keys.queue,
      keys.value,
      keys.field('uid-1'),
      keys.fieldIndex,
      keys.blobSizes,
      keys.log,
      keys.logSeq,
      keys.hook,
      ...Object.values(pipeKeys(key, 'in')),
      ...Object.values(pipeKeys(key, 'out')),
      `dr:{${key}}:n`, // the wake-up channel
    ];
    const slots = await Promise.all(named.map((name) => cluster.slotOf(name)));
    expect(new Set(slots)).toEqual(new Set([await cluster.slotOf(`{${key}}`)]));
  });

  it('writes each key pair to one primary only, and spreads key pairs over every primary', async () => {
    const { backend, dispose } = await openTestBackend('redis', {
      config: { redisCluster: cluster.seedUrls },
    });
    try {
      // 30 random key pairs leave a primary without one once in 60,000 runs.
      const pairs = Array.from({ length: 30 }, pub);
      for (const key of pairs) {
        await backend.store.appendToQueue(key, '{"n":1}', 60_000, 10);
        await backend.store.moveToLog(key, 60_000, 10);
        await backend.store.appendToQueue(key, '{"n":2}', 60_000, 10);
        await backend.store.publishValue(key, '{"v":1}', 60_000);
        await backend.store.putField(key, 'blob', Buffer.from('bytes'), 60_000, {
          maxFields: 10,
          blobQuota: 1000,
        });
        await backend.store.putField(key, 'json', '{"j":1}', 60_000, { maxFields: 10, blobQuota: 1000 });
        await backend.store.setHook(key, 'record', 60_000);
        await backend.pipes.arrive({
          pub: key,
          dir: 'in',
          role: 'sender',
          method: 'POST',
          baseUrl: undefined,
        });
      }
      const primaries = (await cluster.topology()).filter((node) => node.role === 'primary');
      const owners = new Map<string, Set<number>>();
      for (const primary of primaries) {
        const found = (await cluster.command(primary.port, ['KEYS', 'dr:{*'])) as string[];
        for (const name of found) {
          const key = /^dr:\{([^}]+)\}:/.exec(name)?.[1] as string;
          if (!pairs.includes(key)) continue;
          owners.set(key, (owners.get(key) ?? new Set()).add(primary.port));
        }
      }
      expect([...owners.keys()].sort()).toEqual([...pairs].sort());
      for (const ports of owners.values()) expect(ports.size).toBe(1);
      expect(new Set([...owners.values()].flatMap((ports) => [...ports])).size).toBe(primaries.length);
    } finally {
      await dispose();
    }
  });
});

describe('the node-redis topology workaround', () => {
  it(`was verified on the installed @redis/client (${TOPOLOGY_WORKAROUND_VERIFIED_ON})`, () => {
    const installed = (createRequire(import.meta.url)('@redis/client/package.json') as { version: string })
      .version;
    // On another version, re-run test/redis-cluster.*.test.ts, check src/store/redis-cluster-topology.ts
    // against its cluster-slots.js, and update TOPOLOGY_WORKAROUND_VERIFIED_ON.
    expect(installed).toBe(TOPOLOGY_WORKAROUND_VERIFIED_ON);
  });
});
