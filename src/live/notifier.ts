// Wake-ups for live delivery: "something arrived for this key pair", in one process or, through Redis
// pub/sub, across every instance sharing the store (DESIGN §5). Nothing here polls.
import { EventEmitter } from 'node:events';
import type { OutageWatch } from '../backend/outage.js';
import { errors } from '../errors.js';
import { closeConnection, isCluster, publishTo, type RedisConnection } from '../store/redis-connection.js';
import { replyWithin } from '../store/redis-deadline.js';

/** What arrived: `queue` for the aggregator, `field:<uid>` for a one-to-one value. */
export type Topic = 'queue' | `field:${string}`;

export interface Notifier {
  /** Wakes every subscriber of `pub` + `topic`, on any instance; never throws. */
  notify(pub: string, topic: Topic): Promise<void>;
  /** Calls `listener` on each wake-up until the returned function is called; resolves once listening. */
  subscribe(pub: string, topic: Topic, listener: () => void): Promise<() => void>;
  /** How many listeners are registered: 0 once every waiter is gone. */
  listenerCount(): number;
  close(): Promise<void>;
}

const channelOf = (pub: string) => `dr:{${pub}}:n`;

/** Local listeners by channel and topic; shared by both notifiers. */
function createListeners() {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  let count = 0;
  return {
    add(channel: string, topic: Topic, listener: () => void) {
      emitter.on(`${channel} ${topic}`, listener);
      count++;
      return () => {
        emitter.off(`${channel} ${topic}`, listener);
        count--;
      };
    },
    emit: (channel: string, topic: string) => emitter.emit(`${channel} ${topic}`),
    hasChannel: (channel: string) =>
      emitter.eventNames().some((name) => String(name).startsWith(`${channel} `)),
    count: () => count,
  };
}

/** For one process (memory and SQLite stores). */
export function createLocalNotifier(): Notifier {
  const listeners = createListeners();
  return {
    notify: async (pub, topic) => {
      listeners.emit(channelOf(pub), topic);
    },
    subscribe: async (pub, topic, listener) => listeners.add(channelOf(pub), topic, listener),
    listenerCount: listeners.count,
    close: async () => {},
  };
}

/**
 * Across instances: PUBLISH on the store's connection, and a subscriber that listens to a key pair's
 * channel while at least one local waiter wants it. On one server the subscriber is a connection of its
 * own (a subscribed connection takes no other command). On a cluster it is the cluster client's own
 * pub/sub connection, which node-redis keeps apart from the command connections and moves to a live node
 * when the slot map is refreshed after a failover. Classic channels, not sharded ones (SSUBSCRIBE): in
 * node-redis 5.12.1 a sharded subscription is dropped for good when its primary fails over or its slot
 * moves (redis/node-redis#3311), while a classic one comes back; the price is that every PUBLISH
 * crosses the cluster bus to every node.
 */
export function createRedisNotifier(client: RedisConnection, outage: OutageWatch): Notifier {
  const listeners = createListeners();
  const ownSubscriber = !isCluster(client);
  const subscriber = isCluster(client) ? client : client.duplicate();
  let connected: Promise<unknown> = Promise.resolve();
  if (!isCluster(subscriber)) {
    subscriber.on('error', () => {}); // the store's client already reports Redis being away
    connected = subscriber.connect().catch((error: unknown) => outage.failed(error, false));
  }
  const onMessage = (topic: string, channel: string) => listeners.emit(channel, topic);
  const subscribed = new Map<string, Promise<unknown>>();

  return {
    notify: async (pub, topic) => {
      const begunIn = outage.epoch;
      try {
        await replyWithin(publishTo(client, channelOf(pub), topic));
      } catch (error) {
        outage.failed(error, false, begunIn); // the waiter still finds the item when its wait ends or it looks again
      }
    },
    subscribe: async (pub, topic, listener) => {
      const channel = channelOf(pub);
      const remove = listeners.add(channel, topic, listener);
      let ready = subscribed.get(channel);
      if (!ready) {
        ready = connected.then(() => replyWithin(subscriber.subscribe(channel, onMessage)));
        subscribed.set(channel, ready);
      }
      try {
        await ready;
      } catch (error) {
        subscribed.delete(channel);
        remove();
        throw errors.storeUnavailable(error);
      }
      return () => {
        remove();
        if (!listeners.hasChannel(channel) && subscribed.get(channel) === ready) {
          subscribed.delete(channel);
          subscriber.unsubscribe(channel, onMessage).catch(() => {});
        }
      };
    },
    listenerCount: listeners.count,
    close: async () => {
      await connected;
      if (ownSubscriber) await closeConnection(subscriber);
    },
  };
}
