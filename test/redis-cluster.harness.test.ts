// The local Redis Cluster harness: six real redis-server processes, a real failover, and a clean exit.
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { createCluster, type RedisClusterType } from '@redis/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from './helpers.js';
import { clusterOptionsFor, refreshTopologyOnReconnect } from './support/cluster-client.js';
import { type LocalRedisCluster, startRedisCluster } from './support/redis-cluster.js';

const portAnswers = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

describe('a local Redis Cluster', () => {
  let cluster: LocalRedisCluster;
  let client: RedisClusterType;
  let crashedPort: number | undefined;

  beforeAll(async () => {
    cluster = await startRedisCluster();
    client = refreshTopologyOnReconnect(createCluster(clusterOptionsFor(cluster)));
    client.on('error', () => {}); // a node going away is what these tests do
    client.on('node-error', () => {});
    await client.connect();
  });

  afterAll(async () => {
    client?.destroy();
    await cluster?.stop();
  });

  it('starts three primaries with one replica each, covering all 16384 slots', async () => {
    const nodes = await cluster.topology();
    const primaries = nodes.filter((node) => node.role === 'primary');
    const replicas = nodes.filter((node) => node.role === 'replica');
    expect(primaries).toHaveLength(3);
    expect(replicas.map((node) => node.primaryPort).sort()).toEqual(
      primaries.map((node) => node.port).sort(),
    );
    const slots = primaries.flatMap((node) => node.slots).reduce((sum, [from, to]) => sum + to - from + 1, 0);
    expect(slots).toBe(16384);
    expect(cluster.seedUrls).toHaveLength(6);
  });

  it('stores keys on every shard and keeps the keys of one hash tag together', async () => {
    const keys = Array.from({ length: 30 }, (_, i) => `harness:${i}`);
    await Promise.all(keys.map((key) => client.set(key, `value of ${key}`)));
    expect(await Promise.all(keys.map((key) => client.get(key)))).toEqual(
      keys.map((key) => `value of ${key}`),
    );
    const owners = new Set(await Promise.all(keys.map((key) => cluster.primaryPortOf(key))));
    expect(owners.size).toBe(3);

    const tagged = ['dr:{pub1}:q', 'dr:{pub1}:hook', 'dr:{pub1}:log'];
    expect(new Set(await Promise.all(tagged.map((key) => cluster.slotOf(key)))).size).toBe(1);
    await client.mSet(tagged.map((key) => [key, key] as [string, string]));
    expect(await client.mGet(tagged)).toEqual(tagged);
  });

  it('fails a crashed primary over to its replica, and writes to its slots succeed again', async () => {
    const key = 'harness:failover';
    const primary = await cluster.primaryPortOf(key);
    await client.set(key, 'before');
    // WAIT: the value is on the replica before the crash, so the promoted replica must have it.
    expect(await client.sendCommand(key, false, ['WAIT', '1', '1000'])).toBe(1);

    const { promotedPort, recoveredAfterMs } = await cluster.failover(primary, 'kill');
    crashedPort = primary;
    expect(await portAnswers(primary)).toBe(false);

    expect(await cluster.primaryPortOf(key)).toBe(promotedPort);
    expect(recoveredAfterMs).toBeLessThan(15_000);
    await waitFor(
      () =>
        client.set(key, 'after').then(
          () => true,
          () => false,
        ),
      'a write to the failed-over slot to succeed',
      10_000,
    );
    expect(await cluster.command(promotedPort, ['GET', key])).toBe('after');
  });

  it('brings the crashed node back as a replica of the one that replaced it', async () => {
    if (crashedPort === undefined) throw new Error('the failover test did not crash a primary');
    await cluster.restartNode(crashedPort);
    const nodes = await cluster.topology();
    const back = nodes.find((node) => node.port === crashedPort);
    expect(back?.role).toBe('replica');
    expect(nodes.find((node) => node.port === back?.primaryPort)?.role).toBe('primary');
    expect(nodes).toHaveLength(6);
  });

  it('stop() ends every process and deletes the data dirs', async () => {
    expect(existsSync(cluster.dir)).toBe(true);
    await cluster.stop();
    for (const port of cluster.ports) expect(await portAnswers(port)).toBe(false);
    expect(existsSync(cluster.dir)).toBe(false);
  });
});
