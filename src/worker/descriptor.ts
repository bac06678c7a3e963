// The worker's descriptor at its private path (key-value mode), republished before the relay lets it expire.
import { toBase64url } from '../../sdk/e2e/encoding.js';
import type { Descriptor } from '../../sdk/e2e/protocol.js';
import type { DeadropClient } from '../../sdk/index.js';
import { createBackoff, type RelayProbe, sleep, waitForRelay } from './backoff.js';
import type { EmitEvent } from './events.js';
import type { WorkerIdentity } from './key-file.js';

/** The descriptor of `identity`, valid until `exp` (seconds since the epoch). */
export function buildDescriptor(
  identity: WorkerIdentity,
  types: string[],
  exp: number,
  ttl?: number,
): Descriptor {
  return {
    v: 1,
    id: identity.id,
    pk: toBase64url(identity.keys.publicKey),
    level: identity.level,
    counter: identity.counter,
    types,
    exp,
    ...(ttl !== undefined && { ttl }),
  };
}

export interface PublisherDeps {
  client: DeadropClient;
  identity: WorkerIdentity;
  types: string[];
  reconnect: { minMs: number; maxMs: number };
  signal: AbortSignal;
  emit: EmitEvent;
  /** Asks the relay whether it is back, while it is away. */
  probe: RelayProbe;
  /** Turns a failure into the sentence the log shows. */
  describe: (error: unknown) => string;
  now?: () => number;
}

/** The publisher's handle: `refresh()` republishes at once (after the relay came back); `stopped` ends with it. */
export interface Publisher {
  refresh(): void;
  readonly stopped: Promise<void>;
}

/** A first guess of the relay's TTL (DEADROP_TTL), corrected from `?stats` after the first publish. */
const GUESSED_TTL_SECONDS = 60;
/** Republished at a third of the TTL: two chances to renew before the relay drops it. */
const RENEW_FRACTION = 1 / 3;

/**
 * Publishes the descriptor with `exp` = now + the relay's TTL, reads the TTL back from `?stats` (and
 * republishes if the guess was off), then again at a third of the TTL, and with backoff while the relay is away.
 */
export function startPublisher(deps: PublisherDeps): Publisher {
  const { client, identity, signal, emit } = deps;
  const now = deps.now ?? Date.now;
  const backoff = createBackoff(deps.reconnect);
  let ttl = GUESSED_TTL_SECONDS;
  let wake = new AbortController();

  const publishOnce = async () => {
    const exp = Math.floor(now() / 1000) + ttl;
    const descriptor = buildDescriptor(identity, deps.types, exp, ttl);
    await client.publish(identity.relayKeys.private, descriptor, { signal });
    const relayTtl = (await client.stats(identity.relayKeys.private, { signal })).publish.ttl;
    if (relayTtl > 0 && Math.abs(relayTtl - ttl) > 2) {
      ttl = relayTtl;
      return publishOnce();
    }
    return exp;
  };

  const stopped = (async () => {
    while (!signal.aborted) {
      wake = new AbortController();
      const woken = AbortSignal.any([signal, wake.signal]);
      try {
        emit({ type: 'published', exp: await publishOnce() });
        backoff.reset();
        await sleep(ttl * 1000 * RENEW_FRACTION, woken);
      } catch (error) {
        if (signal.aborted) return;
        const delay = backoff.next();
        emit({ type: 'relay-down', during: 'publish', error: deps.describe(error), retryInMs: delay });
        await waitForRelay(delay, deps.probe, woken);
      }
    }
  })();

  return { refresh: () => wake.abort(), stopped };
}
