// The relay core (Securelay): aggregator, key-value, one-to-one and pipe pairing on key pairs checked by
// one keyring. It owns every key-pair rule; the HTTP layer only maps requests to these operations.
import type { Backend } from './backend/open-backend.js';
import { errors } from './errors.js';
import type { KeyInfo, KeyPair, Keyring } from './keys.js';
import { createWake } from './live/wake.js';
import { type PipeMethod, pipeSideOf } from './pipe/sides.js';
import type { PipeTicket } from './pipe/token-registry.js';
import type { FieldValue, LogEntry, WriteResult } from './store/store.js';
import type { HookSealer } from './webhooks/hook-record.js';
import type { WebhookSender } from './webhooks/webhook-sender.js';

const UID_PATTERN = /^[A-Za-z0-9._~-]{1,64}$/;

export interface RelayLimits {
  ttlMs: number;
  maxQueue: number;
  maxFields: number;
  hookTtlMs: number;
  /** Bytes of blobs one key pair may hold (DEADROP_KEY_QUOTA). */
  keyQuota: number;
  /** How long items sent on an event stream stay for a reconnecting client (DEADROP_SSE_RESUME). */
  resumeMs: number;
}

/** How long a read may wait for data, and when to stop because the client left. */
export interface WaitOptions {
  waitMs: number;
  signal: AbortSignal;
}

/** `?hook=` of a private GET: a URL registers it, undefined forgets it (Securelay). */
export interface HookRule {
  hook: string | undefined;
}

export interface RelayDeps {
  backend: Pick<Backend, 'store' | 'notifier' | 'pipes'>;
  keyring: Keyring;
  limits: RelayLimits;
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
const noWait: WaitOptions = { waitMs: 0, signal: AbortSignal.abort() };

/** Builds the relay's operations; values are JSON text or blob bytes, keys are checked before anything is touched. */
export function createRelay({ backend, keyring, limits, webhooks, hooks }: RelayDeps) {
  const { store, notifier, pipes } = backend;
  const fieldLimits = { maxFields: limits.maxFields, blobQuota: limits.keyQuota };

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
  /** Throws the catalogued error for a refused write. */
  const mustStore = (result: WriteResult, size = 0): void => {
    if (result === 'stored') return;
    switch (result.refused) {
      case 'queue_full':
        throw errors.queueFull(limits.maxQueue);
      case 'fields_full':
        throw errors.fieldsFull(limits.maxFields);
      case 'quota_full':
        throw errors.keyQuotaFull(limits.keyQuota, result.used, size);
      case 'store_full':
        throw errors.storeFull();
    }
  };

  /**
   * Tries `attempt` until it yields something, waking on each notification of `topic` until the wait
   * ends (DESIGN §5). Subscribing before each look means no arrival between the two is missed.
   */
  const untilFound = async <T>(
    pub: string,
    topic: 'queue' | `field:${string}`,
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

  const registerHook = async (key: string, pub: string, url: string) => {
    const checked = await webhooks.check(url);
    await store.setHook(pub, hooks.seal({ url: checked, signingKey: key }), limits.hookTtlMs);
  };
  /**
   * Every private GET re-registers its webhook or, without one, forgets it (Securelay). Forgetting runs
   * beside the read; its failure must not lose what the read took.
   */
  const withHookRule = async <T>(key: string, { hook }: HookRule, read: (pub: string) => Promise<T>) => {
    const pub = ownedBy(key);
    if (hook !== undefined) await registerHook(key, pub, hook);
    const forgetting = hook === undefined ? store.deleteHook(pub).catch(() => {}) : undefined;
    try {
      return await read(pub);
    } finally {
      await forgetting;
    }
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

    /**
     * Aggregator: anyone queues an item at the public key. With a webhook registered, the item is
     * delivered there instead; if that fails it is queued and the webhook forgotten (Securelay).
     */
    async postToQueue(key: string, item: string): Promise<{ webhook: boolean }> {
      const pub = publicKey(key);
      let result = await store.appendUnlessHooked(pub, item, limits.ttlMs, limits.maxQueue);
      if (typeof result === 'object' && 'hook' in result) {
        const hook = hooks.open(result.hook);
        if (hook && (await webhooks.deliver(hook.url, item, hook.signingKey))) return { webhook: true };
        await store.deleteHook(pub);
        result = await store.appendToQueue(pub, item, limits.ttlMs, limits.maxQueue);
      }
      mustStore(result);
      void notifier.notify(pub, 'queue'); // the answer need not wait for the wake-up to be sent
      return { webhook: false };
    },

    /** Aggregator: the owner takes every queued item at once, waiting for one if asked to. */
    drainQueue: (key: string, rule: HookRule, wait: WaitOptions = noWait): Promise<string[]> =>
      withHookRule(key, rule, async (pub) => {
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
      }),

    /**
     * Aggregator, live (SSE): checks the key and listens, then yields queued items as they arrive, each
     * consumed as it is yielded, until `signal` aborts. Sent items stay in the delivery log for the
     * resume window (or until acknowledged), so a client reconnecting with the last id it got
     * (`resumeAfter`) first receives what it missed, and nothing twice. The caller must iterate the
     * result: that ends the listening.
     */
    openQueueStream: (
      key: string,
      rule: HookRule,
      resumeAfter: number | undefined,
      signal: AbortSignal,
    ): Promise<AsyncGenerator<LogEntry[]>> =>
      withHookRule(key, rule, async (pub) => {
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
              const moved = await store.moveToLog(pub, limits.resumeMs, limits.maxQueue);
              if (moved.length > 0) yield moved;
              else await wake.wait(STREAM_IDLE_CHECK_MS, signal);
            }
          } finally {
            unsubscribe();
          }
        })();
      }),

    stats: (key: string, rule: HookRule): Promise<RelayStats> =>
      withHookRule(key, rule, async (pub) => {
        const [queue, valueTtl] = await Promise.all([store.queueStats(pub), store.valueTtl(pub)]);
        return {
          consume: { count: queue.count, ttl: seconds(queue.ttlMs) },
          publish: { ttl: seconds(valueTtl) },
        };
      }),

    /** Key-value: the owner publishes, replacing what was there. */
    async publishValue(key: string, value: string): Promise<void> {
      mustStore(await store.publishValue(ownedBy(key), value, limits.ttlMs));
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

    /** Checks a one-to-one write before its body is read: a forged key or bad uid costs no upload. */
    checkFieldWrite(key: string, uid: string): void {
      ownedBy(key);
      checkUid(uid);
    },

    /** One-to-one: the owner leaves a value (JSON text or blob bytes) for one reader. */
    async putField(key: string, uid: string, value: FieldValue): Promise<void> {
      const pub = ownedBy(key);
      const size = typeof value === 'string' ? 0 : value.byteLength;
      mustStore(await store.putField(pub, checkUid(uid), value, limits.ttlMs, fieldLimits), size);
      void notifier.notify(pub, `field:${uid}`);
    },

    /** One-to-one: the one reader takes the value, waiting for it if asked to. */
    async takeField(key: string, uid: string, wait: WaitOptions = noWait): Promise<FieldValue> {
      const pub = publicKey(key);
      checkUid(uid);
      const value = await untilFound(pub, `field:${uid}`, () => store.takeField(pub, uid), wait);
      if (value === undefined) throw errors.noField();
      return value;
    },

    /**
     * One-to-one, the owner's read: the value stays for the one reader (or until the owner deletes it). A
     * drop's receiver reads chunks this way with the key it claimed, and deletes each once it is saved.
     */
    async readField(key: string, uid: string, wait: WaitOptions = noWait): Promise<FieldValue> {
      const pub = ownedBy(key);
      checkUid(uid);
      const value = await untilFound(pub, `field:${uid}`, () => store.readField(pub, uid), wait);
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

    /**
     * Pipe: an arrival at /pipe/<key> pairs with the oldest waiting token of the other side or creates
     * one (DESIGN §6); `baseUrl` names the instance that would hold a new token's stream.
     */
    async arriveAtPipe(key: string, method: PipeMethod, baseUrl: string | undefined) {
      const side = pipeSideOf(key, keyring.inspect(key), method);
      const ticket: PipeTicket = await pipes.arrive({ ...side, baseUrl });
      /** Withdraws the new token when its stream can no longer happen (its side left, or it expired). */
      const withdraw = () => pipes.cancel(side.pub, side.dir, ticket.token);
      return { ticket, withdraw };
    },

    /** Pipe tokens of a key pair still waiting at /pipe/ for their other side, both directions. */
    waitingPipes: async (pub: string) =>
      (await pipes.countWaiting(pub, 'in')) + (await pipes.countWaiting(pub, 'out')),
  };
}
