// The relay's modes (Securelay): aggregator, key-value and one-to-one, on key pairs checked by the keyring.
import { errors } from './errors.js';
import type { KeyInfo, KeyPair, Keyring } from './keys.js';
import type { Store } from './store/store.js';

const UID_PATTERN = /^[A-Za-z0-9._~-]{1,64}$/;

export interface RelayLimits {
  ttlMs: number;
  maxQueue: number;
  maxFields: number;
}

/** `?stats` of a private path: counts and whole seconds left, 0 when nothing. */
export interface RelayStats {
  consume: { count: number; ttl: number };
  publish: { ttl: number };
}

export type Relay = ReturnType<typeof createRelay>;

const seconds = (ms: number) => Math.ceil(ms / 1000);

/** Builds the relay's operations; values are JSON text, keys are checked before anything is touched. */
export function createRelay({
  store,
  keyring,
  limits,
}: {
  store: Store;
  keyring: Keyring;
  limits: RelayLimits;
}) {
  const publicKey = (key: string): string => {
    const info = keyring.inspect(key);
    if (!info) throw errors.forgedKey();
    if (info.type !== 'public') throw errors.wrongKeyType('public');
    return key;
  };
  /** The public key under which the private key's data lives. */
  const ownedBy = (key: string): string => {
    const info = keyring.inspect(key);
    if (!info) throw errors.forgedKey();
    if (info.type !== 'private') throw errors.wrongKeyType('private');
    return info.public;
  };
  const checkUid = (uid: string): string => {
    if (!UID_PATTERN.test(uid)) throw errors.badUid();
    return uid;
  };

  return {
    id: keyring.id,
    limits,

    issueKeys: (): KeyPair => keyring.issue(),

    inspectKey(key: string): KeyInfo {
      const info = keyring.inspect(key);
      if (!info) throw errors.badKey();
      return info;
    },

    /** Aggregator: anyone queues an item at the public key. */
    async postToQueue(key: string, item: string): Promise<void> {
      const pub = publicKey(key);
      if (!(await store.appendToQueue(pub, item, limits.ttlMs, limits.maxQueue))) {
        throw errors.queueFull(limits.maxQueue);
      }
    },

    /** Aggregator: the owner takes every queued item at once. */
    async drainQueue(key: string): Promise<string[]> {
      const items = await store.drainQueue(ownedBy(key));
      if (items.length === 0) throw errors.nothingQueued();
      return items;
    },

    async stats(key: string): Promise<RelayStats> {
      const pub = ownedBy(key);
      const [queue, valueTtl] = await Promise.all([store.queueStats(pub), store.valueTtl(pub)]);
      return {
        consume: { count: queue.count, ttl: seconds(queue.ttlMs) },
        publish: { ttl: seconds(valueTtl) },
      };
    },

    /** Key-value: the owner publishes, replacing what was there. */
    async publishValue(key: string, value: string): Promise<void> {
      await store.publishValue(ownedBy(key), value, limits.ttlMs);
    },

    async readValue(key: string): Promise<string> {
      const value = await store.readValue(publicKey(key));
      if (value === undefined) throw errors.nothingPublished();
      return value;
    },

    /** Restarts the published value's TTL; succeeds even when nothing is published (Securelay). */
    async renewValue(key: string): Promise<void> {
      await store.renewValue(ownedBy(key), limits.ttlMs);
    },

    async unpublishValue(key: string): Promise<void> {
      await store.deleteValue(ownedBy(key));
    },

    /** One-to-one: the owner leaves a value for one reader. */
    async putField(key: string, uid: string, value: string): Promise<void> {
      const pub = ownedBy(key);
      if (!(await store.putField(pub, checkUid(uid), value, limits.ttlMs, limits.maxFields))) {
        throw errors.fieldsFull(limits.maxFields);
      }
    },

    async takeField(key: string, uid: string): Promise<string> {
      const pub = publicKey(key);
      const value = await store.takeField(pub, checkUid(uid));
      if (value === undefined) throw errors.noField();
      return value;
    },

    async fieldTtl(key: string, uid: string): Promise<number> {
      const pub = ownedBy(key);
      return seconds(await store.fieldTtl(pub, checkUid(uid)));
    },

    async deleteField(key: string, uid: string): Promise<void> {
      const pub = ownedBy(key);
      await store.deleteField(pub, checkUid(uid));
    },
  };
}
