// Builds a relay and its HTTP app from a checked configuration and an open backend: what every entry
// point (the server, the serverless export, the tests) shares.
import type express from 'express';
import type { Logger } from 'pino';
import type { Backend } from './backend/open-backend.js';
import type { Config } from './config.js';
import { createApp, pipesOf } from './http/app.js';
import { clientHasher } from './http/client-address.js';
import { createHealthCheck } from './http/health.js';
import { createRelayMetrics, type RelayMetrics } from './http/metrics.js';
import { createStopSignal, type StopSignal } from './http/stop-signal.js';
import { createKeyring } from './keys.js';
import { createRelay, type Relay } from './relay.js';
import { createHookSealer } from './webhooks/hook-record.js';
import { createWebhookSender, type WebhookSender } from './webhooks/webhook-sender.js';

export interface ComposeOptions {
  config: Config;
  backend: Backend;
  /** The server secret: signs keys, names the instance, seals webhook records, keys client hashes. */
  secret: string;
  logger: Logger;
  /** Outgoing webhooks; built from the config by default. */
  webhooks?: WebhookSender;
}

/** The relay core on `backend`, the Express app that serves it, its metrics and its stop signal. */
export function composeRelay({ config, backend, secret, logger, webhooks }: ComposeOptions): {
  relay: Relay;
  app: express.Express;
  /** Undefined when DEADROP_METRICS is off. */
  metrics: RelayMetrics | undefined;
  /** Given by a graceful shutdown: long-polls and event streams end. */
  stopping: StopSignal;
} {
  const metrics = config.metrics === 'off' ? undefined : createRelayMetrics();
  const sender =
    webhooks ??
    createWebhookSender({
      timeoutMs: config.webhookTimeoutMs,
      allowPrivate: config.webhookAllowPrivate,
      logger,
    });
  const core = createRelay({
    backend,
    keyring: createKeyring(secret),
    limits: {
      ttlMs: config.ttlSeconds * 1000,
      maxQueue: config.maxQueue,
      maxFields: config.maxFields,
      hookTtlMs: config.hookTtlSeconds * 1000,
      keyQuota: config.keyQuota,
      resumeMs: config.sseResumeSeconds * 1000,
    },
    webhooks: metrics ? metrics.countDeliveries(sender) : sender,
    hooks: createHookSealer(secret),
  });
  const relay = metrics ? metrics.countRelayCalls(core) : core;
  const stopping = createStopSignal();
  // A read at a key pair that holds nothing: the cheapest call that tells whether the store answers.
  const probeKey = core.issueKeys().public;
  const health = createHealthCheck({
    health: backend.health,
    probe: () => core.readValue(probeKey),
    stopping: stopping.signal,
  });
  const app = createApp({
    config,
    relay,
    limiters: backend.limiters,
    outage: metrics ? metrics.countCounterFailures(backend.outage) : backend.outage,
    clientOf: clientHasher(secret),
    logger,
    operations: { health: health.check, stopping, metrics },
  });
  metrics?.readAtScrape({
    health: backend.health,
    listeners: () => backend.notifier.listenerCount(),
    pipes: () => pipesOf(app).streams(),
  });
  return { relay, app, metrics, stopping };
}
