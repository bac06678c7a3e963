// The relay's modes (Securelay): aggregator, key-value and one-to-one, on key pairs checked by the keyring.
import { errors } from './errors.js';
import type { KeyInfo, KeyPair, Keyring } from './keys.js';
import type { Notifier, Topic } from './live/notifier.js';
import { createWake } from './live/wake.js';
import type { LogEntry, Store } from './store/store.js';
import type { HookSealer } from './webhooks/hook-record.js';
import type { WebhookSender } from './webhooks/webhook-sender.js';

const UID_PATTERN = /^[A-Za-z0-9._~-]{1,64}$/;

export interface RelayLimits {
  ttlMs: number;
  maxQueue: number;
  maxFields: number;
  hookTtlMs: number;
}

/** How long a read may wait for data, and when to stop because the client left. */
export interface WaitOptions {
  waitMs: number;
  signal: AbortSignal;
}

export interface RelayDeps {
  store: Store;
  keyring: Keyring;
  limits: RelayLimits;
  notifier: Notifier;
  webhooks: Pick<WebhookSender, 'check' | 'deliver'>;
  hooks: HookSealer;
}

/** `?stats` of a private path: counts and whole seconds left, 0 when nothing. */
export interface RelayStats {
  consume: { count: number; ttl: number };
  publish: { ttl: number };
}

export type Relay = ReturnType<typeof createRelay>;

const seconds = (ms: number) => Math.ceil(ms / 1000);
/** A quiet stream looks at the store this often anyway (and setTimeout cannot wait a TTL of weeks). */
const STREAM_IDLE_CHECK_MS = 60_000;

/** Builds the relay's operations; values are JSON text, keys are checked before anything is touched. */
export function createRelay({ store, keyring, limits, notifier, webhooks, hooks }: RelayDeps) {
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

  /**
   * Tries `attempt` until it yields something, waking on each notification of `topic` until the wait
   * ends (DESIGN §5). Subscribing before each look means no arrival between the two is missed.
   */
  const untilFound = async <T>(
    pub: string,
    topic: Topic,
    attempt: () => Promise<T | undefined>,
    wait: WaitOptions,
  ) => {
    const first = await attempt();
    if (first !== undefined || wait.waitMs <= 0) return first;
    const wake = createWake();
    const unsubscribe = await notifier.subscribe(pub, topic, wake.set);
    try {
      const deadline = Date.now() + wait.waitMs;
      for (;;) {
        // A client that left must not take data it will never receive.
        if (wait.signal.aborted) return undefined;
        wake.reset();
        const found = await attempt();
        if (found !== undefined || wait.signal.aborted || Date.now() >= deadline) return found;
        await wake.wait(deadline - Date.now(), wait.signal);
      }
    } finally {
      unsubscribe();
    }
  };
  const noWait: WaitOptions = { waitMs: 0, signal: AbortSignal.abort() };

  return {
    id: keyring.id,
    limits,

    issueKeys: (): KeyPair => keyring.issue(),

    inspectKey(key: string): KeyInfo {
      const info = keyring.inspect(key);
      if (!info) throw errors.badKey();
      return info;
    },

    /**
     * Aggregator: anyone queues an item at the public key. With a webhook registered, the item is
     * delivered there instead; if that fails it is queued and the webhook forgotten (Securelay).
     */
    async postToQueue(key: string, item: string): Promise<{ webhook: boolean }> {
      const pub = publicKey(key);
      let queued = await store.appendUnlessHooked(pub, item, limits.ttlMs, limits.maxQueue);
      if (typeof queued === 'object') {
        const hook = hooks.open(queued.hook);
        if (hook && (await webhooks.deliver(hook.url, item, hook.signingKey))) return { webhook: true };
        await store.deleteHook(pub);
        queued = await store.appendToQueue(pub, item, limits.ttlMs, limits.maxQueue);
      }
      if (!queued) throw errors.queueFull(limits.maxQueue);
      void notifier.notify(pub, 'queue'); // the answer need not wait for the wake-up to be sent
      return { webhook: false };
    },

    /** Remembers the webhook for public posts (checked now: a refused URL is a 400), or forgets it. */
    async registerHook(key: string, url: string | undefined): Promise<void> {
      const pub = ownedBy(key);
      if (url === undefined) {
        await store.deleteHook(pub);
        return;
      }
      const checked = await webhooks.check(url);
      await store.setHook(pub, hooks.seal({ url: checked, signingKey: key }), limits.hookTtlMs);
    },

    /** Aggregator: the owner takes every queued item at once, waiting for one if asked to. */
    async drainQueue(key: string, wait: WaitOptions = noWait): Promise<string[]> {
      const pub = ownedBy(key);
      const items = await untilFound(
        pub,
        'queue',
        async () => {
          const drained = await store.drainQueue(pub);
          return drained.length > 0 ? drained : undefined;
        },
        wait,
      );
      if (!items) throw errors.nothingQueued();
      return items;
    },

    /**
     * Aggregator, live (SSE): checks the key and listens, then yields queued items as they arrive, each
     * consumed as it is yielded, until `signal` aborts. Entries keep their ids in the delivery log for a
     * while, so a client reconnecting with the last id it got (`resumeAfter`) first receives what it
     * missed, and nothing twice. The caller must iterate the result: that ends the listening.
     */
    async openQueueStream(
      key: string,
      resumeAfter: number | undefined,
      signal: AbortSignal,
    ): Promise<AsyncGenerator<LogEntry[]>> {
      const pub = ownedBy(key);
      const wake = createWake();
      const unsubscribe = await notifier.subscribe(pub, 'queue', wake.set);
      return (async function* () {
        try {
          if (resumeAfter !== undefined) {
            const missed = await store.readLog(pub, resumeAfter);
            if (missed.length > 0) yield missed;
          }
          while (!signal.aborted) {
            wake.reset();
            const moved = await store.moveToLog(pub, limits.ttlMs, limits.maxQueue);
            if (moved.length > 0) yield moved;
            else await wake.wait(STREAM_IDLE_CHECK_MS, signal);
          }
        } finally {
          unsubscribe();
        }
      })();
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
      void notifier.notify(pub, `field:${uid}`);
    },

    /** One-to-one: the one reader takes the value, waiting for it if asked to. */
    async takeField(key: string, uid: string, wait: WaitOptions = noWait): Promise<string> {
      const pub = publicKey(key);
      checkUid(uid);
      const value = await untilFound(pub, `field:${uid}`, () => store.takeField(pub, uid), wait);
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
