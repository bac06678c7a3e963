// A running worker: its identity, descriptor, intake, gate, receivers and answers, wired from a checked config.
import { nodeSuite } from '../../sdk/e2e/native-suite.js';
import { type AnswerMessage, answerOfError, sealAnswer } from '../../sdk/e2e/protocol.js';
import { createClient, type DeadropClient, DeadropError } from '../../sdk/index.js';
import { createNodePipe } from '../client/node-pipe.js';
import { describeRelayFailure } from '../client/relay-errors.js';
import { createBackoff, type RelayProbe, waitForRelay } from './backoff.js';
import type { WorkerConfig } from './config.js';
import { startPublisher } from './descriptor.js';
import { carryOut, offeredTypes, type Receivers } from './dispatch.js';
import type { EmitEvent } from './events.js';
import { createExecReceiver } from './exec-receiver.js';
import { createFsReceiver } from './fs-receiver.js';
import { runIntake } from './intake.js';
import { openIdentity, replaceRelayKeys, type WorkerIdentity } from './key-file.js';
import { createReplayCache } from './replay-cache.js';
import { checkRequest } from './request-gate.js';
import { createWolReceiver } from './wol-receiver.js';

export interface WorkerOptions {
  config: WorkerConfig;
  /** Receives every event (the CLI prints them); silent by default. */
  emit?: EmitEvent;
  /** A fetch to use instead of the global one. */
  fetch?: typeof fetch;
}

/** A worker that takes requests until `stop()`. */
export interface RunningWorker {
  /** `<relay>/public/<pub>#<id>`: what users call it by. */
  readonly address: string;
  readonly id: string;
  readonly identity: WorkerIdentity;
  /** Stops taking requests, ends transfers under way and waits for the loops to end. */
  stop(): Promise<void>;
}

/** An answer is retried this long while the relay is away: a user still waiting for it waits no longer. */
const ANSWER_RETRY_SECONDS = 3600;

/** Enough for every request a full relay queue can hold for an hour; beyond, requests are refused as busy. */
const MAX_REMEMBERED_RIDS = 200_000;

/** The replay journal beside the key file: `worker-key.json` keeps its ids in `worker-key.replay`. */
export const replayJournalOf = (keyFile: string) => `${keyFile.replace(/\.json$/, '')}.replay`;

/** The identity, with a relay key pair that this relay still knows (its secret may have changed). */
async function identityFor(
  config: WorkerConfig,
  client: DeadropClient,
  emit: EmitEvent,
): Promise<WorkerIdentity> {
  const warn = (message: string) => emit({ type: 'warning', message });
  const identity = await openIdentity(config.keyFile, config.fingerprint, () => client.keys(), warn);
  try {
    await client.keyInfo(identity.relayKeys.private);
  } catch (error) {
    if (!(error instanceof DeadropError) || (error.status !== 400 && error.status !== 401)) return identity;
    identity.relayKeys = await client.keys();
    await replaceRelayKeys(config.keyFile, identity.relayKeys);
    warn(
      'The relay no longer knows the key pair in the key file; a new one was issued, so the address changed.',
    );
  }
  return identity;
}

/** Lets `limit` tasks run at once; the others wait in order. */
function createLimiter(limit: number) {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async (task: () => Promise<void>) => {
    if (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    running++;
    try {
      await task();
    } finally {
      running--;
      waiting.shift()?.();
    }
  };
}

/**
 * Starts a worker: opens (or makes) its key file, publishes its descriptor and takes requests. Throws when
 * the key file cannot be used or, on first start, the relay cannot issue a key pair.
 */
export async function startWorker(options: WorkerOptions): Promise<RunningWorker> {
  const { config } = options;
  const emit = options.emit ?? (() => {});
  const client = createClient(config.relays, options.fetch ? { fetch: options.fetch } : {});
  const identity = await identityFor(config, client, emit);
  const pipes = createNodePipe(config.relays);
  const receivers: Receivers = {
    ...(config.receivers.fs && { fs: await createFsReceiver(config.receivers.fs, pipes) }),
    ...(config.receivers.exec && { exec: createExecReceiver(config.receivers.exec) }),
    ...(config.receivers.wol && { wol: createWolReceiver(config.receivers.wol) }),
  };
  const stopping = new AbortController();
  const { signal } = stopping;
  const replay = createReplayCache(MAX_REMEMBERED_RIDS, replayJournalOf(config.keyFile));
  const describe = (error: unknown) => describeRelayFailure(error, config.relays[0] as string);
  const probe: RelayProbe = (probeSignal) =>
    client.id({ signal: probeSignal }).then(
      () => true,
      () => false,
    );
  const limit = createLimiter(config.concurrency);
  const inFlight = new Set<Promise<void>>();

  /** Leaves the messages at the one-to-one path, retrying while the relay is away, for as long as a request lives. */
  const deliver = async (messages: AnswerMessage[]): Promise<boolean> => {
    const backoff = createBackoff(config.reconnect);
    const deadline = Date.now() + ANSWER_RETRY_SECONDS * 1000;
    for (const { uid, envelope } of messages) {
      for (;;) {
        try {
          await client.send(identity.relayKeys.private, uid, envelope, { signal });
          break;
        } catch (error) {
          const retryable = error instanceof DeadropError && (error.status === 0 || error.status >= 500);
          if (signal.aborted || !retryable || Date.now() > deadline) {
            emit({
              type: 'failed',
              rid: uid,
              error: `the answer could not be left: ${(error as Error).message}`,
            });
            return false;
          }
          const delay = backoff.next();
          emit({ type: 'relay-down', during: 'answer', error: describe(error), retryInMs: delay });
          await waitForRelay(delay, probe, signal);
        }
      }
    }
    return true;
  };

  const handle = async (item: unknown) => {
    const started = performance.now();
    const verdict = checkRequest(item, {
      worker: identity.keys,
      id: identity.id,
      replay,
      users: config.users,
      nowMs: Date.now(),
    });
    if (!verdict.admitted) {
      emit({ type: 'refused', reason: verdict.reason, rid: verdict.rid, detail: verdict.detail });
      const refusal = verdict.answer;
      if (refusal) {
        const rid = refusal.request.header.rid;
        await deliver(sealAnswer(refusal.request.responseKey, rid, answerOfError(refusal.error), nodeSuite));
      }
      return;
    }
    const { request, user } = verdict;
    const onError = (error: unknown) =>
      emit({ type: 'failed', rid: request.header.rid, error: String(error) });
    const outcome = await carryOut(request, user, receivers, signal, onError, identity.id);
    const delivered = await deliver(
      sealAnswer(request.responseKey, request.header.rid, outcome.answer, nodeSuite),
    );
    emit({
      type: 'answered',
      rid: request.header.rid,
      typ: request.header.typ,
      user: user.name,
      ok: outcome.answer.ok,
      ...(!outcome.answer.ok && { code: outcome.answer.error.code }),
      ms: Math.round(performance.now() - started),
    });
    await outcome.after?.(delivered).catch(onError);
  };

  const onItem = (item: unknown) => {
    const task = limit(() => handle(item)).catch((error: unknown) => {
      emit({ type: 'failed', error: String(error) });
    });
    inFlight.add(task);
    void task.finally(() => inFlight.delete(task));
  };

  const publisher = startPublisher({
    client,
    identity,
    types: offeredTypes(receivers),
    reconnect: config.reconnect,
    signal,
    emit,
    probe,
    describe,
  });
  const intake = runIntake({
    client,
    privateKey: identity.relayKeys.private,
    mode: config.intake,
    reconnect: config.reconnect,
    signal,
    onItem,
    onBack: publisher.refresh,
    probe,
    describe,
    emit,
  });

  return {
    address: `${config.relays[0]}/public/${identity.relayKeys.public}#${identity.id}`,
    id: identity.id,
    identity,
    async stop() {
      stopping.abort();
      await Promise.all([intake, publisher.stopped, ...inFlight]);
      replay.close();
    },
  };
}
