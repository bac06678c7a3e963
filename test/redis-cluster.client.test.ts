// What node-redis 5 does on a real Redis Cluster, as the relay's cluster support relies on it: script
// and MULTI routing, pub/sub, WAIT, per-node INFO, rate-limiter-flexible, and a crashed primary.
import { type CommandParser, createCluster, defineScript } from '@redis/client';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from './helpers.js';
import { clusterOptionsFor, refreshTopologyOnReconnect } from './support/cluster-client.js';
import { type LocalRedisCluster, parseInfo, startRedisCluster } from './support/redis-cluster.js';

// Both keys must hash to one slot: the relay's keys of a key pair share the tag `{<pub>}`.
const appendAndRemember = defineScript({
  NUMBER_OF_KEYS: 2,
  SCRIPT: `redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[1])
return redis.call('LLEN', KEYS[1])`,
  parseCommand(parser: CommandParser, queue: string, last: string, item: string) {
    parser.pushKey(queue);
    parser.pushKey(last);
    parser.push(item);
  },
  transformReply: (reply: unknown) => Number(reply),
});
const scripts = { appendAndRemember };

let cluster: LocalRedisCluster;
let client: Awaited<ReturnType<typeof connectClient>>;
const extraClients: Array<{ destroy(): void }> = [];

/** A connected cluster client (with the topology refresh unless `plain`), destroyed after the file. */
async function connectClient(options: { plain?: boolean } = {}) {
  const created = createCluster({ ...clusterOptionsFor(cluster), scripts });
  created.on('error', () => {}); // nodes going away is what some tests do
  created.on('node-error', () => {});
  if (!options.plain) refreshTopologyOnReconnect(created);
  await created.connect();
  extraClients.push(created);
  return created;
}

/** A key whose slot is served by `port` (or by another primary than `port` when `elsewhere`). */
async function keyServedBy(port: number, prefix: string, elsewhere = false) {
  for (let i = 0; ; i++) {
    const key = `${prefix}{${i}}`;
    if (((await cluster.primaryPortOf(key)) === port) !== elsewhere) return key;
  }
}

const primaryPorts = async () =>
  (await cluster.topology()).filter((node) => node.role === 'primary').map((node) => node.port);

beforeAll(async () => {
  cluster = await startRedisCluster();
  client = await connectClient();
});

afterAll(async () => {
  for (const extra of extraClients) extra.destroy();
  await cluster?.stop();
});

describe('scripts (defineScript)', () => {
  it('run on the primary of their first key', async () => {
    const [queue, last] = ['dr:{pubA}:q', 'dr:{pubA}:last'];
    expect(await client.appendAndRemember(queue, last, 'one')).toBe(1);
    const owner = await cluster.primaryPortOf(queue);
    expect(await cluster.command(owner, ['LLEN', queue])).toBe(1);
    expect(await cluster.command(owner, ['GET', last])).toBe('one');
  });

  it('fail with CROSSSLOT when their keys hash to two slots, even two slots of one node', async () => {
    await expect(client.appendAndRemember('dr:{pubA}:q', 'dr:{pubB}:last', 'x')).rejects.toThrow(
      /^CROSSSLOT/,
    );
    const owner = await cluster.primaryPortOf('dr:{pubA}:q');
    let sameNode = '';
    for (let i = 0; !sameNode; i++) {
      const key = `dr:{pubA${i}}:last`;
      if ((await cluster.primaryPortOf(key)) === owner) sameNode = key;
    }
    await expect(client.appendAndRemember('dr:{pubA}:q', sameNode, 'x')).rejects.toThrow(/^CROSSSLOT/);
  });

  it('still run on a node that lost its script cache: node-redis answers NOSCRIPT with EVAL', async () => {
    const queue = 'dr:{pubC}:q';
    const owner = await cluster.primaryPortOf(queue);
    await client.appendAndRemember(queue, 'dr:{pubC}:last', 'one');
    await cluster.command(owner, ['SCRIPT', 'FLUSH']);
    expect(await cluster.command(owner, ['SCRIPT', 'EXISTS', appendAndRemember.SHA1])).toEqual([0]);

    expect(await client.appendAndRemember(queue, 'dr:{pubC}:last', 'two')).toBe(2);
    expect(await cluster.command(owner, ['SCRIPT', 'EXISTS', appendAndRemember.SHA1])).toEqual([1]);
  });

  it('are not replicated as scripts: a replica (a future primary) has none cached', async () => {
    const queue = 'dr:{pubD}:q';
    await client.appendAndRemember(queue, 'dr:{pubD}:last', 'one');
    const owner = await cluster.primaryPortOf(queue);
    const replica = (await cluster.topology()).find((node) => node.primaryPort === owner);
    expect(
      await cluster.command(replica?.port as number, ['SCRIPT', 'EXISTS', appendAndRemember.SHA1]),
    ).toEqual([0]);
  });
});

describe('MULTI', () => {
  it('runs on the primary of its first key when every key shares one slot', async () => {
    const replies = await client.multi().rPush('dr:{pubE}:q', 'a').set('dr:{pubE}:last', 'a').exec();
    expect(replies).toEqual([1, 'OK']);
  });

  it('fails over keys of other slots: MOVED when another node has them, CROSSSLOT on the same node', async () => {
    const owner = await cluster.primaryPortOf('dr:{pubE}:q');
    const elsewhere = await keyServedBy(owner, 'multi:', true);
    const sameNode = await keyServedBy(owner, 'multi:');
    await expect(client.multi().get('dr:{pubE}:q').get(elsewhere).exec()).rejects.toThrow(/^MOVED/);
    await expect(client.multi().get('dr:{pubE}:q').get(sameNode).exec()).rejects.toThrow(/^CROSSSLOT/);
  });

  it('does not follow MOVED after its slot moved, while a script (or any command) does', async () => {
    const [queue, last] = ['dr:{pubF}:q', 'dr:{pubF}:last'];
    await client.appendAndRemember(queue, last, 'one');
    const owner = await cluster.primaryPortOf(queue);
    const target = (await primaryPorts()).find((port) => port !== owner) as number;
    await cluster.moveSlot(await cluster.slotOf(queue), target);

    await expect(client.multi().lLen(queue).exec()).rejects.toThrow(/^MOVED/);
    await expect(client.multi().lLen(queue).exec()).rejects.toThrow(/^MOVED/);
    expect(await client.appendAndRemember(queue, last, 'two')).toBe(2); // follows MOVED, re-reads the map
    expect(await client.multi().lLen(queue).exec()).toEqual([2]);
  });
});

describe('pub/sub', () => {
  it('SPUBLISH reaches an SSUBSCRIBE listener through the primary of the channel slot only', async () => {
    const subscriber = await connectClient();
    const channel = 'dr:{pubG}:n';
    const received: string[] = [];
    await subscriber.sSubscribe(channel, (message) => received.push(message));

    expect(await client.sPublish(channel, 'queue')).toBe(1);
    await waitFor(() => received.length === 1, 'the sharded message');
    const owner = await cluster.primaryPortOf(channel);
    for (const port of await primaryPorts()) {
      const [, count] = (await cluster.command(port, ['PUBSUB', 'SHARDNUMSUB', channel])) as [string, number];
      expect(count).toBe(port === owner ? 1 : 0);
    }
  });

  it('classic PUBLISH on any node reaches a SUBSCRIBE listener on another node', async () => {
    const subscriber = await connectClient();
    const channel = 'dr:{pubH}:n';
    const received: string[] = [];
    await subscriber.subscribe(channel, (message) => received.push(message));
    const listeningOn = Number(subscriber.pubSubNode?.address.split(':')[1]);
    const other = (await primaryPorts()).find((port) => port !== listeningOn) as number;

    await cluster.command(other, ['PUBLISH', channel, 'queue']);
    await waitFor(() => received.length === 1, 'the message published on another node');
  });

  it('loses an SSUBSCRIBE listener when its slot moves (node-redis 5.12.1, #3311); SUBSCRIBE keeps its own', async () => {
    const subscriber = await connectClient();
    const channel = 'dr:{pubI}:n';
    const sharded: string[] = [];
    const classic: string[] = [];
    await subscriber.sSubscribe(channel, (message) => sharded.push(message));
    await subscriber.subscribe(channel, (message) => classic.push(message));
    const owner = await cluster.primaryPortOf(channel);
    const target = (await primaryPorts()).find((port) => port !== owner) as number;

    await cluster.moveSlot(await cluster.slotOf(channel), target);

    await client.publish(channel, 'classic');
    await waitFor(() => classic.length === 1, 'the classic message after the move');
    expect(await client.sPublish(channel, 'sharded')).toBe(0);
    expect(await cluster.command(target, ['PUBSUB', 'SHARDNUMSUB', channel])).toEqual([channel, 0]);
    expect(sharded).toEqual([]);
  });
});

describe('WAIT, INFO and rate limits', () => {
  it('WAIT sent with a key runs on that key’s primary and counts its replica', async () => {
    const key = 'dr:{pubJ}:q';
    await client.rPush(key, 'a');
    expect(await client.sendCommand(key, false, ['WAIT', '1', '1000'])).toBe(1);
  });

  it('WAIT waits its whole timeout and answers 0 while the primary has no replica', async () => {
    const key = 'dr:{pubK}:q';
    const owner = await cluster.primaryPortOf(key);
    const replica = (await cluster.topology()).find((node) => node.primaryPort === owner)?.port as number;
    await cluster.stopNode(replica, 'kill');
    try {
      await client.rPush(key, 'a');
      const started = Date.now();
      expect(await client.sendCommand(key, false, ['WAIT', '1', '200'])).toBe(0);
      expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    } finally {
      await cluster.restartNode(replica);
    }
  });

  it('reads used_memory and maxmemory of every primary through nodeClient', async () => {
    const first = client.masters[0];
    if (!first) throw new Error('no primary known');
    await (await client.nodeClient(first)).configSet('maxmemory', String(64 * 1024 * 1024));
    const memory = await Promise.all(
      client.masters.map(async (node) => parseInfo(await (await client.nodeClient(node)).info('memory'))),
    );
    expect(memory).toHaveLength(3);
    for (const info of memory) expect(Number(info.used_memory)).toBeGreaterThan(0);
    expect(memory.map((info) => Number(info.maxmemory)).sort((a, b) => a - b)).toEqual([
      0,
      0,
      64 * 1024 * 1024,
    ]);
  });

  it('rate-limiter-flexible counts per client on the cluster, each counter on the node its key hashes to', async () => {
    const limiter = new RateLimiterRedis({
      storeClient: client,
      useRedisPackage: true,
      keyPrefix: 'dr:rl:test',
      points: 2,
      duration: 60,
    });
    for (const id of ['client-1', 'client-2']) {
      await limiter.delete(id);
      await limiter.consume(id);
      await limiter.consume(id);
      await expect(limiter.consume(id)).rejects.toBeInstanceOf(RateLimiterRes);
    }
    const owner = await cluster.primaryPortOf('dr:rl:test:client-1');
    expect(await cluster.command(owner, ['GET', 'dr:rl:test:client-1'])).toBe('3');
  });
});

describe('when a primary crashes', () => {
  let plain: Awaited<ReturnType<typeof connectClient>>;
  let subscriber: Awaited<ReturnType<typeof connectClient>>;
  let victim: number;
  let key: string;
  let channel: string;
  const classic: string[] = [];
  const sharded: string[] = [];
  const errorsOnVictim = new Set<string>();
  const errorsElsewhere = new Set<string>();
  let recovered = false;

  beforeAll(async () => {
    plain = await connectClient({ plain: true });
    subscriber = await connectClient();
    await subscriber.subscribe('dr:{crash}:n', (message) => classic.push(message));
    // The crash takes the node the classic subscription listens on, and the sharded channel's primary.
    victim = Number(subscriber.pubSubNode?.address.split(':')[1]);
    key = await keyServedBy(victim, 'dr:crash:');
    channel = await keyServedBy(victim, 'dr:crash-channel:');
    await subscriber.sSubscribe(channel, (message) => sharded.push(message));
    await client.appendAndRemember(key, `${key}:last`, 'before');
    expect(await plain.get(`${key}:last`)).toBe('before');

    const elsewhere = await keyServedBy(victim, 'dr:crash-other:', true);
    const writeUntilRecovered = async (target: string, errors: Set<string>) => {
      while (!recovered) {
        await client.set(target, 'x').catch((error: Error) => errors.add(error.constructor.name));
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    const writers = [
      writeUntilRecovered(`${key}:w`, errorsOnVictim),
      writeUntilRecovered(elsewhere, errorsElsewhere),
    ];
    await cluster.failover(victim, 'kill');
    await waitFor(
      () =>
        client.set(`${key}:w`, 'after').then(
          () => true,
          () => false,
        ),
      'a write to the crashed slots',
      10_000,
    );
    recovered = true;
    await Promise.all(writers);
  });

  it('fails writes to its slots fast (offline), and others with CLUSTERDOWN until the replica took over', () => {
    expect(errorsOnVictim).toContain('ClientOfflineError');
    for (const kind of errorsElsewhere) expect(kind).toBe('SimpleError'); // CLUSTERDOWN The cluster is down
  });

  it('leaves a client without the topology refresh offline for good, though the cluster is ok', async () => {
    await cluster.waitUntilHealthy();
    await expect(plain.set(`${key}:w`, 'x')).rejects.toThrow('The client is offline');
  });

  it('runs scripts on the promoted replica, which had none cached', async () => {
    expect(await client.appendAndRemember(key, `${key}:last`, 'after')).toBe(2);
    expect(await client.get(`${key}:last`)).toBe('after');
  });

  it('moves a classic subscription to a live node, but drops a sharded one (node-redis 5.12.1)', async () => {
    await waitFor(
      async () => {
        await client.publish('dr:{crash}:n', 'queue');
        return classic.length > 0;
      },
      'the classic subscription to come back',
      10_000,
    );
    expect(await client.sPublish(channel, 'queue')).toBe(0);
    expect(sharded).toEqual([]);
  });
});
