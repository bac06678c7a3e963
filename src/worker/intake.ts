// How requests reach the worker: long-poll (drain with wait) or server-sent events, reconnecting with backoff.
import type { DeadropClient } from '../../sdk/index.js';
import { createBackoff, type RelayProbe, waitForRelay } from './backoff.js';
import type { EmitEvent } from './events.js';

export interface IntakeDeps {
  client: DeadropClient;
  privateKey: string;
  mode: 'longpoll' | 'sse';
  reconnect: { minMs: number; maxMs: number };
  signal: AbortSignal;
  /** Called with each item taken from the queue; must not throw. */
  onItem: (item: unknown) => void;
  /** Called when the relay answers again after being away. */
  onBack: () => void;
  /** Asks the relay whether it is back, while it is away. */
  probe: RelayProbe;
  /** Turns a failure into the sentence the log shows. */
  describe: (error: unknown) => string;
  emit: EmitEvent;
}

/** The longest wait the relay grants (DESIGN §5): one request a minute while nothing comes. */
const LONG_POLL_SECONDS = 60;

/**
 * Takes requests until `signal` aborts. Each failure (relay away, cut connection, 5xx) waits a backoff delay
 * and tries again; meanwhile a probe asks every half second whether the relay is back, so a relay that returns
 * is used within a second however long the delay grew, and one that stays away costs next to nothing.
 */
export async function runIntake(deps: IntakeDeps): Promise<void> {
  const { client, privateKey, signal, emit } = deps;
  const backoff = createBackoff(deps.reconnect);
  let awaySince: number | undefined;
  const back = () => {
    backoff.reset();
    if (awaySince !== undefined) {
      emit({ type: 'relay-up', awayMs: Date.now() - awaySince });
      awaySince = undefined;
      deps.onBack();
    }
  };
  while (!signal.aborted) {
    try {
      if (deps.mode === 'sse') {
        // The SDK reconnects by itself after a cut (retry 1 s, Last-Event-ID); it throws on error answers.
        await client.subscribe(
          privateKey,
          (item) => {
            back();
            deps.onItem(item);
          },
          { signal },
        );
      } else {
        const items = await client.drain(privateKey, { wait: LONG_POLL_SECONDS, signal });
        back();
        for (const item of items) deps.onItem(item);
      }
    } catch (error) {
      if (signal.aborted) return;
      awaySince ??= Date.now();
      const delay = backoff.next();
      emit({ type: 'relay-down', during: 'intake', error: deps.describe(error), retryInMs: delay });
      if (await waitForRelay(delay, deps.probe, signal)) back();
    }
  }
}
